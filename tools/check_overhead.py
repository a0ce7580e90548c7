"""Does the harness inflate what it measures? Compare ipcbench with minimal hand-written loops.

Now a thin wrapper around ``ipcbench selfcheck`` (docs/selfcheck.md), which alternates a minimal user loop
in a fresh process (one clock read around N operations, after a warm-up) with one round of the
same case through ipcbench, and prints the ratio ipcbench / hand of throughput and p50 latency with a 95 %
CI from the paired reps and a PASS / FAIL / INCONCLUSIVE verdict. Before it, this prints what it always
printed: the cost of the per-message clock reads and of a ``Connection.poll()`` per receive (why the timed
loops block).

    PYTHONPATH=src python tools/check_overhead.py [--reps 5] [--size 8] [--placement spread] [-m queue,os_pipe]

Every other ``ipcbench selfcheck`` option passes through (``--json FILE``, ``--workers``, ``-p``, ...). Both
sides' processes are placed alike (``--placement``, default spread, as ``ipcbench run``).

Run it on an otherwise idle machine: it is a benchmark. Exit status: that of ``ipcbench selfcheck``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="other options go to `ipcbench selfcheck` (see `ipcbench selfcheck --help`)")
    ap.add_argument("--reps", default="5")
    ap.add_argument("--size", default="8")
    ap.add_argument("--placement", default="spread", help="both sides' placement (default spread)")
    ap.add_argument("-m", "--mechanisms", help="comma list (default: every one with a user loop)")
    args, rest = ap.parse_known_args(argv)

    from ipcbench.cli import main as cli
    from ipcbench.measure.user_loops import clock_overhead_ns, poll_cost_ns

    print(f"perf_counter_ns pair, median: {clock_overhead_ns():.0f} ns per timed message")
    print(f"Connection.poll(timeout) with data ready: {poll_cost_ns():.0f} ns per call", flush=True)
    print()
    forwarded = ["selfcheck", "--reps", args.reps, "--size", args.size, "--placement", args.placement,
                 *(["-m", args.mechanisms] if args.mechanisms else []), *rest]
    return cli(forwarded)


if __name__ == "__main__":
    sys.exit(main())
