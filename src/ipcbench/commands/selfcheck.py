"""``ipcbench selfcheck``: does ipcbench measure what users get? Each pattern held against the minimal loop a
user would write for the same exchange (``measure/user_loops.py``; DESIGN rule 10; docs/selfcheck.md).

The pure parts (the paired ratio with its CI, the verdicts, the counts) are functions here, tested with
made-up numbers; the measuring is ``user_loops.run_pairs``."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UserError
from ..measure import allocator

ORDER = 28

SCHEMA = "ipcbench-selfcheck"
SCHEMA_VERSION = 1
PASS, FAIL, INCONCLUSIVE, ERROR = "PASS", "FAIL", "INCONCLUSIVE", "ERROR"
VERDICTS = (PASS, FAIL, INCONCLUSIVE, ERROR)
CONFIDENCE = 0.95
METRICS = ("throughput", "p50")
DEFAULT_WORKERS = {"fanin": 2, "contention": 2}      # one producer is a stream, one client does not contend

EXAMPLES = """examples (an idle machine; nothing else running: it is a benchmark):
  ipcbench selfcheck                               # every pair, 8 B, 5 paired reps, up to 15 for INCONCLUSIVE ones
  ipcbench selfcheck -m pipe_duplex,queue --reps 9 --json selfcheck.json
  ipcbench selfcheck --reps 5 --max-reps 5         # exactly 5 reps a pair
  ipcbench selfcheck -m pool_apply_async --workers 2 --size 1KiB
  ipcbench selfcheck --placement os                # both sides unpinned (the scheduler places them)

verdicts, per comparison (ratio = ipcbench / hand loop; band = [1/(1+tol), 1+tol]):
  PASS          the estimate is inside the band (its CI then meets the band too)
  FAIL          the whole 95 % CI is outside the band: ipcbench does not measure what this loop gets
  INCONCLUSIVE  the estimate is outside the band but the CI reaches into it: too noisy here to tell
                (such a pair gets more reps, up to --max-reps, until it is PASS or FAIL)
  ERROR         fewer than 2 reps of the pair could be measured (the reason is printed)
