"""``ipcbench export``: a result file (or folder) to tidy CSV (and other formats as they are added)."""

from __future__ import annotations

import sys

ORDER = 30
FORMATS = ("csv",)


def register(sub) -> None:
    p = sub.add_parser("export", help="convert results to tidy CSV",
                       description="Export result files to other formats. Example: "
                       "ipcbench export r.json --format csv -o r.csv")
    p.add_argument("results", nargs="+", help="result files or folders (ipcbench or pytest-benchmark JSON)")
    p.add_argument("--format", default="csv", help=f"{' | '.join(FORMATS)} (default csv)")
    p.add_argument("-o", "--output", default="-", help="output file, - for stdout (default)")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import UserError
    from ..formats.csv import write_csv
    from ..frame import load_sets

    if args.format not in FORMATS:
        raise UserError(f"unknown export format {args.format!r}; choose from {', '.join(FORMATS)}")
    loaded = load_sets(args.results)
    if args.output == "-":
        write_csv(loaded.tidy, sys.stdout)
    else:
        try:
            write_csv(loaded.tidy, args.output)
        except OSError as exc:
            raise UserError(f"cannot write {args.output}: {exc.strerror}") from None
    return 0
