"""Figures against payload size: round-trip latency, delivered throughput, CPU cost per message.

Each takes the tidy frame (``ipcbench.frame.tidy_frame``) and returns a Figure; one panel per setup.
Lines are labelled with the mechanism name (``ax.get_lines()``, ``line.get_label()``); a p99 line is
labelled ``"<mechanism> p99"``. The floors and the baseline measured in a panel's setup are drawn there as
grey reference lines labelled ``"floor: os_pipe"``, ``"baseline: thread_queue"`` (latency: p50 only).
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure

from ..analysis.setups import metric_table, setups
from .base import (
    REFERENCE_NOTE,
    NoData,
    ci_band,
    is_reference,
    mechanism_color,
    mechanism_legend,
    mechanism_sort_key,
    new_figure,
    plot_reference,
    plural,
    rate_axis,
    remove_unused,
    seconds_axis,
    size_axis,
    size_panels,
    split_references,
    suptitle,
)

CPU_PATTERNS = ("roundtrip", "stream", "dispatch")


def _sorted_mechs(df: pd.DataFrame) -> list[str]:
    return sorted({str(m) for m in df["mechanism"].unique()}, key=mechanism_sort_key)


def _lowest_workers(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["workers"] == df["workers"].min()] if len(df) else df


def _p50_line(ax, mech: str, sizes, values, ci_rows: pd.DataFrame) -> str | None:
    """A mechanism's p50 against payload size: a grey reference line for a floor or baseline (None), else
    its colored line with the 95 % CI of ``ci_rows`` (tidy rows of that metric, by size) shaded; its color."""
    if is_reference(mech):
        plot_reference(ax, sizes, values, mech)
        return None
    color = mechanism_color(mech)
    ax.plot(sizes, values, color=color, marker="o", ms=3.5, label=mech)
    ci_band(ax, ci_rows, "payload_bytes", color)
    return color


def latency_vs_size(tidy: pd.DataFrame, pattern: str = "roundtrip") -> Figure:
    """p50 (solid) and p99 (dashed) latency against payload size, per mechanism, log-log; one panel per
    setup. Only ``pattern`` (default round trips) is drawn: latencies of different patterns are not alike."""
    df = tidy[(tidy["pattern"] == pattern) & tidy["metric"].isin(["latency_p50", "latency_p99"])
              & (tidy["payload_bytes"] > 0)]
    panels = setups(df)
    if not panels:
        raise NoData(f"no {pattern} cases with a payload")
    name = "round-trip" if pattern == "roundtrip" else pattern
    ncols = min(2, len(panels))
    fig, axes = new_figure(math.ceil(len(panels) / ncols), ncols, sharey=True)
    names: set[str] = set()
    for ax, (label, part) in zip(axes.flat, panels, strict=False):
        part = _lowest_workers(part)
        wide = metric_table(part, ["latency_p50", "latency_p99"], ["mechanism", "payload_bytes"])
        for mech in _sorted_mechs(wide):
            m = wide[wide["mechanism"] == mech].sort_values("payload_bytes")
            names.add(mech)
            rows = part[(part["mechanism"] == mech) & (part["metric"] == "latency_p50")]
            color = _p50_line(ax, mech, m["payload_bytes"], m["latency_p50"], rows.sort_values("payload_bytes"))
            if color is not None:
                ax.plot(m["payload_bytes"], m["latency_p99"], color=color, ls="--", lw=1, alpha=0.8,
                        label=f"{mech} p99")
        size_panels([ax], wide["payload_bytes"], label)
        seconds_axis(ax, f"{name} latency")
    remove_unused(axes, len(panels))
    mechs, refs = split_references(names)
    suptitle(fig, f"{name.capitalize()} latency against payload size (p50 solid with its 95 % CI shaded, "
                  "p99 dashed)" + (f"\n{REFERENCE_NOTE} (p50)" if refs else ""))
    mechanism_legend(fig, mechs, [("p50", {"ls": "-"}), ("p99", {"ls": "--"})], references=refs)
    return fig


def oneway_latency_vs_size(tidy: pd.DataFrame) -> Figure:
    """One-way latency of a stream at light load (``latency_oneway_p50``: the paced, open-loop phase of each
    stream round, receipt - scheduled send) against payload size, per mechanism, log-log, its 95 % CI
    shaded; one panel per setup. The saturated window's ``latency_p50`` (time in the channel behind a
    full backlog) is not drawn here: it measures the backlog, not the channel."""
    df = tidy[(tidy["pattern"] == "stream") & (tidy["metric"] == "latency_oneway_p50") & (tidy["payload_bytes"] > 0)]
    panels = setups(df)
    if not panels:
        raise NoData("no stream cases with a paced phase (latency_oneway_p50)")
    ncols = min(2, len(panels))
    fig, axes = new_figure(math.ceil(len(panels) / ncols), ncols, sharey=True)
    names: set[str] = set()
    for ax, (label, part) in zip(axes.flat, panels, strict=False):
        for mech in _sorted_mechs(part):
            rows = part[part["mechanism"] == mech].sort_values("payload_bytes")
            names.add(mech)
            _p50_line(ax, mech, rows["payload_bytes"], rows["value"], rows)
        size_panels([ax], part["payload_bytes"], label)
        seconds_axis(ax, "one-way latency")
    remove_unused(axes, len(panels))
    mechs, refs = split_references(names)
    suptitle(fig, "One-way latency at light load (stream paced at 1/10 of its rate; p50, 95 % CI shaded)"
                  + (f"\n{REFERENCE_NOTE}" if refs else ""))
    mechanism_legend(fig, mechs, [("p50", {"ls": "-"})], references=refs)
    return fig


def throughput_vs_size(tidy: pd.DataFrame) -> Figure:
    """Delivered one-way throughput (MB/s and messages/s) against payload size, per mechanism, log-log.

    Stream cases are drawn solid; a mechanism without a stream case is drawn from its fan-in case with one
    producer (dotted, labelled ``"<mechanism> (fanin)"``): the same one-way delivery, counted at the receiver.
    One row per setup.
    """
    df = tidy[tidy["pattern"].isin(["stream", "fanin"]) & (tidy["workers"] == 1) & (tidy["payload_bytes"] > 0)
              & tidy["metric"].isin(["throughput_bytes", "throughput_msgs"])]
    panels = setups(df)
    if not panels or "stream" not in set(df["pattern"]):
        raise NoData("no stream cases")
    fig, axes = new_figure(len(panels), 2)
    names: set[str] = set()
    for row, (label, part) in zip(axes, panels, strict=True):
        wide = metric_table(part, ["throughput_bytes", "throughput_msgs"], ["mechanism", "pattern", "payload_bytes"])
        streams = set(wide.loc[wide["pattern"] == "stream", "mechanism"])
        for mech in _sorted_mechs(wide):
            pattern = "stream" if mech in streams else "fanin"
            m = wide[(wide["mechanism"] == mech) & (wide["pattern"] == pattern)].sort_values("payload_bytes")
            names.add(mech)
            if is_reference(mech):
                suffix = "" if pattern == "stream" else " (fanin)"
                plot_reference(row[0], m["payload_bytes"], m["throughput_bytes"] / 1e6, mech, suffix)
                plot_reference(row[1], m["payload_bytes"], m["throughput_msgs"], mech, suffix)
                continue
            name = mech if pattern == "stream" else f"{mech} (fanin)"
            style = {"color": mechanism_color(mech), "marker": "o", "ms": 3.5, "label": name,
                     "ls": "-" if pattern == "stream" else ":"}
            row[0].plot(m["payload_bytes"], m["throughput_bytes"] / 1e6, **style)
            row[1].plot(m["payload_bytes"], m["throughput_msgs"], **style)
            rows = part[(part["mechanism"] == mech) & (part["pattern"] == pattern)].sort_values("payload_bytes")
            ci_band(row[0], rows[rows["metric"] == "throughput_bytes"], "payload_bytes", style["color"], 1e-6)
            ci_band(row[1], rows[rows["metric"] == "throughput_msgs"], "payload_bytes", style["color"])
        rate_axis(row[0], "delivered throughput", "MB/s")
        rate_axis(row[1], "delivered messages", "msg/s")
        size_panels(row, wide["payload_bytes"], label)
    mechs, refs = split_references(names)
    suptitle(fig, "One-way delivered throughput against payload size (stream; dotted: fanin with 1 producer; "
                  "shaded: 95 % CI)" + (f"\n{REFERENCE_NOTE}" if refs else ""))
    mechanism_legend(fig, mechs, [("stream", {"ls": "-"}), ("fanin, 1 producer", {"ls": ":"})], references=refs)
    return fig


def cpu_per_message(tidy: pd.DataFrame) -> Figure:
    """CPU seconds of all processes per message against payload size, per mechanism; a panel per pattern
    in ``CPU_PATTERNS`` (at its smallest worker count) and setup, three panels to a row."""
    df = tidy[tidy["pattern"].isin(list(CPU_PATTERNS)) & (tidy["metric"] == "cpu_per_msg")
              & (tidy["payload_bytes"] > 0) & (tidy["value"] > 0)]
    panels = setups(df)
    if not panels:
        raise NoData("no cases with CPU time per message")
    patterns = [p for p in CPU_PATTERNS if p in set(df["pattern"])]
    cells = [(label, part, pattern) for label, part in panels for pattern in patterns
             if (part["pattern"] == pattern).any()]
    ncols = min(3, len(cells))
    fig, axes = new_figure(math.ceil(len(cells) / ncols), ncols, panel=(3.2, 2.5), sharey=True)
    names: set[str] = set()
    for ax, (label, part, pattern) in zip(axes.flat, cells, strict=False):
        pp = _lowest_workers(part[part["pattern"] == pattern])
        for mech in _sorted_mechs(pp):
            m = pp[pp["mechanism"] == mech].sort_values("payload_bytes")
            names.add(mech)
            if is_reference(mech):
                plot_reference(ax, m["payload_bytes"], m["value"], mech)
                continue
            ax.plot(m["payload_bytes"], m["value"], color=mechanism_color(mech), marker="o", ms=3.5, label=mech)
        ax.set_title(f"{pattern}, {plural(int(pp['workers'].iloc[0]), 'worker')}\n{label}", fontsize="small")
        size_axis(ax, pp["payload_bytes"])
        seconds_axis(ax, "CPU per message")
        ax.grid(True, which="major", alpha=0.3)
    remove_unused(axes, len(cells))
    mechs, refs = split_references(names)
    suptitle(fig, "CPU time of all processes per message against payload size"
             + (f"\n{REFERENCE_NOTE}" if refs else ""))
    mechanism_legend(fig, mechs, references=refs)
    return fig
