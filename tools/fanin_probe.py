"""Three questions about the hand fan-in loop of ``ipcbench selfcheck`` (``user_loops.fi_queue``). Two
producers (forked, pinned to CPU 1 and CPU 0, as the selfcheck's placement ``spread`` puts them) each put
tagged 8 B messages into one ``Queue()``, then ``None``; the consumer (CPU 0) waits until both have put
everything, receives a quarter of N untimed, then times N.

``shares``: does every producer still send while the drain is timed? With shares of 1.25 (N/4 + N) / 2
a producer (``--share``, default 0.625), as the hand loop had until 2026-12-03, printed for each drain:
the rate, and where the first producer's ``None`` came, with the rates before and after it.

``stamping``: what does stamping receipts cost the consumer? Each producer puts N/4 + N; three consumer
loops, alternated: ``plain`` (``get()``, a None check, a count: the user's loop), ``every`` (a clock read
and an append for every receipt, with the window's checks, as ``patterns.tagged_window`` did until
2026-12-03) and ``tagged`` (the producers tag every 8th message with their index and the rest with index
+ 128; the consumer is ``patterns.tagged_window`` itself, which reads the clock and keeps a receipt for
those only).

``window``: does where and how long the drain is timed, or how a producer waits once it has put
everything, move the rate? Four drains, alternated: ``short`` as a quick round times it (20,000 a
producer, 12,500 received untimed, 11,000 timed), ``long`` as the hand loop does (75,000 a producer,
15,000 untimed, 60,000 timed), and each with producers that poll a stop flag every 5 ms after putting,
as ipcbench's do (``shortpoll``, ``longpoll``), instead of exiting; printed, each against ``long``
(geometric mean of the paired ratios, +-2 standard errors). N is not used.

    PYTHONPATH=src python tools/fanin_probe.py shares [N] [DRAINS] [--share F]     # default 50,000 and 8 drains
    PYTHONPATH=src python tools/fanin_probe.py stamping [N] [REPS]                 # default 50,000 and 6 reps of each
    PYTHONPATH=src python tools/fanin_probe.py window [N] [REPS]                   # default 16 reps of each

On the 2-vCPU reference VM, 2026-12-03: ``shares`` (~16:40 UTC, 8 drains): a producer ended inside the
timed window in 7 of 8, after 70-92 % of it (the feeder alone on its CPU delivered about 3/4 of the
messages), and the one-producer tail ran 163-229k/s against 213-280k/s before it; the hand loop now gives
each producer the quarter and all N (``--share 1.25``). ``stamping``: medians plain 236.6k/s, every
220.7k/s (~16:45 UTC, 8 reps, plain and every only), then plain 283.2k/s, every 281.8k/s, tagged
297.6k/s (~16:47 UTC, 8 reps): an effect of a few per cent at most, under the drain's own swings.
``window`` (16 reps; ~16:48 UTC in a scratch copy of this probe, 17:00 UTC with it): short 0.94
(0.89-1.01) and 0.96 (0.88-1.06), shortpoll 1.00 and 1.02, longpoll 0.98 and 1.06 of long: none of them
the ~10 % by which ipcbench's fan-in read below the hand loop in most selfchecks.
"""

import argparse
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
from array import array
from time import perf_counter, perf_counter_ns

from ipcbench.measure.channels import UNSTAMPED
from ipcbench.measure.patterns import tagged_window

WARM = 2000
FORMS = ("plain", "every", "tagged")


WINDOWS = {"short": (20_000, 12_500, 11_000, False), "shortpoll": (20_000, 12_500, 11_000, True),
           "long": (75_000, 15_000, 60_000, False), "longpoll": (75_000, 15_000, 60_000, True)}


def produce(q, i: int, count: int, filled, cpu: int, stride: int = 1, stop=None) -> None:
    os.sched_setaffinity(0, {cpu})
    payload = b"x" * 8
    stamped, plain = (i, payload), (i + (UNSTAMPED if stride > 1 else 0), payload)
    for k in range(count):
        q.put(stamped if k % stride == 0 else plain)
    q.put(None)
    filled.set()
    while stop is not None and not stop.value:       # as patterns.producer_peer waits for the stop flag
        time.sleep(0.005)


def with_filled_queue(ctx, counts: list[int], stride: int, drain, poll: bool = False) -> object:
    """Start a producer per ``counts`` entry, wait until all have put everything, return ``drain(q.get)``
    after receiving the rest; every process and the queue's thread are reaped. ``poll``: the producers
    wait for a stop flag (raised after the drain) instead of exiting."""
    q = ctx.Queue()
    filled = [ctx.Event() for _ in counts]
    stop = ctx.RawValue("b", 0) if poll else None
    procs = [ctx.Process(target=produce, args=(q, i, n, filled[i], (i + 1) % 2, stride, stop))
             for i, n in enumerate(counts)]
    try:
        for p in procs:
            p.start()
        for e in filled:
            if not e.wait(60):
                raise RuntimeError("a producer did not finish putting")
        result, ended = drain(q.get)
        if stop is not None:
            stop.value = 1
        while ended < len(counts):
            if q.get() is None:
                ended += 1
        return result
    finally:
        if stop is not None:
            stop.value = 1
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
        q.close()
        q.join_thread()