exit status: 0 when nothing FAILed or ERRORed, 1 otherwise, 2 for bad input.
"""


def register(sub) -> None:
    p = sub.add_parser("selfcheck", help="fidelity check: ipcbench against the minimal loops users write",
                       description="Alternate, rep by rep, a minimal hand-written user loop (a fresh interpreter, "
                       "its processes placed as the round's are, a short warm-up, one clock read around N operations) with one round of the same "
                       "case through ipcbench, for each (mechanism, pattern) that has a user loop, and print the "
                       "ratio ipcbench / hand of throughput (and of p50 latency where the hand loop can time "
                       "single operations: roundtrip, rpc, Pool.apply) with a 95 % CI from the paired reps. "
                       "See docs/selfcheck.md.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--mechanisms", help="comma list of mechanisms (default: every one with a user loop)")
    p.add_argument("-p", "--patterns", help="comma list of patterns to keep (default: all with a user loop)")
    p.add_argument("--reps", type=int, default=5, help="paired reps every (mechanism, pattern) gets, at least 2 "
                   "(default 5)")
    p.add_argument("--max-reps", type=int, help="more reps, up to this many, for a pair while it is "
                   "INCONCLUSIVE (default: 3 x --reps; equal to --reps: none)")
    p.add_argument("--size", default="8", help="payload size in bytes (units allowed: 1KiB, 1MiB; default 8); "
                   "contention moves none")
    p.add_argument("--workers", type=int, help="workers of fanin, rpc, dispatch and contention (default: 2 for "
                   "fanin and contention, 1 for rpc and dispatch); roundtrip and stream have one peer")
    p.add_argument("--placement", default="spread", help="placement of both sides' processes: spread (each on "
                   "its own CPU, ipcbench run's default and this one's), shared (all on one CPU) or os (unpinned: "
                   "on a small machine the scheduler's choice then swings both sides, independently)")
    p.add_argument("--allocator", choices=allocator.STATES, default=allocator.DEFAULT, help="malloc state both "
                   "sides' processes start in, as `ipcbench run --allocator` (matters for large --size): "
                   + allocator.HELP.replace("%", "%%"))
    p.add_argument("--start-method", help="fork | spawn | forkserver, for both sides (default: this platform's)")
    p.add_argument("--preset", default="quick", help="whose round settings (window, warm-up) the ipcbench side "
                   "uses: smoke | quick | full (default quick, what `ipcbench run` uses)")
    p.add_argument("--fresh-rounds", action="store_true", help="start every ipcbench round as a fresh "
                   "interpreter, as the hand loops are (default: forked from the warm launcher, as `ipcbench run` "
                   "does); on a VM whose idle CPUs are slow to wake, round trips differ between the two "
                   "(docs/selfcheck.md)")
    p.add_argument("--hand-seconds", type=float, default=None, help="length of each hand loop's timed window "
                   "(default 0.25 s; its p50 pass as long again)")
    p.add_argument("--tolerance", type=float, default=0.10, help="how far from 1 a ratio may be: the band is "
                   "[1/(1+tol), 1+tol] (default 0.10)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a hand loop or an ipcbench round is "
                   "killed (default 60)")
    p.add_argument("--json", metavar="FILE", help="write every rep's figures and the summary to FILE (JSON)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=main)


# -- the statistics (pure) ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ratio:
    """ipcbench / hand over paired reps: the geometric mean of the per-rep ratios and the 95 % t-interval
    of the mean log ratio, back-transformed (None where it is not defined)."""

    ratio: float | None
    low: float | None
    high: float | None
    n: int


def paired_ratio(ipcbench: Sequence[float | None], hand: Sequence[float | None],
                 confidence: float = CONFIDENCE) -> Ratio:
    """The ratio ipcbench / hand from paired reps (rep i of each side ran back to back); reps where either
    side has no positive, finite value are left out."""
    import numpy as np
    from scipy import stats

    kept = [(a, b) for a, b in zip(ipcbench, hand)
            if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0]
    if not kept:
        return Ratio(None, None, None, 0)
    logs = np.log([a for a, _ in kept]) - np.log([b for _, b in kept])
    mean = float(np.mean(logs))
    if len(logs) < 2:
        return Ratio(math.exp(mean), None, None, 1)
    sem = float(stats.sem(logs))
    if sem == 0:
        low = high = mean
    else:
        low, high = stats.t.interval(confidence, len(logs) - 1, loc=mean, scale=sem)
    return Ratio(math.exp(mean), math.exp(low), math.exp(high), len(logs))


def band(tolerance: float) -> tuple[float, float]:
    return 1 / (1 + tolerance), 1 + tolerance


def verdict(r: Ratio, tolerance: float) -> str:
    """PASS: the estimate is inside the band [1/(1+tol), 1+tol] (so its CI meets the band too); FAIL: the
    whole CI is outside the band; INCONCLUSIVE otherwise (the estimate outside, the CI reaching in), and
    where no CI could be made (fewer than two reps)."""
    lo, hi = band(tolerance)
    if r.ratio is None or r.low is None or r.high is None:
        return INCONCLUSIVE
    if r.high < lo or r.low > hi:
        return FAIL
    if lo <= r.ratio <= hi:
        return PASS
    return INCONCLUSIVE


def ci_inside(r: Ratio, tolerance: float) -> bool:
    """The whole CI inside the band: a match confirmed, not just not contradicted."""
    lo, hi = band(tolerance)
    return r.low is not None and r.high is not None and lo <= r.low and r.high <= hi


def pair_verdict(verdicts: Sequence[str]) -> str:
    """A pair's verdict from its comparisons: ERROR, else FAIL, else INCONCLUSIVE if any, else PASS."""
    for v in (ERROR, FAIL, INCONCLUSIVE):
        if v in verdicts:
            return v
    return PASS if verdicts else INCONCLUSIVE


