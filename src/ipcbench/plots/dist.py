"""Latency distributions of single messages at small payloads, from the raw samples frame.

An ECDF per mechanism on a logit y axis: the middle of the distribution and both tails are stretched, so a
bimodal case shows as two steep steps with a shelf between them, and a long tail as a line that keeps
going right near the top. Each line is drawn from at most ``MAX_POINTS`` order statistics (evenly spaced
in rank, always with the minimum and the maximum), which keeps the inline SVG small.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ..analysis.setups import setups
from ..units import format_percent, format_size
from .base import (
    REFERENCE_NOTE,
    NoData,
    is_reference,
    mechanism_color,
    mechanism_legend,
    mechanism_sort_key,
    new_figure,
    plot_reference,
    seconds_axis,
    split_references,
    suptitle,
)

DIST_PATTERNS = ("roundtrip", "rpc", "dispatch")
MAX_POINTS = 600
PERCENT_TICKS = [0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999]
SMALL_PAYLOAD = 1024


def ecdf(values, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and their plotting positions (rank - 0.5) / n, thinned to at most ``max_points``."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = v.size
    if n == 0:
        return v, v
    idx = np.arange(n)
    if n > max_points:
        idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return v[idx], (idx + 0.5) / n


def _percent_logit_axis(ax) -> None:
    ax.set_yscale("logit")
    ax.yaxis.set_major_locator(FixedLocator(PERCENT_TICKS))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_percent(v, 3)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylabel("messages at or below x (%, logit scale)")


def latency_distributions(samples: pd.DataFrame, max_bytes: int = SMALL_PAYLOAD) -> Figure:
    """ECDFs of single-message latency per mechanism, for the smallest payload (<= ``max_bytes``) of each
    pattern in ``DIST_PATTERNS`` at its smallest worker count; a column per pattern, a row per setup."""
    if samples.empty:
        raise NoData("no raw samples")
    df = samples[samples["pattern"].isin(list(DIST_PATTERNS)) & (samples["payload_bytes"] <= max_bytes)
                 & (samples["value"] > 0)]
    panels = setups(df)
    patterns = [p for p in DIST_PATTERNS if p in {str(x) for x in df["pattern"].unique()}]
    if not panels or not patterns:
        raise NoData(f"no raw samples of {', '.join(DIST_PATTERNS)} cases at payloads up to {format_size(max_bytes)}")
    fig, axes = new_figure(len(panels), len(patterns), panel=(3.2, 2.6))
    names: set[str] = set()
    for row, (label, part) in zip(axes, panels, strict=True):
        for ax, pattern in zip(row, patterns, strict=True):
            pp = part[part["pattern"] == pattern]
            if pp.empty:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")
                ax.set_title(f"{pattern}\n{label}", fontsize="small")
                continue
            size = int(pp["payload_bytes"].min())
            workers = int(pp["workers"].min())
            pp = pp[(pp["payload_bytes"] == size) & (pp["workers"] == workers)]
            for mech in sorted({str(m) for m in pp["mechanism"].unique()}, key=mechanism_sort_key):
                x, y = ecdf(pp.loc[pp["mechanism"] == mech, "value"].to_numpy())
                names.add(mech)
                if is_reference(mech):
                    plot_reference(ax, x, y, mech)
                    continue
                ax.plot(x, y, color=mechanism_color(mech), lw=1.2, label=mech)
            _percent_logit_axis(ax)
            seconds_axis(ax, "latency of one message", axis="x")
            ax.set_title(f"{pattern}, {format_size(size)}, {workers} worker{'s' if workers > 1 else ''}\n{label}",
                         fontsize="small")
            ax.grid(True, which="major", alpha=0.3)
    mechs, refs = split_references(names)
    suptitle(fig, "Latency distribution of single messages at small payloads (ECDF; steps = modes, right end = tail)"
             + (f"\n{REFERENCE_NOTE}" if refs else ""))
    mechanism_legend(fig, mechs, references=refs)
    return fig
