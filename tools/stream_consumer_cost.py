"""Does the stream consumer's bookkeeping slow a stream? A ``Pipe()`` 8 B stream (producer pinned to CPU 1,
consumer to CPU 0, fork), consumed alternately by a bare loop and by one that reads the clock and appends
it to a list for every message, as ``patterns._one_way`` does; 8 runs of each, 60,000 messages a run.

    python tools/stream_consumer_cost.py      # needs 2 CPUs

docs/measurement.md ("The fidelity check today") has what it showed.
"""

import multiprocessing as mp
import os
import statistics
from time import perf_counter, perf_counter_ns

N = 60_000
WARM = 2000


def produce(conn, n):
    os.sched_setaffinity(0, {1})
    payload, send = b"x" * 8, conn.send
    for _ in range(n):
        send(payload)
    send(None)


def bare(recv) -> float:
    for _ in range(WARM):
        recv()
    got, todo = 0, N - 2 * WARM
    t0 = perf_counter()
    while got < todo:
        recv()
        got += 1
    return got / (perf_counter() - t0)


def stamped(recv) -> float:
    for _ in range(WARM):
        recv()
    times: list[int] = []
    append, clock = times.append, perf_counter_ns
    t_steady = clock()
    hard = t_steady + 10**10
    counted, todo, cpu0 = 0, N - 2 * WARM, None
    t0 = perf_counter()
    while counted < todo:
        msg = recv()
        t = clock()
        if msg is None:
            break
        append(t)
        if t >= t_steady:
            if cpu0 is None:
                cpu0 = 1
            counted += 1
            if t >= hard:
                break
    return counted / (perf_counter() - t0)


def main() -> None:
    mp.set_start_method("fork")
    os.sched_setaffinity(0, {0})
    res: dict[str, list[float]] = {"bare": [], "stamped": []}
    for rep in range(8):
        order = [("bare", bare), ("stamped", stamped)]
        for name, consume in order if rep % 2 == 0 else order[::-1]:
            a, b = mp.Pipe()
            producer = mp.Process(target=produce, args=(b, N))
            producer.start()
            rate = consume(a.recv)
            while a.recv() is not None:
                pass
            producer.join()
            res[name].append(rate / 1e3)
    for name, rates in res.items():
        print(f"{name}: median {statistics.median(rates):.0f}k/s;", " ".join(f"{r:.0f}" for r in rates))


if __name__ == "__main__":
    main()
