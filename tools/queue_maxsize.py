"""Why ipcbench streams through ``Queue()`` filled first, not ``Queue(maxsize)`` (patterns._one_way,
channels.one_way_maxsize), and why the selfcheck places both sides alike (user_loops.place_hand_loop).

    PYTHONPATH=src python tools/queue_maxsize.py [--reps 3] [--size 8]

Three measurements, each in this interpreter with fork, the consumer in this process:

1. ``maxsize``: a producer puts N messages in a tight loop, the consumer times N gets after a warm-up of
   5,000, through ``Queue()`` and ``Queue(1000)``, with and without a clock read per message on both sides.
   A full bounded queue wakes the blocked producer once per ``get``.
2. ``phases``: ``Queue()``: how many messages reach the consumer while the producer's main thread is still
   putting (its feeder thread hardly gets the GIL) and the rate after; and the rate in ipcbench's old
   window (15-75 ms after the start).
3. ``placement``: a ``Pipe(duplex=False)`` stream, unpinned, its rate in five windows of each 0.8 s run:
   two processes on 2 vCPUs share a CPU or not, for hundreds of milliseconds at a time.

Run it on an idle machine: it is a benchmark.
"""

from __future__ import annotations

import argparse
import bisect
import multiprocessing as mp
import time
from array import array
from time import perf_counter_ns


def _put(q, n, start, payload, stamp, done):
    start.wait()
    if stamp:
        sent = array("q")
        for _ in range(n):
            sent.append(perf_counter_ns())
            q.put(payload)
    else:
        for _ in range(n):
            q.put(payload)
    done.value = perf_counter_ns()
    q.put(None)


def _run_queue(maxsize: int, stamp: bool, size: int, n: int = 40_000, warm: int = 5_000):
    ctx = mp.get_context("fork")
    q, start, done = ctx.Queue(maxsize), ctx.Event(), ctx.RawValue("q", 0)
    producer = ctx.Process(target=_put, args=(q, n + warm, start, b"x" * size, stamp, done))
    producer.start()
    times = array("q")
    t_go = perf_counter_ns()
    start.set()
    for _ in range(warm):
        q.get()
    t0 = time.perf_counter()
    for _ in range(n):
        q.get()
        if stamp:
            times.append(perf_counter_ns())
    rate = n / (time.perf_counter() - t0)
    while q.get() is not None:
        pass
    producer.join()
    return rate, t_go, done.value


def _phases(size: int, n: int = 40_000):
    ctx = mp.get_context("fork")
    q, start, done = ctx.Queue(), ctx.Event(), ctx.RawValue("q", 0)
    producer = ctx.Process(target=_put, args=(q, n, start, b"x" * size, False, done))
    producer.start()
    times = array("q")
    t_go = perf_counter_ns()
    start.set()
    while (msg := q.get()) is not None:
        times.append(perf_counter_ns())
    producer.join()
    k = bisect.bisect_left(times, done.value)

    def rate(a, b):
        return (b - a - 1) / ((times[b - 1] - times[a]) / 1e9) if b - a > 10 else float("nan")

    a, b = (bisect.bisect_left(times, t_go + ms * 1_000_000) for ms in (15, 75))
    return (done.value - t_go) / 1e6, k, rate(k, len(times)), rate(a, b), msg


def _pipe_producer(w, stop, size):
    payload = b"x" * size
    while not stop.value:
        for _ in range(100):
            w.send(payload)
    w.send(None)


def _placement(size: int):
    ctx = mp.get_context("fork")
    r, w = ctx.Pipe(duplex=False)
    stop = ctx.RawValue("b", 0)
    t_go = perf_counter_ns()
    producer = ctx.Process(target=_pipe_producer, args=(w, stop, size))
    producer.start()
    times = array("q")
    end = t_go + 800_000_000
    while True:
        r.recv()
        t = perf_counter_ns()
        times.append(t)
        if t > end:
            break
    stop.value = 1
    while r.recv() is not None:
        pass
    producer.join()
    cuts = (0, 15, 75, 150, 300, 800)
    idx = [bisect.bisect_left(times, t_go + ms * 1_000_000) for ms in cuts]
    return [(f"{a}-{b} ms", (j - i) / ((b - a) / 1e3)) for a, b, i, j in zip(cuts, cuts[1:], idx, idx[1:])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--size", type=int, default=8, help="payload bytes (default 8)")
    args = ap.parse_args(argv)
    print("1. maxsize: consumer's rate over 40,000 gets after 5,000")
    for rep in range(args.reps):
        for maxsize in (0, 1000):
            for stamp in (False, True):
                rate = _run_queue(maxsize, stamp, args.size)[0]
                label = f"Queue({maxsize or ''})"
                print(f"   rep {rep}  {label:<12} clock per message: {'yes' if stamp else 'no':<3}  "
                      f"{rate / 1e3:6.0f}k/s", flush=True)
    print("2. phases of Queue(): 40,000 put in a tight loop")
    for _ in range(args.reps):
        put_ms, during, after, old, _ = _phases(args.size)
        print(f"   puts done after {put_ms:.1f} ms, {during} delivered by then; drain {after / 1e3:.0f}k/s; "
              f"15-75 ms window {old / 1e3:.0f}k/s", flush=True)
    print("3. placement: unpinned Pipe(duplex=False) stream, rate per window")
    for _ in range(args.reps):
        print("   " + ", ".join(f"{w} {r / 1e3:.0f}k/s" for w, r in _placement(args.size)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
