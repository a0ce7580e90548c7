"""Shared pieces of the figure functions: facets by result set, stable colours, human axes.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot, no global state, no display), so
they work without a GUI backend and are garbage-collected like any object. A figure function takes a
frame and returns a Figure, or raises ``NoData`` when the frame holds nothing it can draw.

Several result sets (machines, Python versions, start methods) are never mixed in one line: every figure
draws one panel per *setup* (machine_id, python_version, start_method, placement), titled with it.

Uncertainty is drawn, not left to the tables: where a figure plots a headline estimate (p50 latency,
throughput), ``ci_band`` shades its round-level 95 % CI (the tidy frame's ``ci_low``/``ci_high``) in the
line's colour; a case without a CI (fewer than two rounds) has no band there.

The floors (``os_pipe``, ``socketpair``) and the baseline (``thread_queue``) are references, not contenders:
where a figure has them in a panel they are drawn as thin grey lines without markers (``plot_reference``),
labelled ``"floor: os_pipe"`` / ``"baseline: thread_queue"``, and listed apart in the legend.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from ..analysis.references import FLOORS, REFERENCES, reference_label
from ..units import format_count_rate, format_seconds, format_size

# The order of legends and rows, and a fixed colour per mechanism so it looks the same in every figure.
# Rule: first the mechanisms ipcbench measures (``ipcbench list``), by family: queues and pipes, managers,
# pools, process start-up, locks; then the ones DESIGN.md plans ("beyond", in its order, then celery), so
# that each gets its colour when it lands. A test checks that every registered mechanism is listed. Any
# other name (a user's own mechanism) sorts after these, by name, with a colour chosen by its name.
MECHANISM_ORDER = [
    "queue", "pipe_duplex", "pipe_simplex", "manager_queue", "manager_dict", "manager_list",
    "pool_apply", "pool_apply_async", "process_start", "lock",
    "simple_queue", "joinable_queue", "shared_memory", "sharedctypes_array", "sharedctypes_array_nolock",
    "pool_map", "pool_map_chunksize1", "pool_imap", "process_pool_executor", "process_pool_executor_map",
    "os_pipe", "socketpair", "thread_queue",
    "celery",
    "pool_apply_async_callback", "pool_apply_async_window", "process_pool_executor_window", "pipe_duplex_oob",
    # result files of schema <= 3: the windowed forms then had 4 tasks per worker in flight
    "pool_apply_async_window4", "process_pool_executor_window4",
    # schema <= 4: bounded queues in stream/fanin, a lock client stamping every cycle
    "queue_bounded", "joinable_queue_bounded", "thread_queue_bounded", "lock_stamped",
    # schema 5: a lock client stamping every 32 cycles
    "lock_batch32",
    # schema 6: the submit-all dispatch forms submitted jobs of 256 tasks
    "pool_apply_async_batch256", "pool_apply_async_callback_batch256", "process_pool_executor_batch256",
]
_PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
    "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
    "#756bb1", "#636363", "#9c9ede", "#6b6ecf", "#b5cf6b", "#e7ba52", "#fd8d3c", "#74c476", "#9e9ac8",
    "#c49c94", "#f7b6d2", "#dbdb8d", "#8ca252", "#bd9e39", "#ad494a", "#a55194", "#6baed6", "#fdae6b",
    "#5254a3", "#cedb9c", "#e7969c",
]
LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v"]


class LogTicks(LogLocator):
    """Decades on a wide log axis; 1-2-5 steps when it spans less than ~1.5 decades (so it has labels)."""

    def tick_values(self, vmin, vmax):
        narrow = vmin > 0 and vmax > 0 and abs(math.log10(vmax / vmin)) < 1.5
        self.set_params(subs=(1.0, 2.0, 5.0) if narrow else (1.0,))
        return super().tick_values(vmin, vmax)


class NoData(ValueError):
    """The frame holds nothing this figure can draw (the message says what is missing)."""


def mechanism_color(name: str) -> str:
    if name in MECHANISM_ORDER:
        return _PALETTE[MECHANISM_ORDER.index(name) % len(_PALETTE)]
    return _PALETTE[zlib.crc32(str(name).encode()) % len(_PALETTE)]


def mechanism_sort_key(name: str) -> tuple:
    return (MECHANISM_ORDER.index(name) if name in MECHANISM_ORDER else len(MECHANISM_ORDER), str(name))


def mechanisms_in(df: pd.DataFrame) -> list[str]:
    return sorted({str(m) for m in df["mechanism"].unique()}, key=mechanism_sort_key)


def new_figure(nrows: int, ncols: int, panel: tuple[float, float] = (3.6, 2.5), sharey=False, sharex=False,
               left: float = 0.95, right: float = 1.9, top: float = 0.8, bottom: float = 0.75,
               gap: tuple[float, float] = (0.95, 1.15)) -> tuple[Figure, np.ndarray]:
    """A Figure with an nrows x ncols grid of axes (always a 2-D array), laid out in fixed inches.

    ``panel`` is the size of one axes; margins and gaps leave room for labels, a two-line panel title and a
    legend on the right. A fixed layout costs nothing at draw time (constrained layout doubles it).
    """
    width = left + right + ncols * panel[0] + (ncols - 1) * gap[0]
    height = top + bottom + nrows * panel[1] + (nrows - 1) * gap[1]
    fig = Figure(figsize=(width, height))
    grid = fig.add_gridspec(nrows, ncols, left=left / width, right=1 - right / width, bottom=bottom / height,
                            top=1 - top / height, wspace=gap[0] / panel[0], hspace=gap[1] / panel[1])
    axes = grid.subplots(sharex=sharex, sharey=sharey, squeeze=False)
    return fig, axes


def suptitle(fig: Figure, text: str) -> None:
    """Figure title in the top margin, left-aligned with the figure."""
    fig.suptitle(text, x=0.01, y=1 - 0.12 / fig.get_figheight(), ha="left", va="top", fontsize="medium")


def size_axis(ax, sizes: Iterable[int], axis: str = "x", label: str = "payload size") -> None:
    """Log axis of payload sizes with human tick labels (8 B, 64 KiB, 1 MiB)."""
    sizes = sorted({int(s) for s in sizes if s and s > 0})
    set_scale = ax.set_xscale if axis == "x" else ax.set_yscale
    set_scale("log", base=2)
    target = ax.xaxis if axis == "x" else ax.yaxis
    if 0 < len(sizes) <= 8:
        target.set_major_locator(FixedLocator(sizes))
    else:
        target.set_major_locator(LogLocator(base=16))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: format_size(int(round(v))) if v >= 1 else ""))
    target.set_minor_locator(NullLocator())
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(f"{label} (log scale)", fontsize="small")
    ax.tick_params(axis=axis, labelsize="small", labelrotation=30 if axis == "x" else 0)



def size_panels(row, sizes: Iterable[int], title: str) -> None:
    """A row of panels that share a payload-size x axis: axis, title and grid on each."""
    for ax in row:
        size_axis(ax, sizes)
        ax.set_title(title, fontsize="small")
        ax.grid(True, which="major", alpha=0.3)

def seconds_axis(ax, label: str, axis: str = "y") -> None:
    """Log axis of durations in seconds with human tick labels (29.4 µs, 1.2 ms)."""
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogTicks())
    target.set_major_formatter(FuncFormatter(lambda v, _pos: format_seconds(v) if v > 0 else ""))
    target.set_minor_locator(NullLocator())
    (ax.set_ylabel if axis == "y" else ax.set_xlabel)(f"{label} (s, log scale)", fontsize="small")
    ax.tick_params(axis=axis, labelsize="small")


def rate_axis(ax, label: str, unit: str) -> None:
    """Log y axis of a rate (messages/s or MB/s) with compact tick labels (1.2k, 3.4M)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogTicks())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_count_rate(v) if v > 0 else ""))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylabel(f"{label} ({unit}, log scale)", fontsize="small")
    ax.tick_params(axis="y", labelsize="small")


