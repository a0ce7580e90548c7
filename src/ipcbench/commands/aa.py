"""``ipcbench aa``: the A/A check, two runs of the same cases on one machine held against each other."""

from __future__ import annotations

import argparse

ORDER = 27

EXAMPLES = """examples (an idle machine; nothing else running):
  ipcbench run --preset quick -o a.json && ipcbench run --preset quick -o b.json
  ipcbench aa a.json b.json            # exit status 0: the runs agree, 1: they don't (see docs/measurement.md)
"""


def register(sub) -> None:
    p = sub.add_parser("aa", help="A/A check: do two runs of the same cases on one machine agree?",
                       description="Hold run B against run A: the share of rows that `ipcbench compare` calls "
                       "significant (should be at most 5 %) and how often A's round-level 95 % CI holds B's "
                       "estimate (should be at least 80 %). Exit status 0 when both hold, 1 when not.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="result file (or one machine's folder) of the first run")
    p.add_argument("b", help="result file (or folder) of the second run of the same cases")
    p.add_argument("--show", type=int, default=10, help="list this many significant/uncovered cases (default 10)")
    p.add_argument("--save", action="store_true", help="keep the between-run sd this pair measured in this "
                   "machine's file: later runs record it, and their CIs and comparisons include it (both runs "
                   "must be of this machine)")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..analysis.aa import aa_check
    from ..analysis.compare import Side, case_label
    from ..errors import UserError
    from ..results.frame import read_set, result_files

    sides = []
    for path in (args.a, args.b):
        files = result_files([path])
        if not files:
            raise UserError(f"{path}: no result files found (looked for *.json)")
        sides.append(Side(path, [read_set(f) for f in files]))
    if args.show < 0:
        raise UserError(f"--show must be 0 or more, got {args.show}")
    res = aa_check(*sides)
    for line in res.lines():
        print(line)
    print(_between_note(sides[0]))
    if args.save:
        print(_save(sides, res))
    for title, df, cols in (("significant in an A/A comparison", res.significant_rows, ["metric", "ratio", "q_value"]),
                            ("A's CI misses B's estimate", res.uncovered, ["metric", "ci_low", "ci_high", "value"])):
        if len(df) and args.show:
            print(f"{title} ({len(df)}):")
            for r in df.head(args.show).to_dict("records"):
                print(f"  {case_label(r, ['start_method', 'placement'])}: " + ", ".join(
                    f"{c} {r[c]:.4g}" if isinstance(r[c], float) else f"{c} {r[c]}" for c in cols))
    return 0 if res.passed else 1


def _between_note(side) -> str:
    from ..results.schema import between_run_of

    bw = [between_run_of(rs) for rs in side.sets]
    if not any(bw):
        return (f"{side.label} recorded no between-run sd: its CIs show its rounds only (`ipcbench aa A B --save` "
                f"keeps this pair's for the runs that follow)")
    b = bw[0]
    parts = ", ".join(f"{m} {b[m]:.1%}" for m in ("latency_p50", "throughput_msgs") if m in b)
    return f"{side.label}'s CIs and the test include its machine's between-run sd ({parts})"


def _save(sides, res) -> str:
    """Store ``res.run_sd`` in this machine's file (``machine_file``), if both sides are this machine's."""
    from .._version import __version__
    from ..errors import UserError
    from ..measure import machine_file
    from ..results.schema import machine_id_of

    me = machine_file.load()
    ids = {str(machine_id_of(rs)) for side in sides for rs in side.sets}
    if ids != {me["machine_id"]}:
        raise UserError(f"--save keeps the estimate for this machine ({me['machine_id']}), but the runs are of "
                        f"{', '.join(sorted(ids))}; run both here")
    if not me.get("saved"):
        raise UserError(f"--save: this machine has no writable machine file ({me['path']})")
    if not res.run_sd:
        raise UserError("--save: the runs share no case with two rounds or more on both sides; nothing to keep")
    data = {k: v for k, v in me.items() if k not in ("path", "saved")}
    old = data.get("between_run") if isinstance(data.get("between_run"), dict) else {}
    pairs = [p for p in old.get("pairs") or () if isinstance(p, dict)]
    runs = [run_identity(rs) for side in sides for rs in side.sets]
    for p in pairs:
        if p.get("runs") == runs:
            raise UserError(f"--save: this pair of runs is kept already (saved {p.get('measured_at')}); a pair "
                            "counts once in the machine's estimate")
    pairs.append({**{m: round(float(v), 6) for m, v in res.run_sd.items()}, "measured_at": machine_file.now(),
                  "files": [str(s.label) for s in sides], "runs": runs,
                  "cases": int(res.per_metric["coverable"].max()), "ipcbench_version": __version__})
    pairs = pairs[-KEEP_PAIRS:]
    data["between_run"] = {**pooled_between(pairs), "pairs": pairs}
    path = machine_file.save(data)
    pooled = data["between_run"]
    return (f"kept in {path}: this pair's between-run sd " + ", ".join(f"{m} {v:.1%}" for m, v in res.run_sd.items())
            + f"; pooled over the {len(pairs)} pair(s) kept: "
            + ", ".join(f"{m} {pooled[m]:.1%}" for m in res.run_sd if m in pooled)
            + "; runs from now on record it, and their CIs and comparisons include it")


KEEP_PAIRS = 10     # the machine file keeps the last this many pairs' estimates


def run_identity(rs: dict) -> str:
    """What tells one run from another, whatever its file is called or wherever it was read from: a digest
    of its start and its cases (every round's values)."""
    import hashlib
    import json

    run = rs.get("run") if isinstance(rs.get("run"), dict) else {}
    text = json.dumps([run.get("started"), rs.get("cases")], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pooled_between(pairs: list[dict]) -> dict[str, float]:
    """The machine's between-run sd per metric: the root mean square of the kept pairs' estimates (their
    variances averaged). One pair measures one hour's state; the machine's runs happen in all of them."""
    import math

    out = {}
    for m in ("latency_p50", "throughput_msgs"):
        v = [p[m] for p in pairs if isinstance(p.get(m), int | float) and math.isfinite(p[m]) and p[m] >= 0]
        if v:
            out[m] = round(math.sqrt(sum(x * x for x in v) / len(v)), 6)
    return out
