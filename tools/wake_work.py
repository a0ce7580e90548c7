"""Does CPU work per received message make a cross-CPU round trip faster on this machine? A ``Pipe()``
ping-pong of 8 B (``send_bytes``/``recv_bytes``; the timing side on CPU 0, an echo child forked onto CPU
1), where both sides busy-wait SPIN µs after every receipt, for several SPINs in a shuffled order, REPS
times each; each rep 0.05 s of warm-up and a 0.2 s window. Prints each SPIN's median rate and its ratio to
no spin (geometric mean of the paired reps, 95 % t-interval).

    python tools/wake_work.py [REPS] [SPINS]        # e.g. 12 0,0.5,1,2,5,10 (the default); idle machine

On a machine where a wake-up costs little, work only adds: the ratio falls as SPIN grows. On the 2-vCPU
reference VM (idle vCPUs halt without polling; docs/measurement.md) 1-2 µs of work per receipt made the
round trips ~15 % *faster*, which is why a hand loop and ipcbench must do the same work per message for
their round trips to be compared (``channels.OutOfBand``'s short path for ``bytes``).
"""

import argparse
import math
import multiprocessing as mp
import os
import random
import statistics
import sys
from time import perf_counter, perf_counter_ns

from scipy import stats


def spin(us: float) -> None:
    end = perf_counter_ns() + int(us * 1000)
    while perf_counter_ns() < end:
        pass


def echo(conn, us: float) -> None:
    os.sched_setaffinity(0, {1})
    recv, send = conn.recv_bytes, conn.send_bytes
    while True:
        msg = recv()
        if us:
            spin(us)
        if msg == b"stop":
            return
        send(msg)


def rep(us: float, warmup_s: float = 0.05, window_s: float = 0.2) -> float:
    """Round trips per second with SPIN ``us`` on both sides."""
    a, b = mp.Pipe()
    peer = mp.Process(target=echo, args=(b, us))
    peer.start()
    send, recv, payload = a.send_bytes, a.recv_bytes, b"x" * 8

    def one() -> None:
        send(payload)
        recv()
        if us:
            spin(us)

    try:
        end = perf_counter() + warmup_s
        while perf_counter() < end:
            one()
        n, t0 = 0, perf_counter()
        end = t0 + window_s
        while True:
            for _ in range(100):
                one()
            n += 100
            t1 = perf_counter()
            if t1 >= end:
                return n / (t1 - t0)
    finally:
        send(b"stop")
        peer.join(10)
        if peer.is_alive():
            peer.kill()
            peer.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reps", nargs="?", type=int, default=12, help="reps of each spin (default 12)")
    parser.add_argument("spins", nargs="?", default="0,0.5,1,2,5,10",
                        help="comma list of µs to busy-wait after every receipt (default 0,0.5,1,2,5,10)")
    args = parser.parse_args()
    try:
        spins = [float(s) for s in args.spins.split(",")]
    except ValueError:
        parser.error(f"spins: a comma list of numbers, not {args.spins!r}")
    if args.reps < 2 or min(spins) < 0:
        parser.error("reps: at least 2; spins: not negative")
    reps = args.reps
    if 0.0 not in spins:
        spins.insert(0, 0.0)
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        sys.exit("wake_work: needs CPUs 0 and 1")
    mp.set_start_method("fork")
    os.sched_setaffinity(0, {0})
    rng = random.Random(1)
    rates: dict[float, list[float]] = {s: [] for s in spins}
    for r in range(reps):
        order = spins[:]
        rng.shuffle(order)
        for s in order:
            rates[s].append(rep(s))
        print(f"rep {r + 1}/{reps}", file=sys.stderr)
    print(f"Pipe() round trip, 8 B, CPUs 0 and 1, {reps} reps; spin = busy-wait after every receipt, both sides")
    print(f"{'spin µs':>8} {'median rate':>12} {'vs no spin':>11} {'95% CI':>13}")
    for s in spins:
        logs = [math.log(x / y) for x, y in zip(rates[s], rates[0.0])]
        if s == 0.0:
            ratio, ci = "1", ""
        else:
            m, se = statistics.mean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
            h = stats.t.ppf(0.975, len(logs) - 1) * se
            ratio, ci = f"{math.exp(m):.3f}", f"{math.exp(m - h):.2f}-{math.exp(m + h):.2f}"
        print(f"{s:>8g} {statistics.median(rates[s]) / 1e3:>10.1f}k/s {ratio:>11} {ci:>13}")


if __name__ == "__main__":
    main()
