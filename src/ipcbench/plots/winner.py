"""The winner map: for each payload size x (pattern, worker count), which mechanism is fastest, and by how
much it beats the runner-up. Mechanisms only compete within one pattern and one worker count."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from ..analysis import winners
from ..analysis.references import REFERENCES
from ..analysis.setups import setups
from ..analysis.winners import TIE
from ..plan.metrics import lower_is_better
from ..units import format_ratio, format_size
from .base import NoData, mechanism_color, suptitle

# kind -> the metric ranked, the patterns whose mechanisms compete on it, and how the figure names it
WINNER_KINDS = {
    "latency": {"metric": "latency_p50", "patterns": ("roundtrip", "rpc", "dispatch"), "what": "latency (p50)"},
    "throughput": {"metric": "throughput_msgs", "patterns": ("stream", "fanin", "rpc", "dispatch"),
                   "what": "throughput (msg/s)"},
}


def _what(kind: str) -> str:
    spec = WINNER_KINDS[kind]
    return f"{'lowest' if lower_is_better(spec['metric']) else 'highest'} {spec['what']}"


def winner_grid(df: pd.DataFrame, kind: str) -> tuple[list[tuple[str, int]], list[int], dict]:
    """For one setup: the rows (pattern, workers) where at least two mechanisms compete at some size, the
    payload sizes, and ``cells[(row, size)] = (winner, margin or None when it ran alone, clear)``
    (``analysis.winners.winner_grid`` for the metric and patterns of ``kind``)."""
    spec = WINNER_KINDS[kind]
    return winners.winner_grid(df, spec["metric"], spec["patterns"])


def _tint(color: str, amount: float = 0.45) -> tuple[float, float, float]:
    r, g, b = to_rgb(color)
    return (1 - amount + amount * r, 1 - amount + amount * g, 1 - amount + amount * b)


def winner_map(tidy: pd.DataFrame, kind: str = "latency") -> Figure:
    """A grid per setup: columns are payload sizes, rows are (pattern, workers); each cell names the
    fastest mechanism and its margin over the runner-up ("1.7x"; "≈" below a 5 % margin; "only" where
    one mechanism ran; "no clear winner" where the two leaders' round-level 95 % CIs overlap). The floors
    and the baseline (``analysis.references.REFERENCES``) are left out: they are references, not choices. ``kind`` is "latency" (p50, lower wins) or "throughput" (msg/s, higher wins)."""
    if kind not in WINNER_KINDS:
        raise ValueError(f"kind must be one of {', '.join(WINNER_KINDS)}, not {kind!r}")
    tidy = tidy[~tidy["mechanism"].isin(REFERENCES)]     # floors and baseline are references, not choices
    grids = [(label, *winner_grid(part, kind)) for label, part in setups(tidy)]
    grids = [g for g in grids if g[1]]
    if not grids:
        raise NoData(f"no payload size and worker count where two mechanisms compete on {_what(kind)}")
    ncols = max(len(g[2]) for g in grids)
    rows = [len(g[1]) for g in grids]
    cell_w, cell_h, left, right, top, bottom, gap = 0.85, 0.36, 1.6, 0.2, 0.85, 0.55, 0.8
    width = left + right + cell_w * ncols
    height = top + bottom + cell_h * sum(rows) + gap * (len(rows) - 1)
    fig = Figure(figsize=(max(width, 5.0), height))
    width = fig.get_figwidth()
    grid = fig.add_gridspec(len(rows), 1, height_ratios=rows, left=left / width, right=1 - right / width,
                            top=1 - top / height, bottom=bottom / height, hspace=gap / (cell_h * np.mean(rows)))
    axes = [fig.add_subplot(grid[i, 0]) for i in range(len(rows))]
    for ax, (label, rows, sizes, cells) in zip(axes, grids, strict=True):
        img = np.ones((len(rows), len(sizes), 3))
        for i, row in enumerate(rows):
            for j, size in enumerate(sizes):
                cell = cells.get((row, size))
                if cell is None:
                    continue
                mech, margin, clear = cell
                if not clear:                  # the runner-up's CI overlaps the winner's: no winner named
                    img[i, j] = (0.93, 0.93, 0.93)
                    ax.text(j, i, f"no clear\nwinner ({format_ratio(margin)})", ha="center", va="center",
                            fontsize=6, color="0.35")
                    continue
                img[i, j] = _tint(mechanism_color(mech), 0.45 if margin is not None else 0.12)
                if margin is None:
                    note = "only"
                elif margin < TIE:
                    note = f"≈ {format_ratio(margin)}"
                else:
                    note = format_ratio(margin)
                ax.text(j, i, f"{mech}\n{note}", ha="center", va="center", fontsize=6,
                        color="0.1" if margin is not None else "0.45")
        ax.imshow(img, aspect="auto", interpolation="nearest")
        ax.set_xticks(range(len(sizes)), [format_size(s) for s in sizes], fontsize="small")
        ax.set_yticks(range(len(rows)), [f"{p}, {w} worker{'s' if w > 1 else ''}" for p, w in rows],
                      fontsize="small")
        ax.hlines(np.arange(0.5, len(rows) - 1), -0.5, len(sizes) - 0.5, color="white", lw=1.5)
        ax.vlines(np.arange(0.5, len(sizes) - 1), -0.5, len(rows) - 0.5, color="white", lw=1.5)
        ax.set_xlabel("payload size", fontsize="small")
        ax.set_title(label, fontsize="small")
    suptitle(fig, f"Fastest mechanism: {_what(kind)}\n(factor = margin over the runner-up; grey: CIs overlap)")
    return fig
