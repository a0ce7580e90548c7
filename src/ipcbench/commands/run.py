"""``ipcbench run``: measure a grid of cases and write a result file."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from ..errors import UserError
from ..measure import allocator

ORDER = 10

EXAMPLES = """examples:
  ipcbench run --preset smoke -o r.json
  ipcbench run -m pipe_duplex,queue,manager_dict,pool_apply --payload-sizes 8 --workers 1
  ipcbench run -m queue,pipe_duplex,socketpair --payload-kinds bytes,numpy,object --payload-sizes 64KiB
  ipcbench run --preset quick --start-method spawn --machine-id laptop
  ipcbench run --preset smoke --seed 1234     # the same order of rounds as a run with seed 1234
  ipcbench run -m queue --target-ci 0.02 --max-rounds 60 --case-budget 20   # tighter CIs, longer
  ipcbench run -m queue --rounds 5            # exactly 5 rounds per case, no adaptive rounds
  ipcbench run --resume results/laptop/20261201T101500.json   # finish a run that was interrupted
  ipcbench run -m celery,pool_apply,pool_apply_async --workers 1,2   # Celery (pip install 'ipcbench[celery]')
  ipcbench run -m celery --broker-url redis://:PASS@broker:6379/0 --remote-workers   # workers elsewhere

rounds: every case gets --min-rounds rounds, then more, while the round-level 95 % CI of its p50 latency
or throughput is wider than +-target (--target-ci), up to --max-rounds or until its rounds have taken
--case-budget seconds, or the run's rounds beyond the minimum have shared out --run-budget seconds (the
quick preset's budget, 240 s, also caps its minimum: where it cannot pay 5 rounds a case, the cases still
to run get 4, or 3, and stop with "run budget"; not with --min-rounds). A case
whose rounds vary too much to reach the target within twice --max-rounds stops early ("out of reach").
The result file records per case the CI reached, whether the target was met and why it stopped
(stop_reason: target met | max rounds | out of reach | time budget | run budget | failed | interrupted).

celery: each round starts its own redis-server (127.0.0.1, a free port, a random password, no persistence)
and a Celery prefork worker, and stops both when it ends; `--preset smoke` and `quick` leave celery out
unless it is named with -m, and every preset skips it where Celery or a Redis server is missing (the result
file records each mechanism left out and why: run.skipped_mechanisms). See docs/celery.md.