def compare_reps(reps: Sequence[dict], p50: bool, tolerance: float) -> dict:
    """The comparisons of one pair from its reps (``{"hand": {...}, "ipcbench": {...}}``, each side ``ok``
    with ``rate`` and ``p50_s``, or failed with ``error``): per metric the ratio, CI, verdict and the
    geometric means of the two sides; and the pair's verdict."""
    good = [r for r in reps if r.get("hand", {}).get("ok") and r.get("ipcbench", {}).get("ok")]
    errors = [r[side]["error"] for r in reps for side in ("hand", "ipcbench") if not r.get(side, {}).get("ok", True)]
    out: dict = {"reps_ok": len(good), "reps_run": len(reps), "errors": errors, "comparisons": {}}
    metrics = [("throughput", "rate")] + ([("p50", "p50_s")] if p50 else [])
    for metric, key in metrics:
        ipc = [r["ipcbench"].get(key) for r in good]
        hand = [r["hand"].get(key) for r in good]
        r = paired_ratio(ipc, hand)
        v = ERROR if r.n < 2 else verdict(r, tolerance)
        out["comparisons"][metric] = {"ratio": r.ratio, "ci_low": r.low, "ci_high": r.high, "n": r.n,
                                      "verdict": v, "ci_inside_band": ci_inside(r, tolerance),
                                      "hand": _geomean(hand), "ipcbench": _geomean(ipc)}
    out["verdict"] = pair_verdict([c["verdict"] for c in out["comparisons"].values()])
    return out


def needs_more(reps: Sequence[dict], p50: bool, tolerance: float) -> bool:
    """Whether a pair gets another rep past the minimum: while its verdict is INCONCLUSIVE (not once it is
    PASS or FAIL, nor where reps failed: ERROR). Stopping once a verdict appears favours verdicts that
    came early by chance (optional stopping); the minimum reps, the same for every pair, are the guard,
    and the number of reps a pair got is printed beside its ratio."""
    done = [r for r in reps if "hand" in r and "ipcbench" in r]
    return compare_reps(done, p50, tolerance)["verdict"] == INCONCLUSIVE


def _geomean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def counts(pairs: Sequence[dict]) -> dict:
    """Verdict counts over comparisons and over pairs, and how many PASSes have their whole CI in the band."""
    comps = [c for p in pairs for c in p["comparisons"].values()]
    return {"comparisons": {v: sum(1 for c in comps if c["verdict"] == v) for v in VERDICTS},
            "pairs": {v: sum(1 for p in pairs if p["verdict"] == v) for v in VERDICTS},
            "pass_ci_inside_band": sum(1 for c in comps if c["verdict"] == PASS and c["ci_inside_band"])}


def exit_status(summary: dict) -> int:
    c = summary["comparisons"]
    return 1 if c[FAIL] or c[ERROR] or summary["pairs"][ERROR] else 0


# -- the command ----------------------------------------------------------------------------------------
@dataclass
class Settings:
    size: int
    reps: int
    tolerance: float
    placement: str
    start_method: str
    preset: str
    workers: int | None
    hand_seconds: float
    timeout_s: float
    allocator: str = "cold"
    fresh_rounds: bool = False
    max_reps: int | None = None        # more reps for INCONCLUSIVE pairs, up to this many (None: reps)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _settings(args) -> Settings:
    import multiprocessing as mp

    from ..measure.user_loops import HAND_TARGET_S
    from ..plan.presets import check_placements, check_start_methods, get_preset
    from ..units import parse_size

    size = parse_size(str(args.size))
    if size < 1:
        raise UserError(f"--size must be at least 1 byte, got {size}")
    if args.reps < 2:
        raise UserError(f"--reps must be 2 or more (a CI needs two paired reps), got {args.reps}")
    max_reps = 3 * args.reps if args.max_reps is None else args.max_reps
    if max_reps < args.reps:
        raise UserError(f"--max-reps must be at least --reps ({args.reps}), got {max_reps}")
    tol = args.tolerance
    if not 0 < tol < 10:                     # also refuses NaN and inf
        raise UserError(f"--tolerance must be a fraction above 0 (0.10 = 10 %), got {tol:g}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be 1 or more, got {args.workers}")
    hand_s = HAND_TARGET_S if args.hand_seconds is None else args.hand_seconds
    if not 0 < hand_s <= 60:
        raise UserError(f"--hand-seconds must be above 0 and at most 60, got {hand_s:g}")
    if not 0 < args.timeout < math.inf:
        raise UserError(f"--timeout must be positive, got {args.timeout:g}")
    placement = check_placements([args.placement])[0]
    method = check_start_methods([args.start_method])[0] if args.start_method else mp.get_start_method()
    get_preset(args.preset)
    return Settings(size, args.reps, tol, placement, method, args.preset, args.workers, hand_s, args.timeout,
                    args.allocator, args.fresh_rounds, max_reps)


