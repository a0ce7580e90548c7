"""Where does a case's spread come from: between rounds (fresh processes), or within a round, from one
short window to the next? A Pipe round trip of 8 B (``Connection.send``/``recv``; the timing side on CPU 0,
an echo child forked onto CPU 1, as placement ``spread`` does), ROUNDS rounds, each a fresh pair of
processes that warms up for 0.05 s and then times WINDOWS windows of 0.05 s back to back. For the p50 and
the throughput of a window it prints the sd of the logs between the windows of one round (median over
rounds), the sd between rounds of their window means, and the part of the latter the windows alone
would give (within sd / sqrt(WINDOWS)): where the between-round sd is far above it, fresh processes
differ by more than the moment does (Kalibera and Jones's variance per level).

    python tools/variance_levels.py [ROUNDS] [WINDOWS]     # default 20 rounds of 8 windows, ~20 s

Needs 2 CPUs and an otherwise idle machine. docs/measurement.md ("Rounds are the evidence") has what it
showed on the reference VM.
"""

import math
import multiprocessing as mp
import os
import statistics
import sys
import time

WINDOW_S = 0.05
WARMUP_S = 0.05
MSG = b"x" * 8


def _echo(conn) -> None:
    os.sched_setaffinity(0, {1})
    while True:
        m = conn.recv()
        if m is None:
            return
        conn.send(m)


def one_round(windows: int) -> list[tuple[float, float]]:
    """(p50 in ns, round trips per second) of each window of one fresh pair of processes."""
    a, b = mp.Pipe()
    peer = mp.get_context("fork").Process(target=_echo, args=(b,))
    peer.start()
    try:
        os.sched_setaffinity(0, {0})
        end = time.perf_counter() + WARMUP_S
        while time.perf_counter() < end:
            a.send(MSG)
            a.recv()
        out = []
        for _ in range(windows):
            samples, t0 = [], time.perf_counter()
            end = t0 + WINDOW_S
            while True:
                t = time.perf_counter_ns()
                a.send(MSG)
                a.recv()
                samples.append(time.perf_counter_ns() - t)
                if time.perf_counter() >= end:
                    break
            out.append((statistics.median(samples), len(samples) / (time.perf_counter() - t0)))
        return out
    finally:
        a.send(None)
        peer.join(5)
        if peer.is_alive():
            peer.kill()
            peer.join()


def _sd(values) -> float:
    return statistics.stdev(values) if len(values) > 1 else math.nan


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 20
    windows = int(argv[1]) if len(argv) > 1 else 8
    if rounds < 2 or windows < 2 or len(os.sched_getaffinity(0)) < 2:
        print("variance_levels: needs 2 or more rounds and windows, and 2 CPUs", file=sys.stderr)
        return 2
    home = os.sched_getaffinity(0)
    within = {0: [], 1: []}
    means = {0: [], 1: []}
    try:
        for _ in range(rounds):
            logs = [(math.log(p), math.log(t)) for p, t in one_round(windows)]
            for k in (0, 1):
                col = [row[k] for row in logs]
                within[k].append(_sd(col))
                means[k].append(statistics.fmean(col))
    finally:
        os.sched_setaffinity(0, home)
    print(f"{rounds} rounds x {windows} windows of {WINDOW_S} s, Pipe round trip 8 B, spread (CPU 0 / CPU 1)")
    print(f"{'metric':<12}{'within a round':>16}{'between rounds':>16}{'windows alone':>15}")
    for k, name in ((0, "p50"), (1, "throughput")):
        w = statistics.median(within[k])
        print(f"{name:<12}{w:>15.1%} {_sd(means[k]):>15.1%} {w / math.sqrt(windows):>14.1%}")
    print("round means, p50 µs: " + " ".join(f"{math.exp(m) / 1e3:.0f}" for m in means[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
