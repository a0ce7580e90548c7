"""How the rate of "submit K tasks, then collect them" moves with the job size K. One ``Pool`` (fork; the
parent pinned to CPU 0, its workers to the other CPUs in turn, as ``spread`` places them on a small
machine) echoes 8-byte payloads; per job size K, each rep runs 20,000 tasks (or one job of K if larger)
as jobs of K tasks, each job submitted in full and then collected, with ``get()`` on each result in turn
or with a callback that sets an Event at the K-th result. Printed per form and K: the median rate of the
reps in tasks/s and every rep's rate (thousands).

    python tools/job_size.py [workers] [reps]

On the 2-vCPU reference VM (2026-12-03 10:20 UTC, one worker): K = 256 ~64-66k tasks/s, 1,024 ~81-84k,
2,048 ~76-81k, 4,096 ~74-76k, 20,000 ~61k (get) and ~77k (callback): each job ends with the pool
drained (a fixed cost a job), and a long backlog costs too. So there is no one rate of "submit all, then
collect", only one per job size: ipcbench's submit-all forms run jobs of ``patterns.BATCH_TASKS`` (1,024)
and say so (``params.tasks_per_call``), and the selfcheck's hand loops run jobs of the same K.
"""

import multiprocessing as mp
import os
import statistics
import sys
import threading
import time

SIZES = (256, 1024, 2048, 4096, 20000)
TASKS = 20000


def echo(p):
    return p


def job_get(pool, p, k):
    results = [pool.apply_async(echo, (p,)) for _ in range(k)]
    for r in results:
        r.get()


def job_callback(pool, p, k):
    got = []
    done = threading.Event()

    def callback(result):
        got.append(result)
        if len(got) == k:
            done.set()

    for _ in range(k):
        pool.apply_async(echo, (p,), callback=callback)
    if not done.wait(60):
        raise RuntimeError(f"only {len(got)} of {k} callbacks came")


def _pin_worker(cpus):
    cpus = sorted(cpus)
    os.sched_setaffinity(0, {cpus[os.getpid() % len(cpus)]})


def main(argv) -> int:
    workers = int(argv[0]) if argv else 1
    reps = int(argv[1]) if len(argv) > 1 else 5
    cpus = sorted(os.sched_getaffinity(0))
    others = cpus[1:] or cpus
    os.sched_setaffinity(0, {cpus[0]})
    payload = b"x" * 8
    ctx = mp.get_context("fork")
    with ctx.Pool(workers, initializer=_pin_worker, initargs=(others,)) as pool:
        for form in (job_get, job_callback):
            form(pool, payload, 2000)                      # warm-up
            for k in SIZES:
                jobs = max(1, TASKS // k)
                rates = []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    for _ in range(jobs):
                        form(pool, payload, k)
                    rates.append(jobs * k / (time.perf_counter() - t0))
                print(f"{form.__name__:13s} w{workers} K={k:6d} {statistics.median(rates):9.0f}/s  "
                      + " ".join(f"{r / 1000:.1f}" for r in rates), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
