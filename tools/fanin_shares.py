"""Does every producer of a hand fan-in loop still send while it is timed? Two producers (forked, pinned
to CPU 1 and CPU 0, as the selfcheck's placement ``spread`` puts them) each put ``(i, 8 B)`` into one
``Queue()``, then ``None``; the consumer (CPU 0) receives 2,000 a producer, waits until both have put
everything, receives a quarter of N untimed and times N, as ``user_loops.fi_queue`` did until 2026-12-03
with shares of 1.25 (N/4 + N) / 2 a producer. Printed for each drain: the rate, and where the first
producer's ``None`` came (messages timed before it, share of the time) with the rates before and after.

    python tools/fanin_shares.py [N] [DRAINS] [--share F]    # default 50,000, 8 drains, F 1.25 / 2

On the 2-vCPU reference VM (2026-12-03 ~16:40 UTC, 8 drains): a producer ended inside the timed window in
7 of 8, after 70-92 % of it (the feeder alone on its CPU delivered about 3/4 of the messages), and the
one-producer tail ran 163-229k/s against 213-280k/s before it. The hand loop now gives each producer the
quarter and all N (``--share 1.25``: none ends inside the window).
"""

import argparse
import math
import multiprocessing as mp
import os
import sys
from time import perf_counter

WARM = 2000


def produce(q, i: int, count: int, filled, cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    msg = (i, b"x" * 8)
    for _ in range(count):
        q.put(msg)
    q.put(None)
    filled.set()


def drain(ctx, n: int, share: float, producers: int = 2) -> tuple[float, list]:
    q = ctx.Queue()
    skip = n // 4
    count = math.ceil((skip + n) * share)
    filled = [ctx.Event() for _ in range(producers)]
    procs = [ctx.Process(target=produce, args=(q, i, WARM + count, filled[i], (i + 1) % 2))
             for i in range(producers)]
    try:
        for p in procs:
            p.start()
        get = q.get
        for _ in range(WARM * producers):
            get()
        for e in filled:
            if not e.wait(60):
                raise RuntimeError("a producer did not finish putting")
        for _ in range(skip):
            get()
        got, ends = 0, []
        t0 = perf_counter()
        while got < n:
            if get() is None:
                ends.append((got, perf_counter() - t0))
                if len(ends) == producers:
                    break
            else:
                got += 1
        elapsed = perf_counter() - t0
        left = producers - len(ends)
        while left:
            if get() is None:
                left -= 1
        return got / elapsed, [(g, t / elapsed, g / t if t else 0.0, (got - g) / (elapsed - t)) for g, t in ends]
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
        q.close()
        q.join_thread()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=50_000, help="timed messages a drain (default 50,000)")
    parser.add_argument("drains", nargs="?", type=int, default=8, help="drains (default 8)")
    parser.add_argument("--share", type=float, default=1.25 / 2,
                        help="each producer puts this x (N/4 + N) (default 0.625, the old 1.25 (N/4 + N) / 2)")
    args = parser.parse_args()
    if args.n < 100 or args.drains < 1 or args.share <= 0:
        parser.error("n: at least 100; drains: at least 1; --share: above 0")
    if not {0, 1} <= os.sched_getaffinity(0):
        sys.exit("fanin_shares: needs CPUs 0 and 1")
    os.sched_setaffinity(0, {0})
    ctx = mp.get_context("fork")
    for _ in range(args.drains):
        rate, ends = drain(ctx, args.n, args.share)
        line = f"{rate / 1e3:6.1f}k/s"
        for got, frac, before, after in ends[:1]:
            line += (f"  first None after {got} of {args.n} timed ({frac:.0%} of the time): "
                     f"{before / 1e3:.1f}k/s before, {after / 1e3:.1f}k/s after")
        if not ends:
            line += "  no producer ended inside the timed window"
        print(line, flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
