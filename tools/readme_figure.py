"""Draw the README's figure (docs/img/report-roundtrip-latency.png) from result files.

    PYTHONPATH=src python tools/readme_figure.py results/vm-65387f/*-quick.json docs/img/report-roundtrip-latency.png

The files are pooled round by round (as the report does: ``load_sets(..., pool=True)``), and the figure is
the report's round-trip latency against payload size for queue, pipe_duplex, pipe_simplex and
manager_queue, with the round-level 95 % CIs shaded.
"""

from __future__ import annotations

import sys

MECHANISMS = ["queue", "pipe_duplex", "pipe_simplex", "manager_queue"]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: tools/readme_figure.py RESULT.json [RESULT.json ...] OUT.png", file=sys.stderr)
        return 2
    from ipcbench.plots import figures
    from ipcbench.results.frame import load_sets

    *paths, out = argv
    tidy = load_sets(paths, pool=True).tidy
    fig = figures.latency_vs_size(tidy[tidy.mechanism.isin(MECHANISMS)])
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
