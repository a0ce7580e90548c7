"""The services of one ``celery`` round: a Redis server and a Celery worker, started by the round as its
peers and stopped with it, so that nothing outlives the round.

**Redis** (``start_redis``): a peer process, ``supervise_redis``, starts ``redis-server`` (see
``redis_server_binary``) reading its configuration from stdin, so neither the configuration nor the
password is in a file or on a command line: it listens on a free port of 127.0.0.1 only, requires a
random password (the workers accept pickles: nobody else on this machine may enqueue one), keeps nothing
on disk (``save ""``, ``appendonly no``) and has no output buffer limit for pub/sub clients (Celery's
results travel by pub/sub; the default limit, 32 MiB, would cut off a client receiving large results).
The supervisor reports the port once the server says it is ready (it picks another port, up to three
times, if the one it picked was taken meanwhile), passes the server's log on to the round's stderr,
and exits with the server's status (a server that dies fails the round through the peer monitor). The
server dies with the supervisor (``PR_SET_PDEATHSIG``), the supervisor with the round, and the round's
runner kills the round's whole process group in the end anyway.

**Worker** (``start_worker``): a peer process running a Celery worker (``worker.run_local``) with the
case's number of prefork processes, on a queue of its own (so that no other worker of a shared broker
takes its tasks). Its pool processes are placed like any peer (``Round.placer``), and the round's CPU
accounting covers them, the worker and the server (they are all below the round's process).

Stopping (the round's ``stack``, whatever ended the round): the client's connections, then the worker and
its pool processes (SIGKILL, see ``stop_worker``), then the server (SIGTERM through its supervisor, which
exits once the server has; nothing is saved).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time

from .worker import die_with_parent, run_local

STOP_GRACE_S = 3.0
PORT_TRIES = 3
READY_LINE = b"Ready to accept connections"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (the server may still lose it to another process: the
    supervisor then tries another)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_config(port: int, password: str) -> str:
    """The configuration of the round's Redis (``redis-server -`` reads it from stdin)."""
    return "\n".join([
        f"port {port}", "bind 127.0.0.1", "protected-mode yes", f"requirepass {password}",
        'save ""', "appendonly no", "daemonize no", "loglevel notice", 'logfile ""', "databases 1",
        "client-output-buffer-limit pubsub 0 0 0", "client-output-buffer-limit normal 0 0 0",
        "",
    ])


def supervise_redis(binary: str, password: str, conn, timeout_s: float) -> None:
    """The peer that runs the round's Redis (see the module docstring). Sends ``("ready", port, pid)`` or
    ``("failed", reason)`` on ``conn``; exits as the server does."""
    die_with_parent(signal.SIGTERM)
    state = {"proc": None, "stopping": False}

    def on_term(signum, frame):
        state["stopping"] = True
        proc = state["proc"]
        if proc is not None and proc.poll() is None:
            proc.terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log: list[bytes] = []
    for _ in range(PORT_TRIES):
        port = free_port()
        proc = subprocess.Popen([binary, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=_server_child, close_fds=True)
        state["proc"] = proc
        try:
            proc.stdin.write(redis_config(port, password).encode())
            proc.stdin.close()
        except BrokenPipeError:            # it ended before reading its configuration: its output says why
            pass
        log = []
        deadline = time.monotonic() + timeout_s
        ready = False
        for line in proc.stdout:           # until the server is ready, or ends (EOF)
            log.append(line)
            if READY_LINE in line:
                ready = True
                break
            if time.monotonic() > deadline:
                break
        if ready:
            conn.send(("ready", port, proc.pid))
            conn.close()
            for line in proc.stdout:       # pass the log on (and keep the pipe from filling) until it ends
                _forward(line)
            code = proc.wait()
            _exit_as(code, state["stopping"])
            return
        proc.kill()
        proc.wait()
        if state["stopping"]:
            return
        if not any(b"Address already in use" in ln for ln in log):
            break                          # some other failure: trying another port will not help
    tail = next((ln.decode(errors="replace").strip() for ln in reversed(log) if ln.strip()), "no output")
    conn.send(("failed", f"redis-server ({binary}) did not start: {tail}"))
    conn.close()
    while not state["stopping"]:           # the round fails with that reason, then stops this peer
        time.sleep(0.05)


def _server_child() -> None:
    """In the server's process, before exec: it dies with its supervisor, and takes SIGINT normally."""
    die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _forward(line: bytes) -> None:
    try:
        os.write(2, b"redis-server: " + line)
    except OSError:
        pass


def _exit_as(code: int, stopping: bool) -> None:
    """Exit as the server did: killed by the same signal, or with its status (0 when told to stop)."""
    sys.stderr.flush()
    if stopping:
        return
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1)
    raise SystemExit(code or 0)


