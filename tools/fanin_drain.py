"""How does a fan-in drain of an unbounded ``Queue()`` move from start to end? Two producers (forked,
pinned to CPU 1 and CPU 0) each ``put`` N messages of 1 MiB, then ``None``; the consumer (CPU 0) waits
until both have put everything, then drains the queue and prints the rate of every 64 receipts, in
thousands of messages per second. ``SIZE`` (default 1 MiB) and ``CHUNK`` (default 64) are optional.
Run it in the allocator state to look at, e.g.

    MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456 python tools/fanin_drain.py 300   # warm
    MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072 python tools/fanin_drain.py 300       # cold

    python tools/fanin_drain.py 45000 8 5000      # 8 B, the rate of every 5,000 receipts

docs/measurement.md ("Stream and fanin") has what it showed: why a fan-in's window ends at the first
producer's end, and why an unbounded queue's fill holds 128 MiB.
"""

import multiprocessing as mp
import os
import sys
import time

CHUNK = 64


def produce(q, i: int, n: int, ready, size: int = 1 << 20) -> None:
    os.sched_setaffinity(0, {1 if i == 0 else 0})
    payload = b"x" * size
    for _ in range(n):
        q.put((i, payload))
    ready.set()
    q.put(None)


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 300
    size = int(argv[1]) if len(argv) > 1 else 1 << 20
    chunk = int(argv[2]) if len(argv) > 2 else CHUNK
    if len(os.sched_getaffinity(0)) < 2 or n < chunk or size < 0:
        print(f"fanin_drain: needs 2 CPUs, N >= CHUNK ({chunk}) and SIZE >= 0", file=sys.stderr)
        return 2
    ctx = mp.get_context("fork")
    os.sched_setaffinity(0, {0})
    for rep in range(3):
        q = ctx.Queue()
        ready = [ctx.Event(), ctx.Event()]
        procs = [ctx.Process(target=produce, args=(q, i, n, ready[i], size)) for i in range(2)]
        for p in procs:
            p.start()
        for e in ready:
            e.wait()
        times, ended = [], 0
        while ended < 2:
            if q.get() is None:
                ended += 1
                if ended == 1:
                    first_end = len(times)
                continue
            times.append(time.perf_counter())
        for p in procs:
            p.join()
        rates = [f"{chunk / (times[k + chunk - 1] - times[k]) / 1000:.2f}" for k in range(0, len(times) - chunk, chunk)]
        print(f"rep {rep}: {2 * n} messages, the first producer ended after {first_end}; "
              f"k msgs/s per {chunk}: {' '.join(rates)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