def shares_drain(n: int):
    def drain(get):
        for _ in range(n // 4):
            get()
        got, ends = 0, []
        t0 = perf_counter()
        while got < n:
            if get() is None:
                ends.append((got, perf_counter() - t0))
                if len(ends) == 2:
                    break
            else:
                got += 1
        elapsed = perf_counter() - t0
        return (got / elapsed, [(g, t / elapsed, g / t if t else 0.0, (got - g) / (elapsed - t)) for g, t in ends]), len(ends)
    return drain


def stamping_drain(n: int, form: str):
    def drain(get):
        ended = 0
        for _ in range(n // 4):
            if get() is None:
                ended += 1
        times = [array("q"), array("q")]
        marks = [array("q"), array("q")]
        appends, clock = [t.append for t in times], perf_counter_ns
        soft = hard = 1 << 62
        got = 0
        t0 = perf_counter()
        if form == "plain":
            while got < n:
                if get() is None:
                    break
                got += 1
        elif form == "every":
            while got < n:
                msg = get()
                t = clock()
                if msg is None:
                    break
                appends[msg[0]](t)
                got += 1
                if t >= hard or (t >= soft and got - 1 >= 5):
                    break
        else:           # ipcbench's own loop, its window open from the start, closing after n receipts
            ended_early, _ = tagged_window(get, clock, times, marks, 2, 0, 0, 0, hard, n, lambda: None)
            got = 0 if ended_early else max(m[-1] for m in marks if m)     # receipts, to its last stamped one
        rate = got / (perf_counter() - t0)
        if got < n:
            raise RuntimeError(f"a producer ended after {got} of {n} timed messages")
        return rate, ended
    return drain


def window_drain(skip: int, n: int):
    def drain(get):
        for _ in range(skip):
            get()
        got = 0
        t0 = perf_counter()
        while got < n:
            if get() is None:
                return got / (perf_counter() - t0), 1
            got += 1
        return got / (perf_counter() - t0), 0
    return drain


def window(ctx, reps: int) -> None:
    names = list(WINDOWS)
    rates: dict = {k: [] for k in names}
    for r in range(reps):
        for k in (names if r % 2 == 0 else names[::-1]):
            per, skip, n, poll = WINDOWS[k]
            rates[k].append(with_filled_queue(ctx, [per, per], 1, window_drain(skip, n), poll))
        print("  ".join(f"{k} {rates[k][-1] / 1e3:6.1f}k/s" for k in names), flush=True)
    for k in names:
        if k == "long":
            continue
        logs = [math.log(a / b) for a, b in zip(rates[k], rates["long"])]
        m = statistics.mean(logs)
        se = statistics.stdev(logs) / math.sqrt(len(logs)) if len(logs) > 1 else float("nan")
        print(f"{k} / long: {math.exp(m):.3f} ({math.exp(m - 2 * se):.3f}-{math.exp(m + 2 * se):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("shares", "stamping", "window"))
    parser.add_argument("n", nargs="?", type=int, default=50_000, help="timed receipts a drain (default 50,000)")
    parser.add_argument("reps", nargs="?", type=int, default=None,
                        help="drains (shares, default 8), or of each loop (stamping, default 6; window, 16)")
    parser.add_argument("--share", type=float, default=1.25 / 2,
                        help="shares: each producer puts this x (N/4 + N) (default 0.625)")
    args = parser.parse_args()
    reps = args.reps if args.reps is not None else {"shares": 8, "stamping": 6, "window": 16}[args.what]
    if args.n < 100 or reps < 1 or args.share <= 0:
        parser.error("n: at least 100; reps: at least 1; --share: above 0")
    if not {0, 1} <= os.sched_getaffinity(0):
        sys.exit("fanin_probe: needs CPUs 0 and 1")
    os.sched_setaffinity(0, {0})
    ctx = mp.get_context("fork")
    skip = args.n // 4
    if args.what == "window":
        return window(ctx, reps)
    if args.what == "shares":
        count = WARM + math.ceil((skip + args.n) * args.share)
        for _ in range(reps):
            rate, ends = with_filled_queue(ctx, [count, count], 1, shares_drain(args.n))
            line = f"{rate / 1e3:6.1f}k/s"
            for got, frac, before, after in ends[:1]:
                line += (f"  first None after {got} of {args.n} timed ({frac:.0%} of the time): "
                         f"{before / 1e3:.1f}k/s before, {after / 1e3:.1f}k/s after")
            if not ends:
                line += "  no producer ended inside the timed window"
            print(line, flush=True)
        return
    rates: dict = {form: [] for form in FORMS}
    for r in range(reps):
        for form in (FORMS if r % 2 == 0 else FORMS[::-1]):
            stride = 8 if form == "tagged" else 1
            rates[form].append(with_filled_queue(ctx, [skip + args.n] * 2, stride, stamping_drain(args.n, form)))
        print("  ".join(f"{form} {rates[form][-1] / 1e3:6.1f}k/s" for form in FORMS), flush=True)
    print("medians: " + "  ".join(f"{form} {statistics.median(v) / 1e3:.1f}k/s" for form, v in rates.items()))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
