"""``ipcbench report``: result files and folders -> one self-contained HTML page (DIR/index.html)."""

from __future__ import annotations

import argparse
import sys
import time

ORDER = 20

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
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=main)


def main(args) -> int:
    from pathlib import Path

    from ..errors import UserError
    from ..report import report

    t0 = time.perf_counter()
    if args.results == ["results/"] and not Path("results").exists():
        raise UserError("results/: no such folder; run `ipcbench run` first, or name result files "
                        "(ipcbench report r.json -o reports/)")
    path = report(args.results, args.output)
    if not args.quiet:
        size = path.stat().st_size
        print(f"wrote {path} ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