interrupted runs: Ctrl-C, SIGTERM or SIGHUP end a run within seconds; its file keeps every finished case
and is marked "interrupted". `--resume FILE` runs the rest into the same file: finished (and failed) cases
are kept, cases cut short start again (their partial rounds are kept in run.resumed).
"""


def register(sub) -> None:
    p = sub.add_parser("run", help="measure cases and write a result file",
                       description="Run benchmark cases. Each round of each case runs in a process of its own "
                       "(forked from a warm, pre-imported launcher, or with --fresh-rounds a fresh "
                       "interpreter), with its own peers; the rounds of all cases run interleaved, in a random "
                       "order drawn from a seed that the result file records, and a case gets rounds until "
                       "its confidence interval is tight enough (see below); the file is rewritten after "
                       "every finished case, so an interrupted run (Ctrl-C, SIGTERM) keeps what it measured.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", help="smoke | quick | full (default: quick)")
    p.add_argument("-m", "--mechanisms", help="comma list of mechanisms (default: all; see `ipcbench list`)")
    p.add_argument("-p", "--patterns", help="comma list of patterns to keep (default: all each mechanism has)")
    p.add_argument("--payload-sizes", help="comma list of sizes, e.g. 8,1KiB,64KiB,16MiB (default: preset's)")
    p.add_argument("--payload-kinds", help="comma list of payload kinds: bytes, numpy (a uint8 array), object "
                   "(nested dicts and lists pickling to about the size) (default: preset's; see `ipcbench list`)")
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
                   "what is left of this many seconds for the whole run (default: preset's; 0: no limit); "
                   "quick's also caps its minimum of 5 (down to 3) unless --min-rounds is given")
    p.add_argument("--fresh-rounds", action="store_true", help="start every round as a fresh interpreter "
                   "instead of forking it from the warm launcher (slower: ~0.25 s per round)")
    p.add_argument("--allocator", choices=allocator.STATES, help="malloc state the round processes start in: "
                   + allocator.HELP.replace("%", "%%"))
    p.add_argument("--timeout", type=float, help="seconds before a round is killed (default 60)")
    p.add_argument("--seed", type=int, help="seed of the random order of rounds (default: a fresh one, "
                   "printed and recorded in the result file)")
    p.add_argument("--machine-id", help="name of this machine in results (default: hostname-<hash>)")
    p.add_argument("-o", "--output", help="result file (default: results/<machine_id>/<timestamp>.json)")
    p.add_argument("--resume", metavar="FILE", help="go on with the interrupted (or killed) run in FILE: its "
                   "finished cases are kept, the rest run with the settings it records (same machine, Python and "
                   "ipcbench, checked); takes no measurement flags")
    p.add_argument("--overwrite", action="store_true", help="replace the result file given by -o if it exists "
                   "(without it, an existing file is never overwritten)")
    p.add_argument("--broker-url", metavar="URL", help="celery: use this Redis (redis://[:PASSWORD@]HOST:PORT/DB) "
                   "as broker and result backend instead of starting a redis-server in every round (local workers "
                   "are still started, unless --remote-workers)")
    p.add_argument("--remote-workers", action="store_true", help="celery, with --broker-url: start no worker here; "
                   "the tasks go to queue 'ipcbench', served by workers started elsewhere with `ipcbench "
                   "celery-worker --broker-url URL --concurrency N`")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..measure.machine_file import check_id, default_machine_id

    _celery_env(args)
    if args.resume:
        return _resume(args)
    settings, preset = _settings(args)
    settings["skipped_mechanisms"] = _skipped(settings["mechanisms"], settings["patterns"], preset, args.broker_url)
    cases = _grid(settings)
    _check_memory(cases)
    seed = _seed(args)
    machine_id = check_id(args.machine_id) if args.machine_id else default_machine_id()
    out = Path(args.output) if args.output else \
        Path("results") / machine_id / f"{datetime.now().strftime('%Y%m%dT%H%M%S')}.json"
    _check_output(out, len(cases), settings["rounds_max"], overwrite=args.overwrite)
    # the preset's floor gives way only to its own minimum: a --min-rounds (or --rounds) is kept whole
    floor = preset.floor_rounds if args.min_rounds is None and args.rounds is None else None
    opts = _options(settings, preset.reach_factor, seed, settings["run_budget_s"], floor)
    from ..measure.allocator import describe

    run_info = {"preset": preset.name, "argv": sys.argv[1:], "pid": os.getpid(),
                **{k: v for k, v in settings.items() if k not in ADAPTIVE_KEYS},
                "allocator_detail": describe(settings["allocator"])}
    between = _between_run(machine_id)
    if between:
        run_info["between_run"] = between
    if args.broker_url:                    # where the celery rounds' broker and workers were (no password)
        from ..measure.celery_support import redact

        run_info["celery"] = {"broker_url": redact(args.broker_url), "remote_workers": args.remote_workers}
        run_info["argv"] = [f"--broker-url={redact(a[13:])}" if a.startswith("--broker-url=") else
                            redact(a) if "://" in a else a for a in run_info["argv"]]
    from ..measure.runner import ResultWriter

    try:
        writer = ResultWriter(out, machine_id, run_info)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    if not args.quiet:
        for skip in settings["skipped_mechanisms"]:
            print(f"ipcbench: {skip['mechanism']} left out: {skip['reason']}", file=sys.stderr)
        print(f"ipcbench: rounds in a random order, seed {seed} (--seed {seed} repeats it)", file=sys.stderr)
    return _execute(cases, opts, writer, args.quiet)


# the settings run_cases records in run.adaptive rather than at the top of run
ADAPTIVE_KEYS = ("rounds_max", "target_ci", "case_budget_s", "run_budget_s")
# flags that choose what and how to measure: a resumed run takes them from its file
MEASUREMENT_FLAGS = ("preset", "mechanisms", "patterns", "payload_sizes", "payload_kinds", "workers", "start_method",
                     "placement", "rounds", "min_rounds", "max_rounds", "target_ci", "case_budget", "run_budget", "timeout",
                     "allocator",
                     "machine_id", "output")


def _settings(args) -> tuple[dict, object]:
    """Every choice of the run, resolved from the flags and the preset (what the result file records, and
    what ``--resume`` rebuilds the run from)."""
    from ..plan.cases import PATTERNS
    from ..plan.presets import (
        check_payload_kinds,
        check_placements,
        check_start_methods,
        get_preset,
        start_methods,
        worker_counts,
    )
    from ..units import parse_int_list, parse_size_list, split_list

    preset = get_preset(args.preset or "quick")
    patterns = split_list(args.patterns) or None
    for pat in patterns or ():
        if pat not in PATTERNS:
            raise UserError(f"unknown pattern {pat!r}; known: {', '.join(PATTERNS)}")
    sizes = parse_size_list(args.payload_sizes) if args.payload_sizes else list(preset.payload_sizes)
    kinds = check_payload_kinds(split_list(args.payload_kinds) or list(preset.payload_kinds))
    # a kind's own sizes and worker counts in the preset, unless --payload-sizes / --workers say them for
    # every kind
    kind_sizes = {} if args.payload_sizes else {k: list(preset.kind_sizes[k]) for k in kinds if k in preset.kind_sizes}
    kind_workers = {} if args.workers else {k: list(preset.kind_workers[k]) for k in kinds
                                            if k in preset.kind_workers}
    workers = parse_int_list(args.workers, "worker count") if args.workers else worker_counts(preset.workers)
    if args.start_method:
        methods = check_start_methods(split_list(args.start_method))
    else:
        methods = start_methods(preset.start_methods)
    min_rounds, max_rounds, budget, target = _round_settings(args, preset)
    run_budget = preset.run_budget_s if args.run_budget is None else (args.run_budget or None)
    if run_budget is not None and not run_budget >= 0:          # also refuses NaN
        raise UserError(f"--run-budget must be 0 (no limit) or more, got {run_budget:g}")
    timeout = 60.0 if args.timeout is None else args.timeout
    if not 0 < timeout < float("inf"):                          # also refuses NaN and inf
        raise UserError(f"--timeout must be positive, got {timeout:g}")
    settings = {"mechanisms": split_list(args.mechanisms) or None, "patterns": patterns, "rounds": min_rounds,
                "spec": preset.spec.to_dict(), "round_timeout_s": timeout, "payload_sizes": sizes,
                "payload_kinds": kinds, "kind_sizes": kind_sizes, "kind_workers": kind_workers,
                "workers": workers, "start_methods": methods,
                "placements": check_placements(split_list(args.placement)), "fresh_rounds": args.fresh_rounds,
                "allocator": args.allocator or allocator.DEFAULT,
                "rounds_max": max_rounds, "target_ci": target, "case_budget_s": budget, "run_budget_s": run_budget}
    return settings, preset


def _celery_env(args) -> None:
    """Hand --broker-url and --remote-workers to the rounds, through the environment the warm launcher and
    every round inherit (``measure.celery_support``); without the flags, the rounds start their own Redis and
    workers, whatever the caller's environment says."""
    from ..measure.celery_support import BROKER_ENV, REMOTE_ENV

    url = args.broker_url
    if args.remote_workers and not url:
        raise UserError("--remote-workers needs --broker-url: the Redis the remote workers listen on")
    if url is not None and not url.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
        raise UserError(f"--broker-url takes a Redis URL, redis://[:PASSWORD@]HOST:PORT/DB; got {url!r}")
    for name, value in ((BROKER_ENV, url), (REMOTE_ENV, "1" if args.remote_workers else None)):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)


