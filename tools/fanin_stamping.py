"""What stamping receipts costs a fan-in's consumer. Two producers (forked, pinned to CPU 1 and CPU 0)
each put N/4 + N tagged 8 B messages into one ``Queue()``; the consumer (CPU 0) waits until both have put
everything, receives N/4 untimed, then times N receipts in one of three loops, alternated:

* ``plain``: ``get()``, a None check, a count (the user's loop);
* ``every``: a clock read and an append for every receipt, with the window's checks, as
  ``patterns.tagged_window`` did until 2026-12-03;
* ``tagged``: the producers tag every 8th message with their index and the rest with index + 128; the
  consumer reads the clock, appends and numbers only those (``tagged_window`` since).

    python tools/fanin_stamping.py [N] [REPS]      # default 50,000 and 6 reps of each

On the 2-vCPU reference VM (2026-12-03 ~16:45 UTC, 8 reps of plain and every): medians 236.6k/s and
220.7k/s, the per-receipt stamping ~7 % of the drain, about the gap of the selfcheck's ``queue`` fan-in.
docs/measurement.md ("Stream and fanin") has the runs since.
"""

import argparse
import multiprocessing as mp
import os
import statistics
import sys
from array import array
from time import perf_counter, perf_counter_ns

UNSTAMPED = 128
FORMS = ("plain", "every", "tagged")


def produce(q, i: int, count: int, filled, cpu: int, stride: int) -> None:
    os.sched_setaffinity(0, {cpu})
    payload = b"x" * 8
    stamped, plain = (i, payload), (i + (UNSTAMPED if stride > 1 else 0), payload)
    for k in range(count):
        q.put(stamped if k % stride == 0 else plain)
    q.put(None)
    filled.set()


def timed(get, n: int, form: str, producers: int) -> tuple[float, int]:
    times = [array("q") for _ in range(producers)]
    marks = [array("q") for _ in range(producers)]
    appends, numbers, clock = [t.append for t in times], [m.append for m in marks], perf_counter_ns
    got = 0
    t0 = perf_counter()
    if form == "plain":
        while got < n:
            if get() is None:
                break
            got += 1
    elif form == "every":
        soft = hard = 1 << 62
        while got < n:
            msg = get()
            t = clock()
            if msg is None:
                break
            appends[msg[0]](t)
            if t >= 0:
                got += 1
                if t >= hard or (t >= soft and got - 1 >= 5):
                    break
    else:
        soft = hard = 1 << 62
        while got < n:
            msg = get()
            if msg is None:
                break
            got += 1
            tag = msg[0]
            if tag >= UNSTAMPED:
                continue
            t = clock()
            appends[tag](t)
            numbers[tag](got)
            if t >= hard or (t >= soft and got >= 5):
                break
    return got / (perf_counter() - t0), got


def drain(ctx, n: int, form: str, producers: int = 2) -> float:
    q = ctx.Queue()
    skip = n // 4
    filled = [ctx.Event() for _ in range(producers)]
    stride = 8 if form == "tagged" else 1
    procs = [ctx.Process(target=produce, args=(q, i, skip + n, filled[i], (i + 1) % 2, stride))
             for i in range(producers)]
    try:
        for p in procs:
            p.start()
        for e in filled:
            if not e.wait(60):
                raise RuntimeError("a producer did not finish putting")
        get = q.get
        ended = 0
        for _ in range(skip):
            if get() is None:
                ended += 1
        rate, got = timed(get, n, form, producers)
        if got < n:
            raise RuntimeError(f"a producer ended after {got} of {n} timed messages")
        while ended < producers:
            if get() is None:
                ended += 1
        return rate
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
    parser.add_argument("n", nargs="?", type=int, default=50_000, help="timed receipts a drain (default 50,000)")
    parser.add_argument("reps", nargs="?", type=int, default=6, help="drains of each loop (default 6)")
    args = parser.parse_args()
    if args.n < 100 or args.reps < 1:
        parser.error("n: at least 100; reps: at least 1")
    if not {0, 1} <= os.sched_getaffinity(0):
        sys.exit("fanin_stamping: needs CPUs 0 and 1")
    os.sched_setaffinity(0, {0})
    ctx = mp.get_context("fork")
    rates: dict = {form: [] for form in FORMS}
    for r in range(args.reps):
        order = FORMS if r % 2 == 0 else FORMS[::-1]
        for form in order:
            rates[form].append(drain(ctx, args.n, form))
        print("  ".join(f"{form} {rates[form][-1] / 1e3:6.1f}k/s" for form in FORMS), flush=True)
    print("medians: " + "  ".join(f"{form} {statistics.median(v) / 1e3:.1f}k/s" for form, v in rates.items()))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
