"""``ipcbench compare``: result sets against a base -> ratios, confidence intervals and significance."""

from __future__ import annotations

import argparse
import os
import sys

ORDER = 25
FORMATS = ("table", "md", "csv", "html")

EXAMPLES = """examples:
  ipcbench compare fork.json spawn.json                  # terminal table: p50, p99, msgs/s
  ipcbench compare results/laptop/ results/server/ --format md -o comparison.md
  ipcbench compare a.json b.json --format csv -o cmp.csv     # every metric, one row per case x metric
  ipcbench compare a.json b.json c.json --metrics latency_p50,cpu_per_msg --significant

Each argument is one side: a result file, or a folder of one machine's result files (their samples are
pooled). Cases are matched on mechanism, pattern, payload kind and size, workers, start method and
Python version, but never on machine; start method or Python version is left out of the match when each
side has exactly one and they differ (so a fork run compares with a spawn run). Cases on one side only,
and failed cases, are listed, not compared. A difference is significant when a two-sided Mann-Whitney U
test says p < 0.05, the ratio is at least 5 % away from 1, and its 95 % CI excludes 1.
"""


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare result sets: ratios and significance",
                       description="Compare one or more result sets (OTHER) against a base (BASE).",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", metavar="BASE", help="result file or folder (one machine) to compare against")
    p.add_argument("others", metavar="OTHER", nargs="+", help="result files or folders to compare with BASE")
    p.add_argument("--format", default="table", help=f"{' | '.join(FORMATS)} (default table)")
    p.add_argument("--metrics", help="comma list of metrics, or 'all' (default: latency_p50,latency_p99,"
                   "throughput_msgs; csv: all)")
    p.add_argument("--significant", action="store_true", help="show only significant differences "
                   "(table, md, html)")
    p.add_argument("-o", "--output", default="-", help="output file, - for stdout (default)")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..analysis.compare import DEFAULT_METRICS, METRICS, Side, check_metrics, compare
    from ..errors import UserError
    from ..results.frame import read_set, result_files
    from ..units import split_list

    if args.format not in FORMATS:
        raise UserError(f"unknown compare format {args.format!r}; choose from {', '.join(FORMATS)}")
    if args.metrics in (None, ""):
        metrics = METRICS if args.format == "csv" else DEFAULT_METRICS
    elif args.metrics.strip() == "all":
        metrics = METRICS
    else:
        metrics = check_metrics(split_list(args.metrics))

    def side(path: str) -> Side:
        files = result_files([path])
        if not files:
            raise UserError(f"{path}: no result files found (looked for *.json)")
        return Side(path, [read_set(f) for f in files])

    base = side(args.base)
    comp = compare(base, [side(p) for p in args.others], metrics)
    if not any(comp.matched.values()):
        raise UserError(f"no case in common between {args.base} and {', '.join(args.others)}; "
                        + " ".join(comp.summary()[:2]))
    text = _render(comp, args, metrics)
    if args.format == "csv":                         # keep the CSV clean; say what was left out on stderr
        for line in comp.summary():
            print(line, file=sys.stderr)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise UserError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _render(comp, args, metrics) -> str:
    from ..reporting.compare_table import to_csv, to_html, to_markdown, to_table

    if args.format == "csv":
        return to_csv(comp)
    if args.format == "md":
        return to_markdown(comp, metrics, args.significant)
    if args.format == "html":
        return to_html(comp, metrics, args.significant)
    color = args.output == "-" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return to_table(comp, metrics, args.significant, color=color)