def select_pairs(mechanisms: list[str], patterns: list[str], s: Settings) -> tuple[list, list[str]]:
    """The (user loop, case) pairs to check, and notes on the user loops skipped (a mechanism that is not
    registered, or does not declare the pattern). A name asked for that ipcbench does not know, or that
    has no user loop, is a UserError."""
    from ..measure import mechanisms as registry
    from ..measure.user_loops import LOOPS, Pair
    from ..plan.cases import MULTI_WORKER_PATTERNS, PATTERNS, Case

    for name in mechanisms:
        registry.get(name)                              # UserError for an unknown mechanism
        if not any(m == name for m, _ in LOOPS):
            covered = sorted({m for m, _ in LOOPS})
            raise UserError(f"mechanism {name!r} has no user loop to check against; selfcheck covers: "
                            f"{', '.join(covered)}")
    for pat in patterns:
        if pat not in PATTERNS:
            raise UserError(f"unknown pattern {pat!r}; known: {', '.join(PATTERNS)}")
    known = {m.name: m for m in registry.all_mechanisms()}
    pairs, notes = [], []
    for (mech, pattern), loop in LOOPS.items():
        if (mechanisms and mech not in mechanisms) or (patterns and pattern not in patterns):
            continue
        if mech not in known:
            notes.append(f"{mech} {pattern}: skipped, no mechanism {mech!r} is registered")
            continue
        if not known[mech].supports(pattern):
            notes.append(f"{mech} {pattern}: skipped, {mech} does not declare the {pattern} pattern")
            continue
        if pattern in MULTI_WORKER_PATTERNS:
            workers = s.workers if s.workers is not None else DEFAULT_WORKERS.get(pattern, 1)
        else:
            workers = 1
        size = 0 if pattern == "contention" else s.size
        case = Case(mech, pattern, "bytes", size, workers, s.start_method, s.placement)
        pairs.append(Pair(loop, case))
    if not pairs:
        raise UserError("nothing to check: no user loop matches "
                        + (f"-m {','.join(mechanisms)} " if mechanisms else "")
                        + (f"-p {','.join(patterns)}" if patterns else "").strip())
    return pairs, notes


def _check_memory(pairs) -> None:
    import psutil

    from ..plan import memory
    from ..units import format_size

    worst = memory.largest([p.case for p in pairs])
    total = psutil.virtual_memory().total
    if worst is not None and worst[1] > total * memory.SHARE:
        raise UserError(f"case {worst[0].id} may need up to {format_size(worst[1])} of memory, more than "
                        f"{memory.SHARE:.0%} of this machine's {format_size(total)}; choose a smaller --size")


def _check_json_path(path: str | None) -> None:
    from pathlib import Path

    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{p} is a folder; give --json a file name, e.g. {p / 'selfcheck.json'}")
    if not p.parent.is_dir():
        raise UserError(f"cannot write {p}: no folder {p.parent}")


