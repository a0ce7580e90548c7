"""Does a timed wait in another thread of the timing process change a round trip's rate? A socketpair
ping-pong of 9-byte messages (``os.write`` + ``os.read``, the parent on CPU 0, the echo on CPU 1, as a
spread round places them), timed as one clock read around N round trips, with one of these beside it in
the parent process:

    none      nothing (a user's loop)
    inf       a thread blocked in ``multiprocessing.connection.wait([echo sentinel])`` with no timeout
    monitor   ipcbench's ``harness.PeerMonitor`` watching the echo (needs PYTHONPATH=src)
    P         (a number of seconds) a thread looping on that wait with ``timeout=P``: what PeerMonitor
              did until 2026-12-03, with P = 0.2
    proc:P    another process (unpinned) that sleeps P seconds at a time: what a progress display
              refreshing P times a second in the runner is to a round

The conditions rotate rep by rep; printed: the median rate of each and the geometric mean of its paired
ratio to the first condition.

    PYTHONPATH=src python tools/timer_wakeups.py [--reps 30] [--n 5000] [--conditions none,inf,0.2,monitor]

On the 2-vCPU reference VM (Firecracker, cpuidle haltpoll with guest_halt_poll_ns=0: every idle CPU
halts; 2026-12-03 ~19:00 UTC, --reps 30, conditions none,inf,0.2,0.05,1.0): 1.027 (inf), 1.065 (0.2),
1.112 (0.05), 1.014 (1.0) of ``none``: each timer wake-up of a process makes that VM's next wake-ups
cheaper for a while, so a timed wait anywhere in the timing process speeds its round trips up, more the
more often it fires (docs/measurement.md, "Timers in the timing process").
"""

import argparse
import os
import socket
import statistics
import threading
import time
from multiprocessing import get_context
from multiprocessing.connection import wait

K = 9   # a mark and 8 bytes: what the socketpair floor sends for an 8 B payload


def echo(sock) -> None:
    os.sched_setaffinity(0, {1})
    fd = sock.fileno()
    while True:
        m = os.read(fd, K)
        if m[:1] == b"q":
            return
        os.write(fd, m)


def timed(fd: int, msg: bytes, n: int) -> float:
    write, read = os.write, os.read
    t0 = time.perf_counter()
    for _ in range(n):
        write(fd, msg)
        read(fd, K)
    return n / (time.perf_counter() - t0)


def _tick(period: float) -> None:
    os.sched_setaffinity(0, {0, 1})
    while True:
        time.sleep(period)


def beside(condition: str, proc):
    """Start what runs beside the loop; returns its stop function."""
    if condition == "none":
        return lambda: None
    if condition.startswith("proc:"):
        ticker = proc.__class__(target=_tick, args=(float(condition[5:]),), daemon=True)
        ticker.start()

        def stop_ticker():
            ticker.kill()
            ticker.join()
        return stop_ticker
    if condition == "monitor":
        from ipcbench.measure.harness import PeerMonitor

        mon = PeerMonitor(lambda reason: None)
        mon.start()
        mon.watch(proc)
        mon.stopping = True

        def stop_monitor():
            mon.close()
            mon.join(5)
        return stop_monitor
    period = None if condition == "inf" else float(condition)
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            wait([proc.sentinel], timeout=period)
    t = threading.Thread(target=watch, daemon=True)
    t.start()

    def stop_thread():
        stop.set()          # an untimed waiter leaves when the echo exits
    return stop_thread


def one(ctx, condition: str, n: int) -> float:
    a, b = socket.socketpair()
    p = ctx.Process(target=echo, args=(b,), daemon=True)
    p.start()
    stop = beside(condition, p)
    try:
        fd, msg = a.fileno(), b"x" * K
        timed(fd, msg, 2000)                     # warm-up
        return timed(fd, msg, n)
    finally:
        a.sendall(b"q" * K)
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()
        stop()
        a.close()
        b.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=30, help="rotations of the conditions (default 30)")
    parser.add_argument("--n", type=int, default=5000, help="round trips timed a run (default 5,000)")
    parser.add_argument("--conditions", default="none,inf,0.2,monitor",
                        help="comma list: none, inf, monitor, P (a thread's timeout in seconds) or proc:P "
                             "(a process sleeping P s at a time) (default none,inf,0.2,monitor)")
    args = parser.parse_args()
    conds = args.conditions.split(",")
    for c in conds:
        if c not in ("none", "inf", "monitor"):
            try:
                if float(c.removeprefix("proc:")) <= 0:
                    raise ValueError
            except ValueError:
                parser.error(f"unknown condition {c!r}: none, inf, monitor, or P or proc:P with P a positive "
                             "number of seconds")
    if args.reps < 1 or args.n < 1:
        parser.error("--reps and --n: at least 1")
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        parser.error("needs CPUs 0 and 1")
    ctx = get_context("fork")
    os.sched_setaffinity(0, {0})
    rates: dict[str, list[float]] = {c: [] for c in conds}
    for rep in range(args.reps):
        k = rep % len(conds)
        for c in conds[k:] + conds[:k]:
            rates[c].append(one(ctx, c, args.n))
    for c, v in rates.items():
        ratio = statistics.geometric_mean([x / y for x, y in zip(v, rates[conds[0]])])
        print(f"{c:8s} median {statistics.median(v):7.0f} round trips/s   vs {conds[0]}: {ratio:.3f}")


if __name__ == "__main__":
    main()
