"""Why a lock-contention figure depends on how it is timed. Two client processes (forked, pinned to CPU 1
and CPU 0, the parent on CPU 0, as ``spread`` places them) share one ``multiprocessing.Lock``; each runs
``acquire(); release()`` cycles after a barrier. Printed, per form of the loop, the total cycles per
second of the two (millions), one figure per fresh pair of clients, the forms interleaved:

* ``plain``: N cycles each (the user's loop); all cycles / (last end - first start). One client ends
  first and the other runs its rest alone, uncontended and ~5x as fast: ``tail`` is that rest's share of
  the cycles (read from a clock read every 1,024 cycles), ``both`` the rate while both ran, both counted
  by ``user_loops.contended_cycles``, as the selfcheck's hand loop counts them;
* ``stampK``: the clients loop until a stop flag the parent sets after 0.1 s, reading the clock after
  every K cycles (as ``patterns.lock_client`` does with ``LOCK_BATCH``) and storing their count to a
  slot of their own; cycles / (last end - first start).

    PYTHONPATH=src python tools/lock_tail.py [reps]

docs/measurement.md ("Contention") has what it showed: the rate of two contending clients moves with
a few hundred nanoseconds of other work every K cycles (K = 1 and K = 32 read ~1.2-1.3x the plain
loop, K = 1,024 as the plain loop while both ran), which is why ``LOCK_BATCH`` is 1,024 and why the
selfcheck's hand loop counts only the cycles while all clients ran.
"""

import multiprocessing as mp
import os
import sys
import time
from array import array
from time import perf_counter

from ipcbench.measure.user_loops import contended_cycles

N = 500_000
STAMP = 1024
FORMS = ("plain", "stamp1", "stamp32", "stamp256", "stamp1024")


def client(form, lock, barrier, stop, counts, index, conn, cpu) -> None:
    os.sched_setaffinity(0, {cpu})
    acquire, release = lock.acquire, lock.release
    for _ in range(2000):
        acquire()
        release()
    stamps = array("d")
    barrier.wait()
    t0 = perf_counter()
    if form == "plain":
        batch = range(STAMP)
        for _ in range(N // STAMP):
            for _ in batch:
                acquire()
                release()
            stamps.append(perf_counter())
        n = N // STAMP * STAMP
    else:
        k = int(form[5:])
        batch, n = range(k), 0
        while not stop.value:
            a = perf_counter()
            for _ in batch:
                acquire()
                release()
            b = perf_counter()
            stamps.append(a)
            stamps.append(b)
            n += k
            counts[index] = n
    conn.send((t0, perf_counter(), n))
    conn.send_bytes(stamps.tobytes())


def run(form: str) -> str:
    ctx = mp.get_context("fork")
    lock, barrier, stop = ctx.Lock(), ctx.Barrier(2), ctx.RawValue("b", 0)
    counts = ctx.RawArray("q", 32)
    conns, procs = [], []
    try:
        for i, cpu in enumerate((1, 0)):
            r, w = ctx.Pipe(duplex=False)
            conns.append(r)
            p = ctx.Process(target=client, args=(form, lock, barrier, stop, counts, 16 * i, w, cpu))
            p.start()
            procs.append(p)
            w.close()
        if form != "plain":
            time.sleep(0.1)
            stop.value = 1
        spans, stamps = [], []
        for c in conns:
            spans.append(c.recv())
            st = array("d")
            st.frombytes(c.recv_bytes())
            stamps.append(st)
    finally:
        stop.value = 1
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    total = sum(s[2] for s in spans)
    rate = total / (last - first) / 1e6
    if form != "plain":
        return f"{rate:.2f}"
    got = contended_cycles([s[:2] for s in spans], stamps, N // STAMP * STAMP, STAMP)   # as the selfcheck counts
    return f"{rate:.2f} (both {got['rate'] / 1e6:.2f}, tail {got['tail_share']:.0%})"


def main(argv: list[str]) -> int:
    reps = int(argv[0]) if argv else 5
    if len(os.sched_getaffinity(0)) < 2 or reps < 1:
        print("lock_tail: needs 2 CPUs and reps >= 1", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {0})
    out: dict[str, list[str]] = {f: [] for f in FORMS}
    for _ in range(reps):
        for form in FORMS:
            out[form].append(run(form))
    for form in FORMS:
        print(f"{form:>10}: " + "  ".join(out[form]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
