"""Figures of a comparison: comparison frame (``compare.Comparison.frame``) in, matplotlib Figure out.

* ``ratio_plot``: other/base ratio of one metric against payload size, a line per mechanism, a panel per
  pattern (and a row per other result set); log axes, a line at 1, CI error bars, significant points filled.
* ``wins_map``: "where each machine wins": mechanism x payload size cells coloured by how many times faster
  the winning side is, for significant differences only (others are marked "≈").
* ``comparison_figures(comp)``: those figures for the metrics the report shows, with ids and alt texts
  (``report.compare`` puts them on the page with the table).

Figures never show or save; they are built on ``matplotlib.figure.Figure`` (no pyplot state).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from ..analysis.compare import DEFAULT_METRICS, Comparison
from ..analysis.compare_stats import CONFIDENCE
from ..plan.cases import case_name
from ..plan.metrics import higher_is_better
from ..units import format_factor, format_size
from .base import NoData, mechanism_color, mechanism_sort_key

LINESTYLES = ["-", "--", ":", "-."]
ZERO_X = 1          # where payload 0 (payloadless patterns: contention) is drawn on a log size axis
WIN_LIMIT = 4.0     # colour scale of wins_map saturates at 4x


def _pick(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    df = frame[(frame.metric == metric) & np.isfinite(frame.ratio.astype(float))]
    if df.empty:
        raise NoData(f"no compared values of {metric}")
    return df


def _size_axis(ax, sizes) -> None:
    sizes = sorted({int(s) for s in sizes})
    xs = [s or ZERO_X for s in sizes]
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(xs if len(xs) <= 10 else xs[::max(1, len(xs) // 8)]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: "0 B" if v == ZERO_X and 0 in sizes
                                               else format_size(int(round(v)))))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_xlabel("payload size (log scale)")
    if len(xs) == 1:
        ax.set_xlim(xs[0] / 2, xs[0] * 2)


def _ratio_axis(ax, lo: float, hi: float) -> None:
    ax.set_yscale("log", base=2)
    halves = [abs(math.log2(v)) if 0 < v < math.inf else 1 for v in (lo, hi)]
    # at most 2**+-1000: a ratio from absurd values in a file (1e308 s against 1e-300 s) still draws
    span = min(max(*halves, 0.25) * 1.15, 1000.0)
    ax.set_ylim(2 ** -span, 2 ** span)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.3g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.axhline(1.0, color="0.3", linewidth=1)


def _series_label(row: dict, extra: list[str]) -> str:
    """The mechanism, and of ``extra`` (the dimensions that vary in a panel) workers, start method, kind."""
    return case_name(row["mechanism"], workers=row["workers"] if "workers" in extra else None,
                     extra=[str(row[c]) for c in ("base_start_method", "payload_kind") if c in extra])


def ratio_plot(frame: pd.DataFrame, metric: str = "latency_p50", ncols: int = 3) -> Figure:
    """Other/base ratio of ``metric`` per mechanism against payload size; a panel per (other set, pattern).

    Error bars: the ratio's CI (where there is one). Filled markers: significant; hollow: not. Line style
    tells worker counts (or start methods) apart where a pattern has several.
    """
    df = _pick(frame, metric)
    panels = [(o, p) for o in dict.fromkeys(df.other_set) for p in sorted(df[df.other_set == o].pattern.unique())]
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.3 * ncols + 0.5, 3.2 * nrows + 0.8), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    good = "higher" if higher_is_better(metric) else "lower"
    for k, (other, pattern) in enumerate(panels):
        ax = axes.flat[k]
        part = df[(df.other_set == other) & (df.pattern == pattern)]
        extra = [c for c in ("workers", "base_start_method", "payload_kind") if part[c].nunique() > 1]
        finite = part[["ratio", "ratio_ci_low", "ratio_ci_high"]].to_numpy(dtype=float)
        finite = finite[np.isfinite(finite) & (finite > 0)]
        _ratio_axis(ax, finite.min(initial=0.5), finite.max(initial=2.0))
        groups = part.groupby(["mechanism", "workers", "base_start_method", "payload_kind"], sort=False)
        styles: dict = {}
        for _, g in sorted(groups, key=lambda kv: (mechanism_sort_key(kv[0][0]), kv[0][1:])):
            g = g.sort_values("payload_bytes")
            x = np.where(g.payload_bytes.to_numpy() == 0, ZERO_X, g.payload_bytes.to_numpy()).astype(float)
            y = g.ratio.to_numpy(dtype=float)
            color = mechanism_color(g.mechanism.iloc[0])
            row = g.iloc[0].to_dict()
            style = styles.setdefault(tuple(row[c] for c in extra), LINESTYLES[len(styles) % len(LINESTYLES)])
            ax.plot(x, y, color=color, linestyle=style, linewidth=1.2, label=_series_label(row, extra), gid="ratio")
            lo, hi = g.ratio_ci_low.to_numpy(dtype=float), g.ratio_ci_high.to_numpy(dtype=float)
            has_ci = np.isfinite(lo) & np.isfinite(hi)
            if has_ci.any():            # the CI as drawn from its ends: the estimate may sit on an end
                ax.vlines(x[has_ci], lo[has_ci], hi[has_ci], color=color, linewidth=0.8, alpha=0.7, gid="ci")
            sig = g.significant.to_numpy(dtype=bool)
            ax.scatter(x[sig], y[sig], color=color, s=28, zorder=3, gid="significant")
            ax.scatter(x[~sig], y[~sig], facecolors="none", edgecolors=color, s=22, zorder=3,
                       gid="not significant")
        _size_axis(ax, part.payload_bytes)
        ax.set_title(f"{pattern}: {other}", fontsize="small", loc="left")
        if k % ncols == 0:
            ax.set_ylabel(f"{metric} other/base\n(log; {good} = other better)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="x-small", frameon=False)
    for ax in axes.flat[len(panels):]:
        ax.remove()
    fig.suptitle(f"{metric}: ratio other/base (base: {df.base_set.iloc[0]}); filled = significant, "
                 f"bars = {CONFIDENCE:.0%} CI", fontsize="medium")
    return fig


def speedup(df: pd.DataFrame) -> np.ndarray:
    """How many times better other is (>1) or base is (<1): ratio, or 1/ratio where lower is better."""
    r = df.ratio.to_numpy(dtype=float)
    higher = np.array([higher_is_better(m) for m in df.metric], dtype=bool)
    with np.errstate(divide="ignore"):
        return np.where(higher, r, 1 / r)


def wins_map(frame: pd.DataFrame, metric: str = "latency_p50") -> Figure:
    """Which side wins each (case row, payload size) cell, and by how much; one panel per other set.

    Cell colour: log2 of ``speedup`` for significant differences (one colour per side, deeper = bigger),
    white with "≈" where the difference is not significant, grey where the case is missing.
    """
    df = _pick(frame, metric)
    others = list(dict.fromkeys(df.other_set))
    several = df.base_start_method.nunique() > 1
    df = df.assign(_row=[_row_label(r, several) for r in df.to_dict("records")])
    rows = sorted(df._row.unique(), key=lambda s: (mechanism_sort_key(s.split()[0]), s))
    sizes = sorted(df.payload_bytes.unique())
    fig = Figure(figsize=(max(6.0, 0.75 * len(sizes) + 3.5), (0.28 * len(rows) + 1.4) * len(others) + 0.6),
                 layout="constrained")
    axes = fig.subplots(len(others), 1, squeeze=False)[:, 0]
    norm = TwoSlopeNorm(vmin=-math.log2(WIN_LIMIT), vcenter=0.0, vmax=math.log2(WIN_LIMIT))
    cmap = _cmap()
    for ax, other in zip(axes, others, strict=True):
        part = df[df.other_set == other]
        grid = np.full((len(rows), len(sizes)), np.nan)
        text = [["" for _ in sizes] for _ in rows]
        su = speedup(part)
        for (r, s, sig), v in zip(part[["_row", "payload_bytes", "significant"]].itertuples(index=False), su,
                                  strict=True):
            i, j = rows.index(r), sizes.index(s)
            if sig and np.isfinite(v) and v > 0:
                grid[i, j] = math.log2(v)
                text[i][j] = format_factor(max(v, 1 / v))
            else:
                grid[i, j] = 0.0
                text[i][j] = "≈"
        im = ax.imshow(np.clip(grid, norm.vmin, norm.vmax), cmap=cmap, norm=norm, aspect="auto",
                       interpolation="nearest")
        for i in range(len(rows)):
            for j in range(len(sizes)):
                if text[i][j]:
                    ax.text(j, i, text[i][j], ha="center", va="center", fontsize="x-small",
                            color="white" if abs(grid[i, j]) > 1.2 else "black")
        ax.set_xticks(range(len(sizes)), [format_size(int(s)) for s in sizes], rotation=30)
        ax.set_yticks(range(len(rows)), rows, fontsize="small")
        ax.set_xlabel("payload size")
        ax.set_title(f"{metric}: where each wins (other: {other}; base: {df.base_set.iloc[0]})",
                     fontsize="small", loc="left")
        ticks = [-2, -1, 0, 1, 2]
        cb = fig.colorbar(im, ax=ax, ticks=ticks, shrink=0.9)
        cb.ax.set_yticklabels(["base 4x", "base 2x", "=", "other 2x", "other 4x"])
        cb.set_label("which side is faster, by how much")
    return fig


def _row_label(r: dict, with_start_method: bool) -> str:
    return case_name(r["mechanism"], r["pattern"], workers=r["workers"], payload_kind=r["payload_kind"],
                     extra=[str(r["base_start_method"])] if with_start_method else [])


def _cmap():
    from matplotlib import colormaps

    # purple: other wins, orange: base wins (colour-blind safe); grey: no such case
    return colormaps["PuOr"].with_extremes(bad="0.85")


FIGURE_METRICS = ("latency_p50", "throughput_msgs")     # the metrics drawn for a comparison, of those compared
FIGURE_KINDS = (("ratio", ratio_plot, "other/base ratio against payload size per mechanism"),
                ("wins", wins_map, "where each result set is significantly faster"))


def comparison_figures(comp: Comparison, metrics=DEFAULT_METRICS, id_prefix: str = "compare") -> list[dict]:
    """The ratio plot and wins map of each metric in ``FIGURE_METRICS`` and ``metrics`` that has data:
    ``[{"id", "title", "alt", "figure"}, ...]``; ids start with ``id_prefix``."""
    figures = []
    for metric in [m for m in FIGURE_METRICS if m in metrics]:
        for kind, fn, what in FIGURE_KINDS:
            try:
                fig = fn(comp.frame, metric)
            except NoData:
                continue
            figures.append({"id": f"{id_prefix}-{kind}-{metric}", "title": f"{metric}: {what}",
                            "alt": f"{metric}, {what}, {', '.join(comp.others)} against {comp.base}",
                            "figure": fig})
    return figures
