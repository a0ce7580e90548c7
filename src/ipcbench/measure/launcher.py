"""How a round's process is started: forked from a warm launcher (the default), or a fresh interpreter.

Both give the runner a ``RoundHandle``: the round process's ``pid`` (which is also its process group:
every round runs in its own session), ``wait(timeout)`` for its exit status, ``poll()`` and
``send_signal()``. The runner kills a round's whole group itself (``os.killpg``), so what it does on a
deadline or Ctrl-C is the same for both kinds.

**Warm launcher** (``Launcher``, kind ``"warm-fork"``). One helper process per run, started by the runner
with pipes on its stdin/stdout and in a session of its own (terminal signals do not reach it). It imports
what a round needs (``orchestrator.preload``, and the modules the run's payload kinds need,
``payloads.modules_for``: numpy when the run has ``numpy`` cases, so that those rounds do not import it
each time, ~0.1 s in every process that touches an array; numpy's import starts OpenBLAS's thread pool,
which OpenBLAS shuts down at every ``fork``, so the round children start without a thread), collects
garbage once, says ``ready`` and then serves one request at a time: a line ``{"job", "out", "err"}`` on
stdin makes it ``fork()`` a child, answer ``started PID`` once the child leads its own session (it closes
a pipe after ``setsid``, so the runner's ``killpg`` reaches it from the first moment), ``waitpid`` for it
and answer ``exit PID STATUS`` (the exit code; minus the signal number for a killed child). The runner
cannot ``waitpid`` a process that is not its child, so it learns the status from that line; until the line
comes the launcher has not reaped the child, so its pid (and group) cannot be reused while the runner
signals it.

The child (``_round_child``) makes itself a session leader (``setsid``: its pid is its process group),
points fd 0 at /dev/null and fds 1 and 2 at the round's stderr file (faulthandler's stacks on SIGUSR1 go
there, as before), makes ``__main__`` the orchestrator module (so a spawn or forkserver peer prepares its
main module as it did under ``python -m ipcbench.measure.orchestrator``), runs
``orchestrator.main([job, out])`` and leaves as a normal interpreter would (threads joined,
``atexit`` functions: multiprocessing's own clean-up included), then ``os._exit``.

Nothing outlives the run: the launcher dies with the runner (``PR_SET_PDEATHSIG`` on Linux, checked
against a parent that died before it was set) and exits on end of file on stdin; on SIGTERM it takes its
round child's group down (SIGTERM, then SIGKILL) and exits; each round child dies with the launcher the
same way (the orchestrator sets its own ``PR_SET_PDEATHSIG``). ``Launcher.close`` (the runner's
``finally``, also on Ctrl-C and on SIGTERM, which ``ipcbench run`` turns into an exception) kills a round
still in flight, closes stdin, and escalates SIGTERM -> SIGKILL if the launcher does not leave at once. A
launcher that dies mid-run fails the round in flight ("round launcher died") and is started again for
the next round.

**Fresh interpreter** (``FreshRound``, kind ``"fresh-interpreter"``): ``python -c`` running the
orchestrator module as ``python -m`` would, in a new session: the fallback (``--fresh-rounds``, or where
``fork`` is not available).
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# The helper processes import the very ipcbench this process runs (a checkout, an install, a tox env),
# without touching PYTHONPATH (which every grandchild would inherit): their sys.path gets this package's
# parent folder in front.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
ORCHESTRATOR = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
                "runpy.run_module('ipcbench.measure.orchestrator', run_name='__main__', alter_sys=True)")
LAUNCHER = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from ipcbench.measure.launcher import serve; raise SystemExit(serve(sys.argv[1:]))")

WARM, FRESH = "warm-fork", "fresh-interpreter"
READY_TIMEOUT_S = 60.0      # the launcher's imports (a cold disk cache, a loaded machine)
REPLY_TIMEOUT_S = 10.0      # "started PID" after a request: one fork
DEATH_CHECK_S = 1.0         # how often a wait for the launcher's next line checks that it still lives (a wake-up
                            # of the runner during a round: rare, so as not to disturb the round)


class LauncherDied(RuntimeError):
    """The launcher process ended (or stopped answering) while a round needed it."""


def warm_available() -> bool:
    return hasattr(os, "fork") and hasattr(os, "setsid") and sys.platform != "win32"


def _die_with_parent(sig: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


# -- the runner's side ---------------------------------------------------------------------------------
class FreshRound:
    """A round in a fresh interpreter (``subprocess.Popen`` in a new session)."""

    kind = FRESH

    def __init__(self, job: str, out: str, errf, env: dict | None = None):
        self._proc = subprocess.Popen([sys.executable, "-c", ORCHESTRATOR, PACKAGE_PARENT, job, out],
                                      stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                                      start_new_session=True, env=env)
        self.pid = self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Exit status; ``subprocess.TimeoutExpired`` when it is still running after ``timeout`` s."""
        return self._proc.wait(timeout)

    def send_signal(self, sig: int) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(sig)