def _skipped(named: list[str] | None, patterns: list[str] | None, preset, broker_url: str | None) -> list[dict]:
    """The mechanisms this run leaves out, each with its reason: those the preset runs only when named
    (``Preset.leaves_out``), and those that cannot run here (celery without Celery or a Redis server), where
    they have a pattern the run measures. A mechanism named with -m is never left out: if it cannot run,
    this says what to install (exit 2)."""
    from ..measure.celery_support import missing
    from ..measure.mechanisms import all_mechanisms
    from ..plan.presets import LEFT_OUT

    unavailable = {}
    why = missing(broker_url)
    if why:
        unavailable["celery"] = why
    if named:
        for name in named:
            if name in unavailable:
                raise UserError(unavailable[name])
        return []
    measured = {m.name for m in all_mechanisms() if not patterns or set(m.patterns) & set(patterns)}
    skipped = []
    for name in dict.fromkeys([*preset.leaves_out, *unavailable]):
        if name not in measured:
            continue
        reasons = []
        if name in preset.leaves_out:
            reasons.append(f"the {preset.name} preset runs it only when named: {LEFT_OUT[name]}")
        if name in unavailable:
            reasons.append(f"it cannot run here: {unavailable[name]}")
        skipped.append({"mechanism": name, "reason": "; and ".join(reasons)})
    return skipped


