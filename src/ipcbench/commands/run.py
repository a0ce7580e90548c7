"""``ipcbench run``: measure a grid of cases and write a result file."""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import datetime
from pathlib import Path

ORDER = 10

EXAMPLES = """examples:
  ipcbench run --preset smoke -o r.json
  ipcbench run -m pipe_duplex,queue,manager_dict,pool_apply --payload-sizes 8 --workers 1
  ipcbench run --preset quick --start-method spawn --machine-id laptop
  ipcbench run --preset smoke --seed 1234     # the same order of rounds as a run with seed 1234
  ipcbench run -m queue --target-ci 0.02 --max-rounds 60 --case-budget 20   # tighter CIs, longer
  ipcbench run -m queue --rounds 5            # exactly 5 rounds per case, no adaptive rounds

rounds: every case gets --min-rounds rounds, then more, while the round-level 95 % CI of its p50 latency
or throughput is wider than +-target (--target-ci), up to --max-rounds or until its rounds have taken
--case-budget seconds, or the run's rounds beyond the minimum have shared out --run-budget seconds. A case
whose rounds vary too much to reach the target within twice --max-rounds stops early ("out of reach").
The result file records per case the CI reached, whether the target was met and why it stopped
(stop_reason: target met | max rounds | out of reach | time budget | run budget | failed | interrupted).
"""


def register(sub) -> None:
    p = sub.add_parser("run", help="measure cases and write a result file",
                       description="Run benchmark cases. Each round of each case runs in a process of its own "
                       "(forked from a warm, pre-imported launcher, or with --fresh-rounds a fresh "
                       "interpreter), with its own peers; the rounds of all cases run interleaved, in a random "
                       "order drawn from a seed that the result file records, and a case gets rounds until "
                       "its confidence interval is tight enough (see below); the file is rewritten after "
                       "every finished case, so an interrupted run (Ctrl-C, SIGTERM) keeps what it measured.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", help="smoke | quick | full (default: quick)")
    p.add_argument("-m", "--mechanisms", help="comma list of mechanisms (default: all; see `ipcbench list`)")
    p.add_argument("-p", "--patterns", help="comma list of patterns to keep (default: all each mechanism has)")
    p.add_argument("--payload-sizes", help="comma list of sizes, e.g. 8,1KiB,64KiB,16MiB (default: preset's)")
    p.add_argument("--workers", help="comma list of worker counts, e.g. 1,2,4 (default: preset's)")
    p.add_argument("--start-method", help="fork | spawn | forkserver, or a comma list (default: preset's)")
    p.add_argument("--placement", help="where a round's processes run: spread (each on its own CPU), shared "
                   "(all on one CPU), os (unpinned), or a comma list (default: spread)")
    p.add_argument("--rounds", type=int, help="exactly this many rounds per case (sets --min-rounds and "
                   "--max-rounds; default: the preset's adaptive rounds)")
    p.add_argument("--min-rounds", type=int, help="rounds every case gets (default: preset's)")
    p.add_argument("--max-rounds", type=int, help="most rounds a case gets while its CI is too wide "
                   "(default: preset's)")
    p.add_argument("--target-ci", type=float, help="stop adding rounds to a case once the 95 %% CIs of its "
                   "p50 latency and throughput are within +- this fraction (default: preset's, 0.05 = +-5 %%)")
    p.add_argument("--case-budget", type=float, metavar="SECONDS", help="add no round to a case whose rounds "
                   "have taken this long (default: preset's; 0: no limit)")
    p.add_argument("--run-budget", type=float, metavar="SECONDS", help="rounds beyond a case's minimum share "
                   "what is left of this many seconds for the whole run (default: preset's; 0: no limit)")
    p.add_argument("--fresh-rounds", action="store_true", help="start every round as a fresh interpreter "
                   "instead of forking it from the warm launcher (slower: ~0.25 s per round)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a round is killed (default 60)")
    p.add_argument("--seed", type=int, help="seed of the random order of rounds (default: a fresh one, "
                   "printed and recorded in the result file)")
    p.add_argument("--machine-id", help="name of this machine in results (default: hostname-<hash>)")
    p.add_argument("-o", "--output", help="result file (default: results/<machine_id>/<timestamp>.json)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import UserError
    from ..measure.machine_file import check_id, default_machine_id
    from ..measure.mechanisms import all_mechanisms
    from ..measure.progress import make_progress
    from ..measure.runner import ResultWriter, RunOptions, Terminated, new_seed, run_cases, sigterm_raises
    from ..plan.cases import PAYLOAD_KINDS
    from ..plan.presets import (
        build_grid,
        check_placements,
        check_start_methods,
        get_preset,
        start_methods,
        worker_counts,
    )
    from ..units import parse_int_list, parse_size_list, split_list

    preset = get_preset(args.preset)
    mechanisms = split_list(args.mechanisms) or None
    patterns = split_list(args.patterns) or None
    if patterns:
        from ..plan.cases import PATTERNS

        for pat in patterns:
            if pat not in PATTERNS:
                raise UserError(f"unknown pattern {pat!r}; known: {', '.join(PATTERNS)}")
    sizes = parse_size_list(args.payload_sizes) if args.payload_sizes else list(preset.payload_sizes)
    _check_memory(max(sizes, default=0))
    workers = parse_int_list(args.workers, "worker count") if args.workers else worker_counts(preset.workers)
    if args.start_method:
        methods = check_start_methods(split_list(args.start_method))
    else:
        methods = start_methods(preset.start_methods)
    placements = check_placements(split_list(args.placement))
    min_rounds, max_rounds, budget, target = _round_settings(args, preset)
    run_budget = preset.run_budget_s if args.run_budget is None else (args.run_budget or None)
    if run_budget is not None and run_budget < 0:
        raise UserError(f"--run-budget must be 0 (no limit) or more, got {run_budget:g}")
    if args.timeout <= 0:
        raise UserError(f"--timeout must be positive, got {args.timeout:g}")
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}")
    cases = build_grid(mechanisms, patterns, sizes, workers, methods, PAYLOAD_KINDS[0],
                       catalogue=all_mechanisms(), placements=placements)

    machine_id = check_id(args.machine_id) if args.machine_id else default_machine_id()
    out = Path(args.output) if args.output else \
        Path("results") / machine_id / f"{datetime.now().strftime('%Y%m%dT%H%M%S')}.json"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out.parent}: {exc.strerror}") from None
    seed = new_seed() if args.seed is None else args.seed
    opts = RunOptions(spec=preset.spec, rounds=min_rounds, max_rounds=max_rounds, target_ci=target,
                      case_budget_s=budget, run_budget_s=run_budget, round_timeout_s=args.timeout, seed=seed,
                      reach_factor=preset.reach_factor,
                      fresh_rounds=args.fresh_rounds)
    run_info = {"preset": preset.name, "argv": sys.argv[1:], "rounds": min_rounds, "spec": preset.spec.to_dict(),
                "round_timeout_s": args.timeout, "payload_sizes": sizes, "workers": workers,
                "start_methods": methods, "placements": placements}
    try:
        writer = ResultWriter(out, machine_id, run_info)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    if not args.quiet:
        print(f"ipcbench: rounds in a random order, seed {seed} (--seed {seed} repeats it)", file=sys.stderr)
    try:
        with sigterm_raises():
            data = run_cases(cases, opts, writer, make_progress(args.quiet))
    except KeyboardInterrupt as exc:
        kept = writer.data["cases"]
        short = sum(1 for c in kept if c.get("stop_reason") == "interrupted")
        what = f"terminated ({signal.Signals(exc.signum).name})" if isinstance(exc, Terminated) else "interrupted"
        print(f"ipcbench: {what}; {len(kept) - short} finished case(s) kept in {out}"
              + (f", and {short} case(s) with only some of their rounds (stop_reason \"interrupted\")"
                 if short else ""), file=sys.stderr)
        return 128 + exc.signum if isinstance(exc, Terminated) else 130
    failed = sum(1 for c in data["cases"] if c["status"] != "ok")
    ok = [c for c in data["cases"] if c["status"] == "ok"]
    met = sum(1 for c in ok if c.get("target_met"))
    print(f"wrote {out} ({len(data['cases'])} cases, {failed} failed; {met} of {len(ok)} within "
          f"+-{target * 100:g} %; order seed {seed})", file=sys.stderr)
    return 1 if failed == len(data["cases"]) else 0


