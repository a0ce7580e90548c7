"""Entry point of the process that runs one round of one case: ``python -m ipcbench.measure.orchestrator IN OUT``.

IN is a JSON file ``{"case": {...}, "spec": {...}}``; OUT receives ``{"ok": true, "result": {...}}`` or
``{"ok": false, "error": "..."}``, written atomically. The round runs in a session of its own so that, if
all else fails, the runner can kill the whole process group. It starts one of two ways (``launcher.py``):
forked from the runner's warm launcher, which has run ``preload()`` and calls ``main([IN, OUT])`` in the
child (the default), or as a fresh interpreter (``--fresh-rounds``). Either way ``main`` does the same.

Failure handling, from inside out:
* a pattern raises (RoundFailed, EOFError, ...) -> error written, everything reaped, exit 0;
* a peer dies -> the peer monitor writes the error, kills every process below this one, and exits;
* SIGTERM from the runner (round deadline or Ctrl-C) -> SystemExit, so ``finally`` reaps the peers;
* the runner itself dies -> PR_SET_PDEATHSIG delivers SIGTERM here (Linux).

CPU steal time (``steal_s``, ``steal_span_s``, ``steal_cpus`` of the result) is read from ``/proc/stat`` over
the round's timed window (the first and last CPU snapshot of the driver); a driver without one
(``startup``, whose every operation is timed) gets the steal over its whole run instead.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import threading


def _write_json(path: str, obj) -> None:
    from ..results.io import write_text_atomic

    write_text_atomic(path, json.dumps(obj))


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def preload() -> None:
    """Import everything a round imports, for the warm launcher (``launcher.serve``) to fork from: the
    same modules for every case, whatever its mechanism, and nothing allocated beyond them."""
    import ctypes  # noqa: F401  (_die_with_parent)

    from ..plan.cases import Case, RoundSpec  # noqa: F401
    from ..results import io  # noqa: F401
    from . import harness  # noqa: F401
    from .mechanisms import all_mechanisms

    all_mechanisms()        # every mechanism module (and plugin), so each imports what it uses


def main(argv: list[str]) -> int:
    in_path, out_path = argv
    _die_with_parent()

    me = os.getpid()

    def on_term(signum, frame):
        if os.getpid() != me:
            # A forked peer or Pool worker inherited this handler: die the default way, at once, as
            # Pool.terminate() expects (raising SystemExit there can deadlock the pool's teardown).
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    # Processes forked from here (fork peers, Pool workers) die of SIGTERM the default way, at once. Keeping
    # on_term there loses signals: a Python handler runs between bytecodes, and a SIGTERM that lands just
    # before a blocking call (a Pool worker entering its inqueue lock, which Pool.terminate holds) is never
    # acted on, so Pool.terminate's join hangs until the round's teardown bound.
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    # On a deadline the runner sends SIGUSR1 first: every thread's stack goes to stderr, so the failure
    # reason can say where the round was stuck.
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the runner's to handle

    with open(in_path) as f:
        job = json.load(f)

    from ..plan.cases import Case, RoundSpec
    from .harness import Round, StealMeter, kill_descendants
    from .mechanisms import get

    case = Case.from_dict(job["case"])
    spec = RoundSpec.from_dict(job["spec"])
    failed = threading.Event()

    def on_peer_failure(reason: str) -> None:
        if failed.is_set():
            return
        failed.set()
        _write_json(out_path, {"ok": False, "error": reason})
        kill_descendants()
        os._exit(3)

    mech = get(case.mechanism)
    pattern = mech.patterns[case.pattern]     # the declaration: its driver runs the round
    rnd = Round(case, spec, on_failure=on_peer_failure, track_steal=True, peers=mech.peers)
    whole = StealMeter()
    ok = False
    try:
        whole.mark()
        result = pattern.run(rnd, mech)
        whole.mark()
        steal = rnd.steal()
        if steal[0] is None:
            steal = whole.result()
        result.steal_s, result.steal_span_s, result.steal_cpus = steal
        if result.minor_faults is None and result.cpu_s is not None:
            result.minor_faults = rnd.faults()
        ok = True
    except Exception as exc:  # every failure of a round is data: write it, reap, and go on
        if not failed.is_set():
            failed.set()
            msg = rnd.dead_peer()         # the cause, rather than the EOFError it gave this process
            if msg is None:
                msg = str(exc)
                if type(exc).__name__ != "RoundFailed":
                    msg = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
            _write_json(out_path, {"ok": False, "error": msg})
        return 0
    finally:
        rnd.close(ok=ok)
    if not failed.is_set():
        _write_json(out_path, {"ok": True, "result": result.to_dict()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
