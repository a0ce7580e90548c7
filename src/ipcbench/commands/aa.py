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
                       "significant (should be at most 5 %%) and how often A's round-level 95 %% CI holds B's "
                       "estimate (should be at least 80 %%). Exit status 0 when both hold, 1 when not.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="result file (or one machine's folder) of the first run")
    p.add_argument("b", help="result file (or folder) of the second run of the same cases")
    p.add_argument("--show", type=int, default=10, help="list this many significant/uncovered cases (default 10)")
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
    for title, df, cols in (("significant in an A/A comparison", res.significant_rows, ["metric", "ratio", "q_value"]),
                            ("A's CI misses B's estimate", res.uncovered, ["metric", "ci_low", "ci_high", "value"])):
        if len(df) and args.show:
            print(f"{title} ({len(df)}):")
            for r in df.head(args.show).to_dict("records"):
                print(f"  {case_label(r, ['start_method', 'placement'])}: " + ", ".join(
                    f"{c} {r[c]:.4g}" if isinstance(r[c], float) else f"{c} {r[c]}" for c in cols))
    return 0 if res.passed else 1