def main(args) -> int:
    from ..measure.runner import sigterm_raises
    from ..measure.user_loops import run_pairs
    from ..plan.presets import get_preset
    from ..units import split_list

    s = _settings(args)
    pairs, notes = select_pairs(split_list(args.mechanisms), split_list(args.patterns), s)
    _check_memory(pairs)
    _check_json_path(args.json)
    for note in notes:
        print(f"ipcbench: note: {note}", file=sys.stderr)
    spec = get_preset(s.preset).spec
    progress = Progress(pairs, s.reps, quiet=args.quiet, max_reps=s.max_reps)
    started = time.time()

    def more(i: int, rep: int) -> bool:
        reps = [progress.reps[i][k] for k in sorted(progress.reps[i])]
        if not needs_more(reps, pairs[i].loop.p50, s.tolerance):
            progress.settled(i)
            return False
        return True

    try:
        with sigterm_raises():
            progress.start()
            try:
                run_pairs(pairs, s.reps, spec, target_s=s.hand_seconds, round_timeout_s=s.timeout_s,
                          hand_timeout_s=s.timeout_s, fresh_rounds=s.fresh_rounds, on_step=progress.step,
                          allocator=s.allocator, max_reps=s.max_reps, more=more)
            finally:
                progress.stop()
    except KeyboardInterrupt:
        if args.json:
            _write(args.json, _document(pairs, progress.reps, s, notes, started, "interrupted"))
            print(f"ipcbench: the reps measured so far are in {args.json}", file=sys.stderr)
        raise
    doc = _document(pairs, progress.reps, s, notes, started, "complete")
    print_report(doc)
    if args.json:
        _write(args.json, doc)
        print(f"wrote {args.json}", file=sys.stderr)
    return doc["summary"]["exit_status"]


def _document(pairs, reps_of: list[dict], s: Settings, notes: list[str], started: float, status: str) -> dict:
    from datetime import datetime, timezone

    from .._version import __version__
    from ..measure.environment import machine_metadata, python_metadata

    out_pairs = []
    for i, pair in enumerate(pairs):
        reps = [reps_of[i][k] for k in sorted(reps_of[i])]
        done = [r for r in reps if "hand" in r and "ipcbench" in r]
        cmp = compare_reps(done, pair.loop.p50, s.tolerance)
        out_pairs.append({"mechanism": pair.case.mechanism, "pattern": pair.case.pattern,
                          "case": pair.case.to_dict(), "case_id": pair.case.id, "user_loop": pair.loop.what,
                          "p50_compared": pair.loop.p50, "reps": reps, **cmp})
    summary = counts(out_pairs)
    summary["exit_status"] = exit_status(summary)
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "status": status,
            "created": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
            "duration_s": round(time.time() - started, 1), "ipcbench_version": __version__,
            "settings": {**s.to_dict(), "band": list(band(s.tolerance)), "confidence": CONFIDENCE,
                         "preset_spec": _spec_dict(s.preset)},
            "machine": machine_metadata(with_checks=False), "python": python_metadata(),
            "skipped": notes, "pairs": out_pairs, "summary": summary}


def _spec_dict(preset: str) -> dict:
    from ..plan.presets import get_preset

    return get_preset(preset).spec.to_dict()


