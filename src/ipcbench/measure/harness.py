"""The inside of one benchmark round: peers, warm-up, CPU accounting, reaping, failure detection.

A round runs in its own orchestrator process (see ``orchestrator.py``). ``Round`` gives a pattern what it
needs and nothing more:

* ``start_peer`` starts a daemon peer process with the case's start method and watches it: a peer that
  dies while the round still needs it fails the round at once with a reason (``PeerMonitor``), instead of
  leaving the orchestrator blocked in a ``recv``.
* ``cpu_snapshot`` reads the CPU seconds of the orchestrator and every process below it (peers, a
  Manager's server, Pool workers, feeder threads included; ``process_cpu_seconds``) and their minor page
  faults (``process_minor_faults``; ``Round.faults`` over the window). A round made
  with ``track_steal=True`` (the orchestrator's) also reads the CPU steal time of ``/proc/stat`` at the
  first and the last snapshot, i.e. around the timed window (``Round.steal``).
* ``close`` reaps every process the round started, whatever happened.

Why timed loops use blocking calls: ``Connection.poll(timeout)`` and ``Queue.get(timeout=...)`` build a
selector per call, which costs microseconds on a ~30 µs round trip (docs/measurement.md has the numbers).
So the hot loops call ``recv()``/``get()`` exactly as a user would, and hangs are bounded from outside: the
peer monitor turns a dead peer into a failed round, and the runner kills a round that passes its deadline.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import psutil

from ..plan.cases import Case, RoundSpec
from .payloads import make_payload
from .placement import Placer, allowed

WARMUP_WINDOW = 5          # calls per half of the rolling comparison
WARMUP_TOLERANCE = 0.05    # the last WARMUP_WINDOW calls' median within 5 % of the WARMUP_WINDOW before


def stable_warmup(op, min_calls: int, max_s: float, clock=time.perf_counter_ns, window: int = WARMUP_WINDOW,
                  tolerance: float = WARMUP_TOLERANCE, min_s: float = 0.0) -> int:
    """Call ``op`` until its timing has settled: at least ``min_calls`` (and 1) calls and ``min_s`` seconds,
    then until the median duration of the last ``window`` calls is no more than ``tolerance`` below that
    of the ``window`` before (still getting faster means still warming: caches, lazy imports, the
    allocator, the pipe's pages), or until ``max(max_s, min_s)`` seconds have passed, whichever comes
    first. Returns the number of calls.

    ``min_s`` is for what the rolling comparison cannot see: a start that is *faster* than what follows.
    On the reference VM the first ~20-60 ms of a round's cross-CPU round trips ran 20-30 % faster than
    the rest (``python tools/round_start.py``), slowly enough that two windows of 5 calls agree."""
    from statistics import median

    start = clock()
    deadline = start + int(max(max_s, min_s) * 1e9)
    floor = start + int(min_s * 1e9)
    durations: list[int] = []
    need = max(1, min_calls)
    while True:
        t0 = clock()
        op()
        t1 = clock()
        durations.append(t1 - t0)
        n = len(durations)
        if t1 >= deadline:
            return n
        if n >= need and n >= 2 * window and t1 >= floor:
            recent, before = median(durations[-window:]), median(durations[-2 * window:-window])
            if recent >= before * (1 - tolerance):
                return n


class RoundFailed(Exception):
    """The round could not be measured; the message says why (shown to the user and stored)."""


@dataclass
class RoundResult:
    """What one round measured. Times are ``perf_counter_ns`` values or differences of them."""

    samples_ns: list[int]                 # one per operation (round trip, message, call, task, start)
    ops: int | None = None                # operations completed inside the timed window
    window_ns: int | None = None          # length of that window
    bytes_per_op: int = 0                 # payload bytes one operation delivers
    cpu_s: float | None = None            # CPU seconds of all processes during the window
    minor_faults: int | None = None       # minor page faults of all processes during the window (Round.faults)
    placement: dict = field(default_factory=dict)
    # CPU steal (hypervisor) seconds over steal_span_s of wall time, summed over steal_cpus CPUs; the
    # orchestrator fills these in (see Round.steal); None where /proc/stat has no steal column.
    steal_s: float | None = None
    steal_span_s: float | None = None
    steal_cpus: int | None = None
    params: dict | None = None            # settings of the op that vary within a mechanism (chunksize, ...)

    def to_dict(self) -> dict:
        return {
            "params": self.params,
            "samples_ns": list(self.samples_ns),
            "ops": self.ops,
            "window_ns": self.window_ns,
            "bytes_per_op": self.bytes_per_op,
            "cpu_s": self.cpu_s,
            "minor_faults": self.minor_faults,
            "placement": self.placement,
            "steal_s": self.steal_s,
            "steal_span_s": self.steal_span_s,
            "steal_cpus": self.steal_cpus,
        }


# -- interference: CPU steal and load, from /proc/stat -------------------------------------------------
PROC_STAT = "/proc/stat"
STEAL_COLUMN = 8      # "cpuN user nice system idle iowait irq softirq steal guest guest_nice" (Linux >= 2.6.11)


def _clock_tick_s() -> float:
    try:
        return 1.0 / os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 0.01


CLOCK_TICK_S = _clock_tick_s()      # /proc/stat counts in USER_HZ ticks (almost always 100 per second)


def read_proc_stat(path: str = PROC_STAT) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def parse_steal(text: str | None, cpus=None) -> tuple[int, int] | None:
    """``(steal ticks, number of CPUs they cover)`` from the text of ``/proc/stat``.

    Summed over the per-CPU lines (``cpuN``) of ``cpus`` when given and every one of them has a line;
    otherwise the all-CPU line (``cpu``), which covers every CPU listed in the file. None when there is no
    text or no steal column.
    """
    if not text:
        return None
    total, per = None, {}
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        parts = line.split()
        if len(parts) <= STEAL_COLUMN:
            return None
        try:
            steal = int(parts[STEAL_COLUMN])
            if parts[0] == "cpu":
                total = steal
            else:
                per[int(parts[0][3:])] = steal
        except ValueError:
            continue
    if cpus is not None:
        cpus = sorted(set(cpus))
        if cpus and all(c in per for c in cpus):
            return sum(per[c] for c in cpus), len(cpus)
    if total is None:
        return None
    return total, len(per) or 1


def parse_procs_running(text: str | None) -> int | None:
    """``procs_running`` of ``/proc/stat``: runnable threads at this instant, the reader included."""
    for line in (text or "").splitlines():
        if line.startswith("procs_running "):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def load_now() -> dict:
    """The machine's load at this instant: ``load1`` (1-minute load average) and ``procs_running``.

    The load average is smoothed over a minute, so it includes the rounds this run has just run; the
    instantaneous ``procs_running`` (read by a runner between rounds, so it counts the runner itself)
    is not."""
    try:
        load1 = round(os.getloadavg()[0], 3)
    except (AttributeError, OSError):
        load1 = None
    return {"load1": load1, "procs_running": parse_procs_running(read_proc_stat())}


class StealMeter:
    """CPU steal time between two marks, over the CPUs this process may run on (its affinity, which its
    peers inherit), or over all CPUs where ``/proc/stat`` does not list them one by one."""

    def __init__(self, path: str = PROC_STAT, cpus=None):
        self.path = path
        self.cpus = allowed() if cpus is None else cpus
        self.started = False
        self.first: tuple[int, tuple[int, int]] | None = None
        self.last: tuple[int, tuple[int, int]] | None = None

    def _read(self):
        got = parse_steal(read_proc_stat(self.path), self.cpus)
        return (time.perf_counter_ns(), got) if got is not None else None

    def mark(self) -> None:
        """The first call starts the span, every later call ends it."""
        got = self._read()
        if not self.started:
            self.started = True
            self.first = got
        else:
            self.last = got

    def result(self) -> tuple[float | None, float | None, int | None]:
        """``(steal_s, span_s, cpus)``; Nones without two readings of the same CPUs."""
        if self.first is None or self.last is None or self.first[1][1] != self.last[1][1]:
            return None, None, None
        (t0, (s0, n)), (t1, (s1, _)) = self.first, self.last
        return round(max(0, s1 - s0) * CLOCK_TICK_S, 3), round((t1 - t0) / 1e9, 6), n


def _reap(proc, grace: float = 2.0) -> None:
    """Join a multiprocessing.Process; escalate terminate -> kill if it does not exit."""
    if proc.pid is None:
        return
    proc.join(grace)
    if proc.is_alive():
        proc.terminate()
        proc.join(grace)
    if proc.is_alive():
        proc.kill()
        proc.join(grace)


def _descendants() -> list[psutil.Process]:
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


HELPER_MODULES = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")


def _is_helper(p: psutil.Process, me: int) -> bool:
    """A forkserver or resource tracker this process started (its children, forked from the forkserver,
    share its command line but not its parent)."""
    try:
        return p.ppid() == me and any(m in " ".join(p.cmdline()) for m in HELPER_MODULES)
    except psutil.Error:
        return False


def kill_descendants() -> None:
    """SIGKILL every process below this one and wait for them (bounded)."""
    kids = _descendants()
    for p in kids:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(kids, timeout=2)


def process_cpu_seconds(proc: psutil.Process) -> float | None:
    """CPU seconds used so far by all threads of a process.

    On Linux, the sum of ``/proc/PID/task/*/schedstat`` (nanoseconds of run time): exact, where the
    user/system times behind psutil.cpu_times() tick at 10 ms, too coarse for a 50 ms window.
    Elsewhere, psutil's user + system.
    """
    try:
        tasks = os.listdir(f"/proc/{proc.pid}/task")
    except OSError:
        tasks = None
    if tasks is not None:
        total = 0
        for tid in tasks:
            try:
                with open(f"/proc/{proc.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue    # a thread that just ended
        return total / 1e9
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def process_minor_faults(pid: int) -> int | None:
    """Minor page faults of a process so far, all its threads (``/proc/PID/stat``, field 10): each is a page
    the kernel had to map on first touch, e.g. of a buffer the allocator had just got from ``mmap``. None
    where there is no such file."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[7])
    except (OSError, ValueError, IndexError):
        return None


def exit_reason(proc) -> str | None:
    """Why a watched process's exit fails the round; None while it runs or after a clean exit."""
    code = proc.exitcode                   # polls without blocking
    if not code:
        return None
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    return f"peer process {proc.name!r} {how} during the round"


class PeerMonitor(threading.Thread):
    """Fails the round as soon as a watched peer exits when it should not have.

    A peer may exit with status 0 once the pattern has called ``Round.stopping()``; any other exit (a
    crash, a signal, ``os._exit``) calls ``on_failure(reason)``.

    The thread sleeps until a peer exits or ``watch()``/``close()`` write to its wake-up pipe: never on a
    timer. It used to wait 0.2 s at a time, and that timed wait in the timing process made round trips
    faster than a user's loop gets on a VM whose idle CPUs halt (socketpair 8 B round trip on the 2-vCPU
    reference VM: +6-10 % in three runs of ``python tools/timer_wakeups.py``; an untimed wait, or this
    monitor now, +0-3 %): see docs/measurement.md, "Timers in the timing process".
    """

    def __init__(self, on_failure):
        super().__init__(name="ipcbench-peer-monitor", daemon=True)
        self._procs: list = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.stopping = False
        self._on_failure = on_failure
        # watch() and close() wake the thread through this pipe; it never wakes on a timer (class doc)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def _wake(self) -> None:
        """Wake the thread (the caller holds ``_lock``); a full pipe already holds wake-ups enough."""
        if self._wake_w is not None:
            try:
                os.write(self._wake_w, b"w")
            except BlockingIOError:
                pass

    def watch(self, proc) -> None:
        with self._lock:
            self._procs.append(proc)
            self._wake()

    def watched(self) -> list:
        with self._lock:
            return list(self._procs)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._wake()

    def fail(self, reason: str) -> None:
        """A failure seen elsewhere (a thread peer's exception): the round's failure, as a dead peer's is."""
        if not self._closed.is_set():
            self._on_failure(reason)

    def run(self) -> None:
        try:
            self._watch()
        finally:
            with self._lock:
                for fd in (self._wake_r, self._wake_w):
                    os.close(fd)
                self._wake_r = self._wake_w = None

    def _watch(self) -> None:
        from multiprocessing.connection import wait

        judged: set[int] = set()
        while not self._closed.is_set():
            with self._lock:
                procs = list(self._procs)
            # One reading of every exit code serves both the judging and the wait below: a peer that
            # exits after it is in ``alive`` and wakes the wait (its sentinel); read again for ``alive``,
            # a peer that exited in between would be judged by nobody and waited on by nothing.
            alive = []
            for p in procs:
                code = p.exitcode              # polls without blocking
                if code is None:
                    alive.append(p.sentinel)
                    continue
                if id(p) in judged:
                    continue
                judged.add(id(p))
                if self._closed.is_set():
                    return
                if code != 0:
                    self._on_failure(exit_reason(p))
                    return
                if not self.stopping:
                    self._on_failure(f"peer process {p.name!r} exited before the round was finished")
                    return
            if self._wake_r in wait(alive + [self._wake_r]):
                os.read(self._wake_r, 4096)


class Round:
    """One round of one case, run inside the orchestrator process."""

    def __init__(self, case: Case, spec: RoundSpec, on_failure=None, track_steal: bool = False,
                 peers: str = "process"):
        self.case = case
        self.peer_kind = peers          # "process", or "thread" for a mechanism measured inside one process
        self.spec = spec
        # Placement first: this thread's CPU is inherited by every thread and process started below.
        self.placer = Placer(case.placement)
        self.placer.pin_self()
        self._before = frozenset(p.pid for p in _descendants())    # processes that are not this round's
        self._seen = set(self._before)
        self.ctx = mp.get_context(case.start_method)
        self.stack = ExitStack()
        self.peers: list = []
        # What a mechanism's maker says about the channel it built (e.g. a queue's maxsize), recorded in the
        # round's params by the patterns that use one channel one way (stream, fanin).
        self.channel_params: dict = {}
        # One-way queues are unbounded, as users make them (channels.one_way_maxsize), except where the
        # producers must stop on a flag without leaving a backlog to drain (the pytest-benchmark sessions).
        self.bounded_queues = False
        self._monitor = PeerMonitor(on_failure or (lambda reason: None))
        self._monitor.start()
        self._procs: list[psutil.Process] | None = None
        self._faults_first: dict[int, int] | None = None     # minor faults per pid at the first snapshot
        self._faults_last: dict[int, int] | None = None      # ... and at the last one
        self._payload = None
        self._grace = 2.0   # how long a peer gets to exit by itself when the round closes
        # Steal over the timed window: read at the first and the last cpu_snapshot (sessions, which take
        # snapshots around every window, leave it off).
        self._steal = StealMeter(cpus=self.placer.round_cpus) if track_steal else None

    # -- setup -------------------------------------------------------------------------------------
    @property
    def payload(self):
        if self._payload is None:
            self._payload = make_payload(self.case.payload_kind, self.case.payload_bytes)
        return self._payload

    def start_peer(self, target, *args, name: str):
        if self.peer_kind == "thread":
            return self._start_thread(target, args, name)
        proc = self.ctx.Process(target=target, args=args, name=name, daemon=True)
        proc.start()
        self.peers.append(proc)
        self.stack.callback(lambda: _reap(proc, self._grace))
        self._monitor.watch(proc)
        self._place_new(name)
        return proc

    def _start_thread(self, target, args, name: str):
        """A peer as a thread of this process (the baseline ``thread_queue``): pinned to its own CPU like a
        peer process would be (a thread can pin itself alone), its exception a peer failure."""
        cpu = self.placer.next_cpu()
        started = threading.Event()
        tid: list[int] = []

        def main():
            tid.append(threading.get_native_id())
            if cpu is not None:
                try:
                    os.sched_setaffinity(0, {cpu})
                except OSError:
                    pass
            started.set()
            try:
                target(*args)
            except BaseException as exc:  # noqa: BLE001 - a peer's failure is the round's failure
                if not self._monitor.stopping:
                    self._monitor.fail(f"peer thread {name!r} raised {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=main, name=name, daemon=True)
        thread.start()
        started.wait()
        self.placer.place_thread(tid[0], name, cpu)
        self.peers.append(thread)
        self.stack.callback(thread.join, self._grace)
        return thread

    def manager(self):
        mgr = self.ctx.Manager()
        self.stack.callback(mgr.shutdown)
        mgr._process.name = "manager"          # its server: a peer like any other (SyncManager-N otherwise)
        self._monitor.watch(mgr._process)
        self._place_new("manager")
        return mgr

    def pool(self, processes: int):
        pool = self.ctx.Pool(processes)
        self.stack.callback(self._close_pool, pool)
        for worker in pool._pool:              # a worker that dies loses its task: Pool.apply would wait for ever
            self._monitor.watch(worker)
        self._place_new("pool-worker")
        return pool

    def executor(self, workers: int):
        """A ``ProcessPoolExecutor`` of the case's start method with all its workers started (a task each),
        watched, placed, and shut down with the round (cancelling what is left)."""
        from concurrent.futures import ProcessPoolExecutor

        ex = ProcessPoolExecutor(max_workers=workers, mp_context=self.ctx)
        self.stack.callback(ex.shutdown, wait=True, cancel_futures=True)
        # Workers start on demand (spawn, forkserver) or all at the first submit (fork): keep more of them
        # busy at once than there are workers, until every one exists, so none starts inside the clock.
        deadline = time.monotonic() + self.spec.timeout_s
        while len(ex._processes) < workers and time.monotonic() < deadline:
            for f in [ex.submit(time.sleep, 0.02) for _ in range(2 * workers)]:
                f.result(timeout=self.spec.timeout_s)
        for proc in list(ex._processes.values()):
            self._monitor.watch(proc)
        self._place_new("executor-worker")
        return ex

    def _place_new(self, role: str) -> None:
        """Give every process started since the last call (a peer, a Manager's server, Pool workers) its
        CPU; multiprocessing's helpers (forkserver, resource tracker) stay where they are."""
        if not self.placer.pinned:
            return
        me = os.getpid()
        for p in sorted(_descendants(), key=lambda p: p.pid):
            if p.pid in self._seen:
                continue
            self._seen.add(p.pid)
            if not _is_helper(p, me):
                self.placer.place(p.pid, role)

    def _close_pool(self, pool) -> None:
        # After a clean round the pool is idle: close+join lets workers exit on their own. terminate()
        # signals workers, and races with the pool's own repopulation thread; keep it for failures.
        if self._grace > 1:
            pool.close()
        else:
            pool.terminate()
        pool.join()

    def dead_peer(self, wait_s: float = 0.2) -> str | None:
        """The reason of a watched process that exited abnormally (waiting up to ``wait_s`` for one to be
        reaped), or None. A peer's death shows first as an error in this process (EOFError on its pipe, a
        broken connection), often before the monitor looks: the dead peer is the reason to give."""
        from multiprocessing.connection import wait

        deadline = time.monotonic() + wait_s
        procs = self._monitor.watched()
        while True:
            for p in procs:
                reason = exit_reason(p)
                if reason:
                    return reason
            alive = [p.sentinel for p in procs if p.exitcode is None]
            left = deadline - time.monotonic()
            if not alive or left <= 0:
                return None
            wait(alive, left)

    def stopping(self) -> None:
        """From now on peers may exit normally (they have been told to stop)."""
        self._monitor.stopping = True

    # -- measurement helpers -----------------------------------------------------------------------
    def warmup(self, op, settle: bool = True) -> int:
        """Run ``op`` until its timing is stable (``stable_warmup``): at least ``spec.warmup`` times and
        ``spec.warmup_min_s`` seconds, at most for ``spec.warmup_s`` (or ``warmup_min_s``, if longer);
        returns the number of calls. ``settle=False``: exactly ``spec.warmup`` calls (at least 1), or fewer
        if ``spec.warmup_s`` passes first: for a caller whose peers were sized for that many (the
        pytest-benchmark sessions' stream producers)."""
        if settle:
            return stable_warmup(op, self.spec.warmup, self.spec.warmup_s, min_s=self.spec.warmup_min_s)
        deadline = time.perf_counter() + self.spec.warmup_s
        n = 0
        while n < max(1, self.spec.warmup):
            op()
            n += 1
            if time.perf_counter() >= deadline:
                break
        return n

    def _processes(self) -> list[psutil.Process]:
        return [psutil.Process(), *_descendants()]

    def cpu_snapshot(self) -> dict[int, float]:
        """CPU seconds per pid, for this process and every process below it (``process_cpu_seconds``).

        The process list is resolved on the first call (after peers, managers and pools exist) so that
        later snapshots only read counters and stay cheap. With steal tracking, ``/proc/stat`` is read
        before the counters on the first call and after them on later ones: outside the CPU window.
        """
        steal = self._steal
        first = steal is not None and not steal.started
        if first:
            steal.mark()
        if self._procs is None:
            self._procs = self._processes()
        out = {}
        faults = {}
        for p in self._procs:
            t = process_cpu_seconds(p)
            if t is not None:
                out[p.pid] = t
            f = process_minor_faults(p.pid)
            if f is not None:
                faults[p.pid] = f
        if self._faults_first is None:
            self._faults_first = faults
        else:
            self._faults_last = faults
        if steal is not None and not first:
            steal.mark()
        return out

    def faults(self) -> int | None:
        """Minor page faults of every process between the first and the last ``cpu_snapshot`` (the timed
        window of every pattern that has one), summed over the processes seen at both; None without two
        snapshots. They include the harness's own (a few list appends per op: rarely a new page)."""
        first, last = self._faults_first, self._faults_last
        if first is None or last is None:
            return None
        return sum(last[pid] - first[pid] for pid in last if pid in first)

    def steal(self) -> tuple[float | None, float | None, int | None]:
        """``(steal_s, span_s, cpus)`` between the first and the last ``cpu_snapshot`` (the timed window
        of every pattern that has one); Nones without steal tracking or two snapshots."""
        return self._steal.result() if self._steal is not None else (None, None, None)

    @staticmethod
    def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(after[pid] - before[pid] for pid in after if pid in before)

    def placement(self) -> dict:
        """The placement asked for and applied (``Placer.record``: CPU order, the CPU assigned to each
        process, each process's affinity read back) and the CPU each process last ran on."""
        procs = [p for p in self._procs or self._processes() if p.pid not in self._before]
        cpus = {}
        for p in procs:
            try:
                cpus[str(p.pid)] = p.cpu_num()
            except (psutil.Error, AttributeError):
                pass
        return {**self.placer.record([p.pid for p in procs]), "last_cpu": cpus}

    def close(self, ok: bool = True) -> None:
        """Reap everything. After a failure peers may be blocked, so they get little time to exit."""
        if not ok:
            self._grace = 0.2
        self._monitor.stopping = True
        self._monitor.close()
        # Teardown itself can hang (a Pool join racing its worker handler, a wedged Manager): bound it,
        # and if it does not finish, SIGKILL every process below this one so the joins return.
        closer = threading.Thread(target=self.stack.close, name="ipcbench-teardown", daemon=True)
        closer.start()
        closer.join(self.spec.timeout_s)
        if closer.is_alive():
            kill_descendants()
            closer.join(5)
        self.placer.restore()
