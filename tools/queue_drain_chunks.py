"""Drain rate of a filled ``multiprocessing.Queue()`` in chunks of 5,000 messages: 8 B, the producer pinned
to CPU 1 puts everything first, the consumer on CPU 0 then times the drain; fork; three runs.

    python tools/queue_drain_chunks.py [MESSAGES]      # default 100,000; needs 2 CPUs

docs/measurement.md ("The fidelity check today") has what it showed.
"""

import multiprocessing as mp
import os
import sys
from time import perf_counter_ns

CHUNK = 5000


def produce(q, n, filled):
    os.sched_setaffinity(0, {1})
    payload = b"x" * 8
    for _ in range(n):
        q.put(payload)
    q.put(None)
    filled.set()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    mp.set_start_method("fork")
    os.sched_setaffinity(0, {0})
    for rep in range(3):
        q, filled = mp.Queue(), mp.Event()
        producer = mp.Process(target=produce, args=(q, n, filled))
        producer.start()
        filled.wait()
        marks, got, get = [], 0, q.get
        t0 = perf_counter_ns()
        while get() is not None:
            got += 1
            if got % CHUNK == 0:
                marks.append(perf_counter_ns())
        t1 = perf_counter_ns()
        producer.join()
        q.close()
        q.join_thread()
        rates, prev = [], t0
        for t in marks:
            rates.append(CHUNK * 1e9 / (t - prev) / 1e3)
            prev = t
        print(f"run {rep}: {n * 1e9 / (t1 - t0) / 1e3:.0f}k/s in all; per {CHUNK} (k/s):",
              " ".join(f"{r:.0f}" for r in rates[:25]))


if __name__ == "__main__":
    main()