class RoundHandle:
    """A round forked by the launcher; its status comes from the launcher's ``exit PID STATUS`` line."""

    kind = WARM

    def __init__(self, launcher: Launcher, pid: int):
        self._launcher, self.pid = launcher, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.wait(0)
            except subprocess.TimeoutExpired:
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Exit status; ``subprocess.TimeoutExpired`` after ``timeout`` s; ``LauncherDied`` if the
        launcher is gone (the round child then dies with it: PR_SET_PDEATHSIG)."""
        if self.returncode is None:
            self.returncode = self._launcher._wait_exit(self.pid, timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:          # not reaped yet: the pid is still this round's
            try:
                os.kill(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


class Launcher:
    """The runner's end of the warm launcher (see the module docstring). Use as a context manager, or
    call ``close()``: it must never outlive the run."""

    kind = WARM

    def __init__(self, preload: Sequence[str] = (), env: dict | None = None):
        self.preload = tuple(preload)         # modules to import beyond orchestrator.preload (numpy)
        self.env = env                        # the launcher's environment (None: this process's); allocator.py
        self._proc: subprocess.Popen | None = None
        self._buf = b""
        self._in_flight: int | None = None      # pid of the round child not yet reported as exited
        self._pending = False                   # a request was sent and its "started" not yet read
        self.starts = 0                         # launchers started so far (1 unless one died)

    # lifecycle
    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the launcher (if it is not running) and wait until it has imported what rounds need."""
        if self.alive():
            return
        self._discard()
        self._proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, PACKAGE_PARENT, str(os.getpid()),
                                       *self.preload],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                      start_new_session=True, close_fds=True, bufsize=0, env=self.env)
        self.starts += 1
        try:
            line = self._read_line(time.monotonic() + READY_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        if not line.startswith("ready"):
            self.close()
            raise LauncherDied(f"the round launcher did not start ({line or 'no answer'})")

    def start_round(self, job: str, out: str, err: str) -> RoundHandle:
        """Ask for one round; returns as soon as its process exists."""
        self.start()
        assert self._in_flight is None, "one round at a time"
        self._pending = True
        try:
            self._proc.stdin.write((json.dumps({"job": job, "out": out, "err": err}) + "\n").encode())
            line = self._read_line(time.monotonic() + REPLY_TIMEOUT_S)
        except BrokenPipeError:
            self._pending = False
            raise LauncherDied("the round launcher is gone") from None
        except BaseException:
            # Ctrl-C (or a dead launcher) between the request and its answer: learn the pid if we can,
            # so close() kills that round too.
            try:
                self._take_started(self._read_line(time.monotonic() + 1.0))
            except BaseException:
                pass
            raise
        return RoundHandle(self, self._take_started(line))

    def _take_started(self, line: str) -> int:
        self._pending = False
        parts = line.split()
        if len(parts) != 2 or parts[0] != "started":
            raise LauncherDied(f"the round launcher answered {line!r}")
        self._in_flight = int(parts[1])
        return self._in_flight

    def _wait_exit(self, pid: int, timeout: float | None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        line = self._read_line(deadline)          # TimeoutExpired passes through
        parts = line.split()
        if len(parts) != 3 or parts[0] != "exit" or int(parts[1]) != pid:
            raise LauncherDied(f"the round launcher answered {line!r}")
        self._in_flight = None
        return int(parts[2])

    def _read_line(self, deadline: float | None) -> str:
        """One line from the launcher; LauncherDied when it is gone; TimeoutExpired past the deadline.

        The launcher's death is seen by reaping it (every ``DEATH_CHECK_S``), not only by the end of its
        pipe: a process it started (multiprocessing's resource tracker, a round child before it took over
        its fds) holds the pipe's write end open after the launcher has died, for seconds on a busy
        machine (a CI run waited 10 s for the end of file and failed)."""
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            wait = DEATH_CHECK_S if left is None else min(left, DEATH_CHECK_S)
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                if self._proc.poll() is not None and not select.select([fd], [], [], 0)[0]:
                    raise LauncherDied(self._died_reason())      # dead, and nothing more it wrote
                if left is not None and time.monotonic() >= deadline:
                    raise subprocess.TimeoutExpired("round launcher", 0)
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise LauncherDied(self._died_reason())
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace").strip()

    def _died_reason(self) -> str:
        try:
            code = self._proc.wait(2)
        except subprocess.TimeoutExpired:
            code = None
        return "the round launcher died" + (f" (status {code})" if code is not None else "")

    def close(self) -> None:
        """Kill a round still in flight, end the launcher (EOF, then SIGTERM, then SIGKILL), reap it."""
        proc = self._proc
        if proc is None:
            return
        pid = self._in_flight
        if pid is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except (ProcessLookupError, PermissionError):
                    break
                if sig == signal.SIGTERM:
                    try:
                        self._wait_exit(pid, 2.0)
                        break
                    except (subprocess.TimeoutExpired, LauncherDied, ValueError):
                        pass
        try:
            proc.stdin.close()
        except OSError:
            pass
        for sig, grace in ((None, 2.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            if sig is not None:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        if pid is not None:              # whatever the round left behind in its group
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._discard()

    def _discard(self) -> None:
        if self._proc is not None and self._proc.stdout:
            self._proc.stdout.close()
        self._proc, self._buf, self._in_flight, self._pending = None, b"", None, False

    def dead_round(self) -> None:
        """The launcher died under a round: forget it (the next round starts a new launcher)."""
        if self._proc is not None:
            try:
                self._proc.kill()
            except ProcessLookupError:
                pass
            self._proc.wait()
        self._discard()


# -- the launcher's side -------------------------------------------------------------------------------
def _send(text: str) -> None:
    data = text.encode()
    while data:
        data = data[os.write(1, data):]


def _read_requests():
    """Lines from stdin (fd 0), unbuffered, until end of file."""
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = os.read(0, 65536)
            if not chunk:
                return
            buf += chunk
        line, _, buf = buf.partition(b"\n")
        yield line


def _stop_child(pid: int) -> None:
    """SIGTERM the round's group, SIGKILL it after a second, reap the child."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            break
        time.sleep(0.02)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _start_resource_tracker(timeout_s: float = 5.0) -> None:
    """Start multiprocessing's resource tracker in the launcher, once, and wait until it is idle.

    The first ``SharedMemory(create=True)`` of a process starts the tracker: a fresh interpreter, ~30 ms
    of CPU. Started inside a round, it booted beside the round's peers on 2 vCPUs during the warm-up and
    the timed window (shared_memory 8 B round trips: p99 up to 2 ms and max 5 ms in a 60 ms window, half
    the throughput the selfcheck's hand loop got, whose calibration outlasts the boot). Forked rounds
    inherit this one (multiprocessing's children use their parent's tracker); it leaves when the launcher
    and its rounds have closed its pipe, unlinking anything still registered."""
    try:
        from multiprocessing import resource_tracker

        import psutil

        resource_tracker.ensure_running()
        pid = getattr(resource_tracker._resource_tracker, "_pid", None)
        if not pid:
            return
        proc, last = psutil.Process(pid), None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            cpu = sum(proc.cpu_times()[:2])
            if proc.status() == psutil.STATUS_SLEEPING and cpu == last:
                return                                  # blocked on its pipe, its start-up done
            last = cpu
            time.sleep(0.02)
    except Exception:      # noqa: BLE001 - without it a round starts its own, as before
        pass


def _stop_resource_tracker(timeout_s: float = 3.0) -> None:
    """Close the launcher's end of the resource tracker's pipe and reap the tracker, so that it has gone
    (unlinking anything still registered) by the time the runner has reaped the launcher. Left to notice
    the end of its pipe by itself, it outlived the launcher by a few milliseconds: a CI run found it still
    there right after ``run_case`` returned. Bounded: a round's process that still holds the pipe keeps
    the tracker alive, and the runner's killpg ends that one."""
    try:
        from multiprocessing import resource_tracker

        tracker = resource_tracker._resource_tracker
        fd, pid = getattr(tracker, "_fd", None), getattr(tracker, "_pid", None)
        if fd is None or not pid:
            return
        tracker._fd = None
        os.close(fd)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG)[0]:
                tracker._pid = None
                return
            time.sleep(0.005)
    except Exception:      # noqa: BLE001 - the tracker still leaves on its own once its pipe is closed
        pass


def serve(argv: list[str]) -> int:
    """The launcher process's main: ``argv = [runner pid, module to preload, ...]``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C is the runner's to handle
    me = os.getpid()

    def on_term(signum, frame):
        if os.getpid() != me:                          # a round child before it took over its signals
            os._exit(128 + signum)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    _die_with_parent(signal.SIGTERM)
    if argv and os.getppid() != int(argv[0]):          # the runner died before PDEATHSIG was set
        return 0
    from . import orchestrator

    try:
        orchestrator.preload()
        for module in argv[1:]:
            importlib.import_module(module)
    except Exception:      # noqa: BLE001 - each round imports again and reports what fails
        pass
    _start_resource_tracker()
    import gc

    gc.collect()           # every round starts from the same, collected heap
    _send(f"ready {me}\n")
    child = None
    try:
        for line in _read_requests():
            req = json.loads(line)
            # "started" only once the child leads its own session, so that the runner's killpg reaches
            # it from the first moment: the child closes its end of this pipe after setsid().
            ready_r, ready_w = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(ready_r)
                _round_child(req, orchestrator, ready_w)        # never returns
            os.close(ready_w)
            try:
                os.read(ready_r, 1)                    # b"" when the child closed it (or died)
            finally:
                os.close(ready_r)
            _send(f"started {child}\n")
            _, status = os.waitpid(child, 0)
            done, child = child, None
            _send(f"exit {done} {os.waitstatus_to_exitcode(status)}\n")
    except BrokenPipeError:
        pass
    finally:
        if child:
            _stop_child(child)
        _stop_resource_tracker()
    return 0


def _round_child(req: dict, orchestrator, ready_fd: int) -> None:
    """In the forked child: become a session of its own (then close ``ready_fd``: the launcher waits for
    that), take over fds and signals, run the round, exit."""
    code = 1
    try:
        try:
            try:
                os.setsid()
            finally:
                os.close(ready_fd)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            err = os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(err, 1)
            os.dup2(err, 2)
            os.close(null)
            os.close(err)
            sys.argv = [orchestrator.__file__, req["job"], req["out"]]
            sys.modules["__main__"] = orchestrator
            code = orchestrator.main([req["job"], req["out"]])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        # Leave as the interpreter would: join non-daemon threads, run atexit functions
        # (multiprocessing's clean-up among them), flush.
        try:
            import atexit
            import threading

            threading._shutdown()
            atexit._run_exitfuncs()
        except BaseException:
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
    finally:
        os._exit(code if isinstance(code, int) else 1)
