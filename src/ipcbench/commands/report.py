"""``ipcbench report``: result files and folders -> one self-contained HTML page (DIR/index.html)."""

from __future__ import annotations

import argparse
import sys
import time

ORDER = 20
MAX_SETUPS = 4      # the default of ipcbench.reporting.page.MAX_SETUPS (kept here so --help needs no pandas)

EXAMPLES = """examples:
  ipcbench report                          # every result set under results/ -> reports/index.html
  ipcbench report r.json -o site/          # one result file -> site/index.html
  ipcbench report results/laptop results/server -o reports/
"""


def register(sub) -> None:
    p = sub.add_parser("report", help="build a static HTML report from result files",
                       description="Build one self-contained HTML page (figures as inline SVG, no network "
                       "access needed) from result files and folders. Open DIR/index.html in a browser or "
                       "publish DIR on any static host.", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="*", default=["results/"],
                   help="result files or folders, searched recursively for *.json (default: results/)")
    p.add_argument("-o", "--output", default="reports/", help="output folder (default: reports/)")
    p.add_argument("--max-setups", type=int, default=None, metavar="N",
                   help="figures draw at most N setups (machine x Python x start method), the first in sorted "
                   f"order; tables and findings cover all (default {MAX_SETUPS}, 0 = all)")
    p.add_argument("--per-file", action="store_true",
                   help="show each result file on its own instead of pooling the rounds of repeated runs of "
                   "one machine and Python version (the default: more rounds, one answer)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=main)


def main(args) -> int:
    from pathlib import Path

    from ..errors import UserError
    from ..reporting.page import report

    t0 = time.perf_counter()
    if args.results == ["results/"] and not Path("results").exists():
        raise UserError("results/: no such folder; run `ipcbench run` first, or name result files "
                        "(ipcbench report r.json -o reports/)")
    max_setups = MAX_SETUPS if args.max_setups is None else args.max_setups
    if max_setups < 0:
        raise UserError(f"--max-setups must be 0 (all) or more, got {max_setups}")
    path = report(args.results, args.output, max_setups=max_setups, pool=not args.per_file)
    if not args.quiet:
        size = path.stat().st_size
        print(f"wrote {path} ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