def _grid(settings: dict) -> list:
    from ..measure.mechanisms import all_mechanisms
    from ..plan.cases import DEFAULT_PAYLOAD_KIND
    from ..plan.presets import build_grid

    skipped = {s["mechanism"] for s in settings.get("skipped_mechanisms") or ()}
    catalogue = [m for m in all_mechanisms() if m.name not in skipped]
    return build_grid(settings["mechanisms"], settings["patterns"], settings["payload_sizes"], settings["workers"],
                      settings["start_methods"], settings.get("payload_kinds") or [DEFAULT_PAYLOAD_KIND],
                      catalogue=catalogue, placements=settings["placements"],
                      kind_sizes=settings.get("kind_sizes") or {}, kind_workers=settings.get("kind_workers") or {})


def _seed(args) -> int:
    from ..measure.runner import new_seed

    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}")
    return new_seed() if args.seed is None else args.seed


def _between_run(machine_id: str) -> dict | None:
    """This machine's between-run sd, kept by ``ipcbench aa --save`` in its machine file (None: none kept,
    or the run is named as another machine with --machine-id): the run records it, and its CIs and
    comparisons include it (docs/measurement.md, "Do two runs agree?")."""
    from ..measure.machine_file import load

    me = load()
    bw = me.get("between_run")
    return dict(bw) if isinstance(bw, dict) and me.get("machine_id") == machine_id else None


def _options(settings: dict, reach_factor, seed: int, run_budget_s, floor_rounds=None):
    from ..measure.runner import RunOptions
    from ..plan.cases import RoundSpec

    return RunOptions(spec=RoundSpec.from_dict(settings["spec"]), rounds=settings["rounds"],
                      max_rounds=settings["rounds_max"], target_ci=settings["target_ci"],
                      case_budget_s=settings["case_budget_s"], run_budget_s=run_budget_s, floor_rounds=floor_rounds,
                      round_timeout_s=settings["round_timeout_s"], seed=seed, reach_factor=reach_factor,
                      fresh_rounds=settings["fresh_rounds"], allocator=settings.get("allocator") or "fresh")