# The floors and the baseline (``analysis.references``) are drawn as thin grey reference lines without
# markers, behind the mechanisms' coloured lines, so a reader sees at once which lines are the mechanisms
# and what the OS (floor) or one process (baseline) achieves beside them; each has its own dash pattern.
# Lighter than the near-black style notes of a legend ("p99" dashed, "fanin" dotted), which describe the
# mechanisms' coloured lines; the references come last in the legend.
REFERENCE_STYLES = {
    "os_pipe": {"color": "0.5", "ls": (0, (6, 2))},
    "socketpair": {"color": "0.5", "ls": (0, (1, 1.5))},
    "thread_queue": {"color": "0.62", "ls": (0, (6, 1.5, 1.5, 1.5))},
}
REFERENCE_LW = 1.2
REFERENCE_NOTE = "grey, no markers: floors and baseline"


def is_reference(name) -> bool:
    """A floor or the baseline: drawn as a reference line, not as a mechanism."""
    return name in REFERENCES


def split_references(names) -> tuple[list[str], list[str]]:
    """(mechanisms, references) among ``names``, each in legend order."""
    names = sorted({str(n) for n in names}, key=mechanism_sort_key)
    return [n for n in names if not is_reference(n)], [n for n in names if is_reference(n)]


def reference_style(name: str) -> dict:
    """Line properties of a reference line (``REFERENCE_STYLES``; grey dashes for any other floor)."""
    style = REFERENCE_STYLES.get(name) or {"color": "0.5" if name in FLOORS else "0.62", "ls": "--"}
    return {**style, "lw": REFERENCE_LW, "marker": "", "zorder": 1.5}


