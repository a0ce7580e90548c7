"""``ipcbench run``: measure a grid of cases and write a result file."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

ORDER = 10

EXAMPLES = """examples:
  ipcbench run --preset smoke -o r.json
  ipcbench run -m pipe_duplex,queue,manager_dict,pool_apply --payload-sizes 8 --workers 1
  ipcbench run --preset quick --start-method spawn --machine-id laptop
  ipcbench run --preset smoke --seed 1234     # the same order of rounds as a run with seed 1234
"""


def register(sub) -> None:
    p = sub.add_parser("run", help="measure cases and write a result file",
                       description="Run benchmark cases. Each round of each case runs in a fresh process; "
                       "the rounds of all cases run interleaved, in a random order drawn from a seed that "
                       "the result file records; the file is rewritten after every finished case, so an "
                       "interrupted run keeps what it measured.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", help="smoke | quick | full (default: quick)")
    p.add_argument("-m", "--mechanisms", help="comma list of mechanisms (default: all; see `ipcbench list`)")
    p.add_argument("-p", "--patterns", help="comma list of patterns to keep (default: all each mechanism has)")
    p.add_argument("--payload-sizes", help="comma list of sizes, e.g. 8,1KiB,64KiB,16MiB (default: preset's)")
    p.add_argument("--workers", help="comma list of worker counts, e.g. 1,2,4 (default: preset's)")
    p.add_argument("--start-method", help="fork | spawn | forkserver, or a comma list (default: preset's)")
    p.add_argument("--rounds", type=int, help="rounds per case, each in fresh processes (default: preset's)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a round is killed (default 60)")
    p.add_argument("--seed", type=int, help="seed of the random order of rounds (default: a fresh one, "
                   "printed and recorded in the result file)")
    p.add_argument("--machine-id", help="name of this machine in results (default: hostname-<hash>)")
    p.add_argument("-o", "--output", help="result file (default: results/<machine_id>/<timestamp>.json)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import UserError
    from ..measure.environment import default_machine_id
    from ..measure.mechanisms import all_mechanisms
    from ..measure.progress import make_progress
    from ..measure.runner import ResultWriter, RunOptions, new_seed, run_cases
    from ..plan.cases import PAYLOAD_KINDS
    from ..plan.presets import build_grid, check_start_methods, get_preset, start_methods, worker_counts
    from ..units import parse_int_list, parse_size_list

    preset = get_preset(args.preset)
    mechanisms = [m.strip() for m in args.mechanisms.split(",") if m.strip()] if args.mechanisms else None
    patterns = [m.strip() for m in args.patterns.split(",") if m.strip()] if args.patterns else None
    if patterns:
        from ..plan.cases import PATTERNS

        for pat in patterns:
            if pat not in PATTERNS:
                raise UserError(f"unknown pattern {pat!r}; known: {', '.join(PATTERNS)}")
    sizes = parse_size_list(args.payload_sizes) if args.payload_sizes else list(preset.payload_sizes)
    workers = parse_int_list(args.workers, "worker count") if args.workers else worker_counts(preset.workers)
    if args.start_method:
        methods = check_start_methods([m.strip() for m in args.start_method.split(",") if m.strip()])
    else:
        methods = start_methods(preset.start_methods)
    rounds = preset.rounds if args.rounds is None else args.rounds
    if rounds < 1:
        raise UserError(f"--rounds must be 1 or more, got {rounds}")
    if args.timeout <= 0:
        raise UserError(f"--timeout must be positive, got {args.timeout:g}")
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}")
    cases = build_grid(mechanisms, patterns, sizes, workers, methods, PAYLOAD_KINDS[0],
                       catalogue=all_mechanisms())

    machine_id = args.machine_id or default_machine_id()
    out = Path(args.output) if args.output else \
        Path("results") / machine_id / f"{datetime.now().strftime('%Y%m%dT%H%M%S')}.json"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out.parent}: {exc.strerror}") from None
    seed = new_seed() if args.seed is None else args.seed
    opts = RunOptions(spec=preset.spec, rounds=rounds, round_timeout_s=args.timeout, seed=seed)
    run_info = {"preset": preset.name, "argv": sys.argv[1:], "rounds": rounds, "spec": preset.spec.to_dict(),
                "round_timeout_s": args.timeout, "payload_sizes": sizes, "workers": workers,
                "start_methods": methods}
    try:
        writer = ResultWriter(out, machine_id, run_info)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    if not args.quiet:
        print(f"ipcbench: rounds in a random order, seed {seed} (--seed {seed} repeats it)", file=sys.stderr)
    try:
        data = run_cases(cases, opts, writer, make_progress(args.quiet))
    except KeyboardInterrupt:
        kept = writer.data["cases"]
        short = sum(1 for c in kept if c["status"] == "ok" and len(c["rounds"]) < c.get("rounds_planned", 0))
        print(f"ipcbench: interrupted; {len(kept) - short} finished case(s) kept in {out}"
              + (f", and {short} case(s) with only some of their rounds (rounds_planned says how many "
                 f"were planned)" if short else ""), file=sys.stderr)
        return 130
    failed = sum(1 for c in data["cases"] if c["status"] != "ok")
    print(f"wrote {out} ({len(data['cases'])} cases, {failed} failed; order seed {seed})", file=sys.stderr)
    return 1 if failed == len(data["cases"]) else 0