def _round_settings(args, preset) -> tuple[int, int, float | None, float]:
    """(min rounds, max rounds, case budget in s or None, target CI) from the flags and the preset."""
    from ..errors import UserError

    if args.rounds is not None:
        if args.min_rounds is not None or args.max_rounds is not None:
            raise UserError("--rounds sets both --min-rounds and --max-rounds; give one or the others")
        if args.rounds < 1:
            raise UserError(f"--rounds must be 1 or more, got {args.rounds}")
        min_rounds = max_rounds = args.rounds
    else:
        min_rounds = preset.rounds if args.min_rounds is None else args.min_rounds
        if min_rounds < 1:
            raise UserError(f"--min-rounds must be 1 or more, got {min_rounds}")
        max_rounds = args.max_rounds if args.max_rounds is not None else max(min_rounds, preset.max_rounds)
        if max_rounds < min_rounds:
            raise UserError(f"--max-rounds ({max_rounds}) must be at least --min-rounds ({min_rounds})")
    budget = preset.case_budget_s if args.case_budget is None else (args.case_budget or None)
    if budget is not None and budget < 0:
        raise UserError(f"--case-budget must be 0 (no limit) or more, got {budget:g}")
    target = preset.target_ci if args.target_ci is None else args.target_ci
    if not 0 < target < 1:
        raise UserError(f"--target-ci must be a fraction between 0 and 1 (0.05 = +-5 %), got {target:g}")
    return min_rounds, max_rounds, budget, target


# A case holds several copies of its payload at once (sender, pickled bytes, pipe or queue buffers,
# receiver, the echo's copy): a payload above this share of the machine's memory cannot run safely.
MAX_PAYLOAD_SHARE = 1 / 8


def _check_memory(largest: int) -> None:
    """Refuse, before anything runs, a payload size the machine cannot hold several copies of."""
    import psutil

    from ..errors import UserError
    from ..units import format_size

    total = psutil.virtual_memory().total
    if largest > total * MAX_PAYLOAD_SHARE:
        raise UserError(f"payload size {format_size(largest)} is more than 1/{round(1 / MAX_PAYLOAD_SHARE)} of this "
                        f"machine's memory ({format_size(total)}); a case holds several copies of its payload")