def plot_reference(ax, x, y, name: str, suffix: str = "", **overrides) -> Line2D:
    """Draw floor or baseline ``name`` as a reference line labelled ``"floor: os_pipe"`` (+ ``suffix``)."""
    (line,) = ax.plot(x, y, label=reference_label(name) + suffix, **{**reference_style(name), **overrides})
    return line


def reference_handles(names: Sequence[str]) -> list[Line2D]:
    return [Line2D([], [], label=reference_label(n), **reference_style(n)) for n in names]


def mechanism_legend(fig: Figure, names: Sequence[str], extra: Sequence[tuple[str, dict]] = (),
                     references: Sequence[str] = ()) -> None:
    """One legend for the whole figure, outside the panels: a colour per mechanism, style notes, then the
    reference lines (floors, baseline) drawn in."""
    handles = [Line2D([], [], color=mechanism_color(n), marker="o", label=n) for n in names]
    handles += [Line2D([], [], color="0.3", label=text, **style) for text, style in extra]
    handles += reference_handles(references)
    if handles:
        legend_right(fig, handles)


def legend_right(fig: Figure, handles, title: str | None = None) -> None:
    """A legend in the figure's right margin, level with the top of the panels."""
    right = max(ax.get_position().x1 for ax in fig.axes)
    top = max(ax.get_position().y1 for ax in fig.axes)
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(right + 0.15 / fig.get_figwidth(), top), fontsize="small",
               frameon=False, title=title, title_fontsize="small", borderaxespad=0)


CI_ALPHA = 0.18


def ci_band(ax, rows: pd.DataFrame, x: str, color: str, scale: float = 1.0) -> int:
    """Shade the 95 % CI of ``rows`` (tidy rows of one metric and one line, sorted by ``x``) between
    ``ci_low`` and ``ci_high`` (times ``scale``), where both are known; returns the points shaded."""
    if rows.empty or "ci_low" not in rows or "ci_high" not in rows:
        return 0
    lo = rows["ci_low"].to_numpy(dtype=float) * scale
    hi = rows["ci_high"].to_numpy(dtype=float) * scale
    ok = np.isfinite(lo) & np.isfinite(hi) & (lo > 0)
    if not ok.any():
        return 0
    ax.fill_between(rows[x].to_numpy(dtype=float), np.where(ok, lo, np.nan), np.where(ok, hi, np.nan),
                    color=color, alpha=CI_ALPHA, lw=0, label="_ci")
    return int(ok.sum())


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def remove_unused(axes: np.ndarray, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.remove()
