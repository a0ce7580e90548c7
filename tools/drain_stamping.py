"""What stamping each receipt costs a consumer-bound drain. A ``JoinableQueue()`` is filled with N 8-byte
messages by a producer pinned to CPU 1 (fork); the consumer, pinned to CPU 0, then drains it with
``get()`` + ``task_done()``, in one of four loops, alternated, four times each; printed, the drain rate:

* ``plain``: nothing but the calls (the user's loop);
* ``stamped``: a clock read per message, appended to a list, and the window checks of ipcbench's stream
  consumer (``patterns._one_way``) until 2026-12-03;
* ``arraystamped``: the same, appended to an ``array("q")`` (ipcbench's since);
* ``every16``: a clock read and a stamp every 16th message only.

    python tools/drain_stamping.py [N]        # default 60,000; needs 2 CPUs

A JoinableQueue's drain is consumer-bound here (its per-5,000 rate is flat, ~420k/s, where a plain
``Queue()``'s falls from ~510k/s to ~385k/s once the consumer has caught up with the producer's feeder
thread and waits on it): every nanosecond the consumer spends per message shows. On the 2-vCPU
reference VM (2026-12-03 10:10 UTC, two runs): plain ~410k/s, stamped ~378k/s, arraystamped ~396k/s,
every16 ~398k/s (each run's single figures swing by 10 %; read the typical ones).
"""

import multiprocessing as mp
import os
import sys
from array import array
from time import perf_counter_ns

FORMS = ("plain", "stamped", "arraystamped", "every16")


def produce(q, n, filled):
    os.sched_setaffinity(0, {1})
    payload = b"x" * 8
    for _ in range(n):
        q.put(payload)
    q.put(None)
    filled.set()


def drain(q, form: str) -> None:
    get, done = q.get, q.task_done

    def recv():
        msg = get()
        done()
        return msg

    clock, t_steady, hard = perf_counter_ns, 0, 1 << 62
    if form == "plain":
        while recv() is not None:
            pass
    elif form in ("stamped", "arraystamped"):
        times = [] if form == "stamped" else array("q")
        append, counted = times.append, 0
        while True:
            msg = recv()
            t = clock()
            if msg is None:
                break
            append(t)
            if t >= t_steady:
                counted += 1
                if t >= hard:
                    break
    else:
        times, n = array("q"), 0
        append = times.append
        while True:
            msg = recv()
            if msg is None:
                break
            n += 1
            if not n & 15:
                t = clock()
                append(t)
                if t >= hard:
                    break


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000
    mp.set_start_method("fork")
    os.sched_setaffinity(0, {0})
    for _ in range(4):
        for form in FORMS:
            q, filled = mp.JoinableQueue(), mp.Event()
            producer = mp.Process(target=produce, args=(q, n, filled))
            producer.start()
            filled.wait()
            t0 = perf_counter_ns()
            drain(q, form)
            t1 = perf_counter_ns()
            producer.join()
            q.close()
            q.join_thread()
            print(f"{form:13s} {n * 1e9 / (t1 - t0) / 1e3:.0f}k/s", flush=True)


if __name__ == "__main__":
    main()
