"""Is a process forked from a warm parent faster at a cross-CPU round trip than a fresh interpreter? A
bare ``os.write``/``os.read`` ping-pong of 8 B (the timing side on CPU 0, an echo child on CPU 1, 6,000
round trips, the median of the last 5,000), run alternately in a fresh interpreter (``subprocess``) and
in a child forked from this process, 8 times each.

    PYTHONPATH=src python tools/fork_vs_fresh.py [--warm]   # --warm: import ipcbench's round code first

docs/measurement.md ("The fidelity check today") has what it showed.
"""

import os
import statistics
import subprocess
import sys
from time import perf_counter_ns

STOP = b"q" * 8


def pingpong(n: int = 6000) -> float:
    """Median round trip in µs."""
    os.sched_setaffinity(0, {0})
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {1})
        while True:
            msg = os.read(a_r, 8)
            if not msg or msg == STOP:
                os._exit(0)
            os.write(b_w, msg)
    msg, samples = b"x" * 8, []
    for _ in range(n):
        t0 = perf_counter_ns()
        os.write(a_w, msg)
        os.read(b_r, 8)
        samples.append(perf_counter_ns() - t0)
    os.write(a_w, STOP)
    os.waitpid(pid, 0)
    for fd in (a_r, a_w, b_r, b_w):
        os.close(fd)
    return statistics.median(samples[1000:]) / 1e3


def forked() -> float:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, str(pingpong()).encode())
        os._exit(0)
    os.close(w)
    got = float(os.read(r, 100))
    os.waitpid(pid, 0)
    os.close(r)
    return got


def main() -> None:
    if sys.argv[1:] == ["child"]:
        print(pingpong())
        return
    if "--warm" in sys.argv:
        import gc

        import ipcbench.measure.orchestrator  # noqa: F401

        gc.collect()
    fresh, fork = [], []
    for _ in range(8):
        fresh.append(float(subprocess.run([sys.executable, __file__, "child"], capture_output=True,
                                          text=True, check=True).stdout))
        fork.append(forked())
    for name, values in (("fresh interpreter", fresh), ("forked", fork)):
        print(f"{name:<18} median {statistics.median(values):.1f} µs:", " ".join(f"{v:.1f}" for v in values))


if __name__ == "__main__":
    main()