def _resume(args) -> int:
    """``--resume FILE``: the rest of an unfinished run, into the same file (see ``measure/resume.py``)."""
    from ..measure import resume
    from ..measure.environment import git_commit, python_metadata
    from ..measure.machine_file import hostname, load
    from ..measure.runner import Continuation, ResultWriter
    from ..results.schema import load_result

    given = [f"--{name.replace('_', '-')}" for name in MEASUREMENT_FLAGS if getattr(args, name) is not None]
    given += ["--fresh-rounds"] if args.fresh_rounds else []
    if given:
        raise UserError(f"--resume takes every measurement setting from the file; drop {', '.join(given)} "
                        f"(only --seed and -q go with --resume)")
    source = args.resume
    data = load_result(source)
    resume.check_resumable(data, source, identity=load()["machine_id"], hostname=hostname(),
                           python=python_metadata())
    run = resume.settings_of(data, source)
    adaptive = run["adaptive"]
    settings = {**{k: run[k] for k in (*resume.SETTINGS, *resume.DEFAULTS) if k != "adaptive"},
                "skipped_mechanisms": run.get("skipped_mechanisms") or [],
                "rounds": adaptive["rounds_min"],
                **{k: adaptive[k] for k in ADAPTIVE_KEYS}}
    grid = _grid(settings)
    todo_plan = resume.plan(data, grid, source)
    out = Path(source)
    _check_output(out, len(grid), settings["rounds_max"], resuming=True)
    commit = git_commit()
    if commit != (data.get("python") or {}).get("git_commit") and not args.quiet:
        print(f"ipcbench: note: the ipcbench source is at commit {commit}, the run started at "
              f"{(data.get('python') or {}).get('git_commit')}; recorded in run.resumed", file=sys.stderr)
    run_budget = adaptive["run_budget_s"]
    if run_budget is not None:
        run_budget = run_budget * len(todo_plan.todo) / max(1, len(grid))
    seed = _seed(args)
    opts = _options(settings, adaptive["reach_factor"], seed, run_budget, adaptive.get("rounds_floor"))
    continuation = Continuation(todo_plan.todo, resume.next_order(data), resume.seconds_since_start(data))
    try:
        writer = ResultWriter.reopen(out, data, todo_plan.kept, resume.entry(todo_plan, len(grid), commit))
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    if not args.quiet:
        short = sum(len(r.get("rounds") or ()) for r in todo_plan.superseded)
        print(f"ipcbench: resuming {out}: {len(todo_plan.kept)} finished case(s) kept, {len(todo_plan.todo)} to run"
              + (f" ({len(todo_plan.superseded)} interrupted case(s) start again; their {short} round(s) are kept "
                 f"in run.resumed)" if todo_plan.superseded else "")
              + f"; rounds in a random order, seed {seed}", file=sys.stderr)
    if not todo_plan.todo:
        writer.finish("complete")
        print(f"wrote {out} (nothing was left to run)", file=sys.stderr)
        return 0
    return _execute([grid[i] for i in todo_plan.todo], opts, writer, args.quiet, continuation)


def _execute(cases: list, opts, writer, quiet: bool, continuation=None) -> int:
    """Run ``cases`` into ``writer``; the summary line, or what was kept when a signal ended the run."""
    from ..measure.progress import make_progress
    from ..measure.runner import Terminated, run_cases, sigterm_raises

    out = writer.path
    try:
        with sigterm_raises():
            data = run_cases(cases, opts, writer, make_progress(quiet), continuation)
    except KeyboardInterrupt as exc:
        kept = writer.data["cases"]
        short = sum(1 for c in kept if c.get("stop_reason") == "interrupted")
        what = f"terminated ({signal.Signals(exc.signum).name})" if isinstance(exc, Terminated) else "interrupted"
        print(f"ipcbench: {what}; {len(kept) - short} finished case(s) kept in {_where(writer)}"
              + (f", and {short} case(s) with only some of their rounds (stop_reason \"interrupted\")"
                 if short else "") + f"; `ipcbench run --resume {_where(writer)}` goes on", file=sys.stderr)
        return 128 + exc.signum if isinstance(exc, Terminated) else 130
    ran = [c for c in data["cases"] if continuation is None or _ran_now(c, continuation)]
    failed = sum(1 for c in data["cases"] if c["status"] != "ok")
    ok = [c for c in data["cases"] if c["status"] == "ok"]
    met = sum(1 for c in ok if c.get("target_met"))
    if writer.rescue_path is not None:
        print(f"ipcbench: error: could not write {out}; the results are in {writer.rescue_path}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({len(data['cases'])} cases, {failed} failed; {met} of {len(ok)} within "
          f"+-{opts.target_ci * 100:g} %; order seed {opts.seed})", file=sys.stderr)
    return 1 if ran and all(c["status"] != "ok" for c in ran) else 0


