"""``ipcbench export``: a result file (or folder) to tidy CSV, or one result set to pyperf JSON."""

from __future__ import annotations

import sys

ORDER = 30
FORMATS = ("csv", "pyperf")


def register(sub) -> None:
    p = sub.add_parser("export", help="convert results to tidy CSV or pyperf JSON",
                       description="Export result files to other formats. Examples: "
                       "ipcbench export r.json --format csv -o r.csv; "
                       "ipcbench export r.json --format pyperf -o p.json && python -m pyperf stats p.json")
    p.add_argument("results", nargs="+", help="result files or folders (ipcbench or pytest-benchmark JSON)")
    p.add_argument("--format", default="csv", help=f"{' | '.join(FORMATS)} (default csv)")
    p.add_argument("-o", "--output", default="-", help="output file, - for stdout (default)")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import UserError
    from ..results.formats.csv import write_csv
    from ..results.frame import load_sets

    if args.format not in FORMATS:
        raise UserError(f"unknown export format {args.format!r}; choose from {', '.join(FORMATS)}")
    loaded = load_sets(args.results)
    if args.format == "pyperf":
        return _pyperf(loaded.sets, args.output)
    if args.output == "-":
        write_csv(loaded.tidy, sys.stdout)
    else:
        try:
            write_csv(loaded.tidy, args.output)
        except OSError as exc:
            raise UserError(f"cannot write {args.output}: {exc.strerror}") from None
    return 0


def _pyperf(sets, output: str) -> int:
    from ..errors import UserError
    from ..results.formats.pyperf import write_pyperf

    try:
        left_out = write_pyperf(sets, sys.stdout if output == "-" else output)
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror}") from None
    for name, why in left_out:
        print(f"ipcbench: pyperf export left out {name}: {why}", file=sys.stderr)
    return 0
