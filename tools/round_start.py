"""Is the start of a round faster than its steady state? Rounds of one case with a long window (0.3 s),
run as ``ipcbench run`` runs them (forked from the warm launcher, or with --fresh a fresh interpreter),
printing the median operation time of each 20 ms of the window, from its start.

    PYTHONPATH=src python tools/round_start.py                      # os_pipe roundtrip 8 B, quick's warm-up
    PYTHONPATH=src python tools/round_start.py --warmup-min 0.05    # a warm-up of at least 50 ms first
    PYTHONPATH=src python tools/round_start.py -m pipe_duplex --rounds 6 --fresh
    PYTHONPATH=src python tools/round_start.py --stream             # a bare Pipe() stream's first 400 ms

On the 2-vCPU reference VM (idle vCPUs halt without polling), with the quick preset's warm-up as it was
(10 calls, then until stable), the first 20-40 ms of every window ran 20-30 % faster than the rest
(e.g. ``42 47 58 59 59 58 63 ...`` µs); after a 2,000-call warm-up (~110 ms) or ``--warmup-min 0.05``
they did not. A 60 ms window that starts there reads round trips fast: docs/measurement.md has the
figures, and why ``RoundSpec.warmup_min_s`` exists.

``--stream``: no ipcbench round, a bare ``Pipe()`` stream of 8 B messages (consumer on CPU 0, producer on
CPU 1, forked right before, or sleeping 0.3 s first): thousands of messages received per second in each
20 ms from the first message. There the start ran *slower*: 355-368k/s in the first 40 ms against
400-420k/s after, in two of three runs, which a window opening 15 ms after the go caught.
"""

import argparse
import dataclasses
import multiprocessing as mp
import os
import statistics
import tempfile
import time

from ipcbench.measure.runner import open_launcher, run_round
from ipcbench.plan.cases import Case
from ipcbench.plan.presets import get_preset

CHUNK_NS = 20_000_000


def chunk_medians(samples_ns, chunk_ns: int = CHUNK_NS) -> list[float]:
    """Median of the samples in each ``chunk_ns`` of the window, the window's time rebuilt from the
    samples themselves (a round trip's samples follow each other without a gap)."""
    t, chunks = 0, {}
    for d in samples_ns:
        chunks.setdefault(t // chunk_ns, []).append(d)
        t += d
    return [statistics.median(v) for _, v in sorted(chunks.items())]


def _produce(conn, n: int, delay: float) -> None:
    os.sched_setaffinity(0, {1})
    time.sleep(delay)
    msg = b"x" * 8
    for _ in range(n):
        conn.send(msg)
    conn.send(None)


def stream_rates(delay: float, chunks: int = 20) -> list[float]:
    """Messages per second received in each 20 ms from the first one, the producer forked now."""
    os.sched_setaffinity(0, {0})
    r, w = mp.Pipe(duplex=False)
    p = mp.get_context("fork").Process(target=_produce, args=(w, 400_000, delay), daemon=True)
    p.start()
    recv, clock = r.recv, time.perf_counter_ns
    first, counts = None, [0] * chunks
    try:
        while True:
            t = clock() if recv() is not None else None
            if t is None:
                break
            first = t if first is None else first
            k = (t - first) // CHUNK_NS
            if k >= chunks:
                break
            counts[k] += 1
    finally:
        p.kill()
        p.join()
        r.close()
        w.close()
    return [c * 1e9 / CHUNK_NS for c in counts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--mechanism", default="os_pipe")
    ap.add_argument("-p", "--pattern", default="roundtrip")
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--window", type=float, default=0.3, help="seconds of each round's window")
    ap.add_argument("--warmup-min", type=float, default=0.0, help="RoundSpec.warmup_min_s (default 0)")
    ap.add_argument("--fresh", action="store_true", help="also fresh-interpreter rounds, alternately")
    ap.add_argument("--stream", action="store_true", help="a bare Pipe() stream instead (no ipcbench round)")
    args = ap.parse_args()
    if args.stream:
        print("Pipe() 8 B stream: thousand messages/s per 20 ms from the first message")
        for _ in range(args.rounds):
            for delay in (0.0, 0.3):
                rates = stream_rates(delay)
                print(f"producer sleeps {delay:.1f} s:", " ".join(f"{r / 1e3:3.0f}" for r in rates), flush=True)
        return
    case = Case(args.mechanism, args.pattern, "bytes", args.size, 1, "fork", "spread")
    spec = dataclasses.replace(get_preset("quick").spec, budget_s=args.window, max_window_s=3 * args.window,
                               max_messages=10**6, warmup_min_s=args.warmup_min)
    print(f"{case.mechanism} {case.pattern} {case.payload_bytes} B: warm-up {spec.warmup} calls, "
          f"{spec.warmup_min_s:g}-{max(spec.warmup_s, spec.warmup_min_s):g} s; median µs per 20 ms of the window")
    with tempfile.TemporaryDirectory(prefix="ipcbench-round-start-") as workdir, \
            open_launcher(False, [case]) as launcher:
        for _ in range(args.rounds):
            for side, lau in (("launcher", launcher), ("fresh", None))[:2 if args.fresh else 1]:
                got = run_round(case, spec, 60, workdir, launcher=lau)
                if not got.get("ok"):
                    print(f"{side:9} failed: {got.get('error')}")
                    continue
                meds = chunk_medians(got["result"]["samples_ns"])
                print(f"{side:9}", " ".join(f"{m / 1e3:3.0f}" for m in meds), flush=True)


if __name__ == "__main__":
    main()
