"""A Celery worker process: the local worker a round starts (``run_local``, a peer of the round) and
``ipcbench celery-worker`` (``run``), which starts one on any host that reaches the broker.

The worker uses Celery's prefork pool (``--pool prefork``) with ``concurrency`` processes, forked by the
worker at its start (Celery's pool forks them, whatever the case's start method), and Celery's defaults
otherwise (prefetch multiplier 4, early acknowledgement), except that gossip, mingle and heartbeats are
off: they are for clusters of workers talking to each other and only slow the start.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int) -> None:
    """Linux: ``sig`` to this process when the thread that started it ends (a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))
    except (OSError, AttributeError):
        pass


def make_worker(broker_url: str, queue: str, concurrency: int, hostname: str | None = None,
                loglevel: str = "WARNING", remote_control: bool = True):
    """A ``celery.apps.worker.Worker`` (not started) of ``concurrency`` prefork processes on ``queue``."""
    from .app import make_app

    app = make_app(broker_url, queue, remote_control=remote_control)
    return app.Worker(hostname=hostname or f"ipcbench-{os.getpid()}@{socket.gethostname()}",
                      pool_cls="prefork", concurrency=concurrency, queues=[queue], loglevel=loglevel,
                      without_gossip=True, without_mingle=True, without_heartbeat=True, quiet=True)


def run(broker_url: str, queue: str, concurrency: int, hostname: str | None = None,
        loglevel: str = "WARNING", remote_control: bool = True) -> int:
    """Run a worker until it is told to stop (SIGTERM: warm shutdown, SIGQUIT: cold); its exit status."""
    worker = make_worker(broker_url, queue, concurrency, hostname, loglevel, remote_control)
    worker.start()
    return worker.exitcode or 0


def run_local(broker_url: str, queue: str, concurrency: int, hostname: str, force_root: bool) -> None:
    """The target of a round's worker peer: dies with the round's process (its pool processes die with it:
    Celery sets the same for them), and as root accepts pickle only when ``force_root`` (ipcbench's own
    password-protected Redis; see ``app``)."""
    die_with_parent(signal.SIGKILL)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)   # the round ignores SIGINT; Celery installs its own handlers
    if force_root and (os.getuid() == 0 or os.geteuid() == 0):
        import warnings

        os.environ["C_FORCE_ROOT"] = "1"
        warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges")
    code = run(broker_url, queue, concurrency, hostname, remote_control=False)
    sys.stdout.flush()
    sys.stderr.flush()
    if code:
        raise SystemExit(code)