def _write(path: str, doc: dict) -> None:
    from ..results.io import write_json_atomic

    try:
        write_json_atomic(path, _finite(doc))
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def _finite(obj):
    """NaN and infinities as None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


# -- output ---------------------------------------------------------------------------------------------
def _fmt(metric: str, v: float | None) -> str:
    from ..units import format_count_rate, format_seconds

    if v is None:
        return "n/a"
    # rounded to 3 significant digits first: format_count_rate(999999.9) would say "1e+03k"
    v = float(f"{v:.3g}")
    return f"{format_count_rate(v)}/s" if metric == "throughput" else format_seconds(v)


def _num(x: float) -> str:
    """A ratio in a narrow cell: 0.93, 12.5; beyond 0.01-99 only its side."""
    if x < 0.01:
        return "<0.01"
    if x >= 99.5:
        return ">99"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def _ci(c: dict) -> str:
    return "n/a" if c["ci_low"] is None else f"{_num(c['ci_low'])}-{_num(c['ci_high'])}"


def report_lines(doc: dict) -> list[str]:
    """The table and what it means, as printed."""
    s = doc["settings"]
    lo, hi = s["band"]
    from ..units import format_size

    lines = [f"ipcbench selfcheck: {format_size(s['size'])} payloads, {s['start_method']}, placement "
             f"{s['placement']} (both sides), allocator {s.get('allocator', 'fresh')}, the {s['preset']} preset's rounds, "
             f"{_reps_text(s)}, tolerance "
             f"{s['tolerance'] * 100:g} % (band {lo:.3f}-{hi:.3f})",
             f"hand loop: a fresh interpreter, warm-up, one clock read around N ops "
             f"(~{s['hand_seconds']:g} s); p50: a second pass of N ops, each timed with perf_counter_ns",
             "ratio = ipcbench / hand (geometric mean of the paired reps, 95 % t-interval from their log ratios); "
             "throughput < 1 or p50 > 1: ipcbench reports worse than the user's loop gets", ""]
    head = f"{'mechanism':<26}{'pattern':<11}{'w':>2}  {'metric':<7}{'hand':>11}{'ipcbench':>11}{'ratio':>7}  " \
           f"{'95% CI':<11}{'reps':>5}  verdict"
    lines += [head, "-" * len(head)]
    for p in doc["pairs"]:
        first = True
        for metric in METRICS:
            c = p["comparisons"].get(metric)
            if c is None:
                continue
            name = f"{p['mechanism']:<26}{p['pattern']:<11}{p['case']['workers']:>2}" if first else " " * 39
            ratio = "n/a" if c["ratio"] is None else _num(c["ratio"])
            mark = " (CI in band)" if c["verdict"] == PASS and c["ci_inside_band"] else ""
            lines.append(f"{name}  {metric:<7}{_fmt(metric, c['hand']):>11}{_fmt(metric, c['ipcbench']):>11}"
                         f"{ratio:>7}  {_ci(c):<11}{c['n']:>5}  {c['verdict']}{mark}")
            first = False
        for err in dict.fromkeys(p["errors"]):
            lines.append(f"{'':39}  ! {err}")
    summ = doc["summary"]
    c = summ["comparisons"]
    total = sum(c.values())
    lines += ["", f"{total} comparisons over {len(doc['pairs'])} pairs: {c[PASS]} PASS, {c[FAIL]} FAIL, "
              f"{c[INCONCLUSIVE]} INCONCLUSIVE" + (f", {c[ERROR]} ERROR" if c[ERROR] else "")]
    if c[PASS]:
        lines.append(f"  PASS: the estimate is within the band; {summ['pass_ci_inside_band']} of the {c[PASS]} also "
                     f"have their whole CI inside it (a match confirmed; the others are not contradicted)")
    if c[FAIL]:
        lines.append("  FAIL: the whole CI is outside the band: here ipcbench does not report what this user loop "
                     "gets (see docs/selfcheck.md for the known causes)")
    if c[INCONCLUSIVE]:
        lines.append("  INCONCLUSIVE: the estimate is outside the band but the CI reaches into it: this machine's "
                     f"noise is too large to tell in {s.get('max_reps') or s['reps']} reps; run again on a quieter "
                     "machine, or with more --max-reps")
    if c[ERROR]:
        lines.append("  ERROR: fewer than 2 reps of the pair could be measured (reasons above)")
    return lines


def _reps_text(s: dict) -> str:
    top = s.get("max_reps") or s["reps"]
    if top <= s["reps"]:
        return f"{s['reps']} paired reps"
    return f"{s['reps']} paired reps (up to {top} while INCONCLUSIVE)"


def print_report(doc: dict) -> None:
    for line in report_lines(doc):
        print(line)


# -- progress -------------------------------------------------------------------------------------------
class Progress:
    """Progress with an ETA on stderr (a rich bar on a terminal, else a line per pair and rep), and the
    reps' figures as they come (``reps[pair][rep][side]``), kept for a file written after Ctrl-C.

    Past the minimum reps a pair goes on while INCONCLUSIVE: ``total`` counts the steps planned so far
    (every pair's minimum, the extra reps of the pairs that got them), ``at_most`` the steps if every
    pair not yet ``settled`` ran to ``max_reps``; the ETA is for the planned steps."""

    def __init__(self, pairs, reps: int, quiet: bool = False, stream=None, max_reps: int | None = None):
        self.pairs, self.n_reps, self.quiet = pairs, reps, quiet
        self.max_reps = max(reps, max_reps or reps)
        self.stream = stream or sys.stderr
        self.reps: list[dict] = [{} for _ in pairs]
        self.final: dict[int, int] = {}          # pair -> the reps it ended with (no more to come)
        self.done = 0
        self.durations: dict[tuple[int, str], list[float]] = {}
        self.bar = None

    def start(self) -> None:
        self.t0 = time.monotonic()
        if self.quiet:
            return
        if self.stream is sys.stderr and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(TextColumn("{task.description:<48}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                           TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"), console=Console(stderr=True),
                           auto_refresh=False)         # drawn at each step, never on a timer (RichProgress)
            self.task = self.bar.add_task("starting", total=self.total, eta="?")
            self.bar.start()
            self.bar.refresh()
        else:
            more = f", up to {self.max_reps} while INCONCLUSIVE" if self.max_reps > self.n_reps else ""
            print(f"ipcbench selfcheck: {len(self.pairs)} pairs x {self.n_reps} reps{more} (a hand loop and an "
                  f"ipcbench round each)", file=self.stream, flush=True)

    def planned(self, i: int) -> int:
        """Reps pair ``i`` will have got: its final count once settled, else its minimum or what it has."""
        return self.final.get(i, max(self.n_reps, len(self.reps[i])))

    @property
    def total(self) -> int:
        return sum(2 * self.planned(i) for i in range(len(self.pairs)))

    @property
    def at_most(self) -> int:
        return sum(2 * self.final.get(i, self.max_reps) for i in range(len(self.pairs)))

    def settled(self, i: int) -> None:
        """Pair ``i`` gets no more reps."""
        self.final[i] = len(self.reps[i])

    def eta(self) -> float:
        """Seconds left: each step still to run at the mean duration of that (pair, side) so far, or of all
        steps so far where it has not run yet."""
        every = [d for ds in self.durations.values() for d in ds]
        if not every:
            return math.nan
        overall = sum(every) / len(every)
        left = 0.0
        for i in range(len(self.pairs)):
            for side in ("hand", "ipcbench"):
                ds = self.durations.get((i, side), [])
                remaining = max(0, self.planned(i) - len(ds))
                left += remaining * (sum(ds) / len(ds) if ds else overall)
        return left

    def step(self, i: int, rep: int, side: str, got: dict) -> None:
        self.reps[i].setdefault(rep, {"rep": rep})[side] = got
        rec = self.reps[i][rep]
        rec.setdefault("first", side)
        self.durations.setdefault((i, side), []).append(got.get("wall_s", 0.0))
        self.done += 1
        if self.quiet:
            return
        eta = _clock(self.eta())
        label = f"{self.pairs[i].label} rep {rep + 1}/{self.n_reps}" if rep < self.n_reps else \
            f"{self.pairs[i].label} rep {rep + 1} (<= {self.max_reps})"
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, total=self.total, description=f"{label} {side}",
                            eta=eta, refresh=True)
            return
        if "hand" in rec and "ipcbench" in rec:
            h, o = rec["hand"], rec["ipcbench"]
            if h.get("ok") and o.get("ok"):
                text = (f"hand {_fmt('throughput', h.get('rate'))}, ipcbench {_fmt('throughput', o.get('rate'))} "
                        f"(ratio {o['rate'] / h['rate']:.2f})")
            else:
                text = "failed: " + "; ".join(x["error"] for x in (h, o) if not x.get("ok"))
            total = self.total
            more = f", at most {self.at_most}" if self.at_most > total else ""
            width = len(str(total))
            print(f"[{self.done:>{width}}/{total}{more}] {label:<40} {text}  ETA {eta}", file=self.stream,
                  flush=True)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(max(0, seconds))
    m, s = divmod(seconds, 60)
    return f"{m}m{s:02d}s"


__all__ = ["Ratio", "band", "ci_inside", "compare_reps", "counts", "exit_status", "needs_more", "pair_verdict",
           "paired_ratio", "register", "report_lines", "select_pairs", "verdict"]