class Redis:
    """The round's Redis: its URL (with the password), port, server pid and where the binary came from."""

    def __init__(self, url: str, port: int, pid: int, binary: str, source: str):
        self.url, self.port, self.pid, self.binary, self.source = url, port, pid, binary, source


def start_redis(rnd, binary: str, source: str) -> Redis:
    """Start the round's Redis (a peer of ``rnd``, stopped with it) and wait until it accepts connections."""
    from ..harness import RoundFailed

    password = secrets.token_hex(16)
    timeout = rnd.spec.timeout_s
    r, w = rnd.ctx.Pipe(duplex=False)
    proc = rnd.start_peer(supervise_redis, binary, password, w, timeout, name="redis-server")
    rnd.stack.callback(_stop_supervisor, proc)          # runs before the peer's reaping (a LIFO stack)
    w.close()
    if not r.poll(timeout + 5):
        raise RoundFailed(f"redis-server ({binary}) did not say it was ready within {timeout:g} s")
    try:
        got = r.recv()
    except EOFError:
        raise RoundFailed(rnd.dead_peer(1.0) or "the redis-server supervisor ended without a word") from None
    finally:
        r.close()
    if got[0] != "ready":
        raise RoundFailed(got[1])
    _, port, pid = got
    rnd.placer.place(pid, "redis-server")
    return Redis(f"redis://:{password}@127.0.0.1:{port}/0", port, pid, binary, source)


def _stop_supervisor(proc) -> None:
    if proc.exitcode is None:
        proc.terminate()
        proc.join(STOP_GRACE_S)


def start_worker(rnd, broker_url: str, queue: str, concurrency: int, force_root: bool):
    """Start a local Celery worker of ``concurrency`` prefork processes on ``queue`` (a peer of ``rnd``,
    stopped with it); its process."""
    hostname = f"ipcbench-{os.getpid()}-{secrets.token_hex(3)}@{socket.gethostname()}"
    proc = rnd.start_peer(run_local, broker_url, queue, concurrency, hostname, force_root, name="celery-worker")
    rnd.stack.callback(stop_worker, proc)
    return proc, hostname


def pool_pids(worker_pid: int) -> list[int]:
    """The worker's pool processes (its children), by pid."""
    import psutil

    try:
        return sorted(p.pid for p in psutil.Process(worker_pid).children())
    except psutil.Error:
        return []


def stop_worker(proc) -> None:
    """SIGKILL to the worker and its pool processes, at once: when a round ends nothing is in flight, and
    with Celery's early acknowledgement the broker keeps nothing for the worker (its queue is the round's
    own); a warm or cold shutdown would take a second or two of every round for nothing."""
    import psutil

    if proc.exitcode is not None:
        return
    try:
        below = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        below = []
    proc.kill()
    for p in below:
        try:
            p.kill()
        except psutil.Error:
            pass
    proc.join(STOP_GRACE_S)
    wait_gone(below, STOP_GRACE_S)


def wait_gone(procs, timeout: float) -> list:
    """Wait until none of ``procs`` runs (gone, or a zombie: orphans are reaped by init, which may take
    its time); those still running after ``timeout``."""
    import psutil

    def running(p) -> bool:
        try:
            return p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    deadline = time.monotonic() + timeout
    alive = [p for p in procs if running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.01)
        alive = [p for p in alive if running(p)]
    return alive