def _ran_now(record: dict, continuation) -> bool:
    rounds = record.get("rounds") or ()
    return any(isinstance(r.get("order"), int) and r["order"] >= continuation.order_start for r in rounds)


def _where(writer) -> Path:
    return writer.rescue_path or writer.path


def _round_settings(args, preset) -> tuple[int, int, float | None, float]:
    """(min rounds, max rounds, case budget in s or None, target CI) from the flags and the preset."""
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
    if budget is not None and not budget >= 0:                  # also refuses NaN
        raise UserError(f"--case-budget must be 0 (no limit) or more, got {budget:g}")
    target = preset.target_ci if args.target_ci is None else args.target_ci
    if not 0 < target < 1:
        raise UserError(f"--target-ci must be a fraction between 0 and 1 (0.05 = +-5 %), got {target:g}")
    return min_rounds, max_rounds, budget, target


# Bytes a case record takes in a result file: ~2,000 stored samples and the case's summary, plus each
# round's record (its placement and load notes); measured on the reference sets of results/vm-003596/
# (14-16 KB per case, 1.7-2.1 KB per round), with a margin.
CASE_BYTES, ROUND_BYTES = 24_000, 3_000


def _check_output(out: Path, n_cases: int, rounds_max: int, resuming: bool = False,
                  overwrite: bool = False) -> None:
    """Before anything runs: the result file's folder exists (or is made) and takes a new file, the file
    is not a folder, an existing result file is not overwritten by a new run (unless ``overwrite``), and
    the disk has room for the file twice (it is rewritten atomically after every case)."""
    import shutil

    from ..units import format_size

    if out.is_dir():
        raise UserError(f"{out} is a folder; give -o a file name, e.g. {out / 'run.json'}")
    if out.exists() and not resuming and not overwrite:
        raise UserError(f"{out} exists; give another -o, --resume it if its run was interrupted, or add "
                        f"--overwrite to replace it")
    blocker = next((p for p in out.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UserError(f"cannot write {out}: {blocker} is a file, not a folder; give -o a writable place")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=out.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot write in {out.parent}: {exc.strerror or exc}; give -o a writable place") from None
    need = 2 * n_cases * (CASE_BYTES + ROUND_BYTES * rounds_max) + 1_000_000
    free = shutil.disk_usage(out.parent).free
    if free < need:
        raise UserError(f"only {format_size(free)} free in {out.parent}; the result file of {n_cases} cases "
                        f"needs up to {format_size(need)} (twice its size: it is rewritten after every case)")


def _check_memory(cases: list) -> None:
    """Refuse, before anything runs, a case whose round may need more than 80 % of this machine's memory
    (``plan.memory``: the bound measured in docs/memory.md)."""
    import psutil

    from ..plan import memory
    from ..units import format_size

    total = psutil.virtual_memory().total
    worst = memory.largest(cases)
    if worst is not None and worst[1] > total * memory.SHARE:
        case, need = worst
        raise UserError(f"case {case.id} may need up to {format_size(need)} of memory ({case.payload_bytes:,} B "
                        f"payload, {memory.workers_of(case)} worker(s): a round holds several copies of it in each "
                        f"process; see docs/memory.md), more than {memory.SHARE:.0%} of this machine's "
                        f"{format_size(total)}; choose smaller --payload-sizes or fewer --workers")
