"""Figures against worker count and start method: scaling, Pool.apply vs apply_async, process start-up."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ..analysis.setups import metric_table, setups
from ..plan.cases import per_task_latency
from ..units import format_seconds, format_size
from .base import (
    LINESTYLES,
    REFERENCE_NOTE,
    NoData,
    ci_band,
    is_reference,
    legend_right,
    mechanism_color,
    mechanism_legend,
    mechanism_sort_key,
    new_figure,
    plot_reference,
    rate_axis,
    remove_unused,
    seconds_axis,
    size_panels,
    split_references,
    suptitle,
)

SCALING_PATTERNS = ("fanin", "dispatch", "rpc")
SIZE_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")


def representative_sizes(sizes, n: int = 3) -> list[int]:
    """Up to ``n`` payload sizes spread over the range: the smallest, the largest and (log-)middle ones."""
    sizes = sorted({int(s) for s in sizes})
    if len(sizes) <= n:
        return sizes
    logs = np.log2(np.maximum(sizes, 1))
    targets = np.linspace(logs[0], logs[-1], n)
    picked = {sizes[int(np.argmin(np.abs(logs - t)))] for t in targets}
    return sorted(picked)


def workers_axis(ax, workers) -> None:
    ws = sorted({int(w) for w in workers})
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(ws))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("workers (log scale)", fontsize="small")
    ax.tick_params(axis="x", labelsize="small")
    if len(ws) == 1:
        ax.set_xlim(ws[0] / 1.5, ws[0] * 1.5)


def scaling(tidy: pd.DataFrame) -> Figure:
    """Throughput (msg/s) against worker count for fanin, dispatch and rpc cases: a column per pattern, a
    row per setup; colour = mechanism, line style = payload size (up to three sizes). Lines are labelled
    ``"<mechanism> <size>"``; the baseline (thread_queue's fanin) is a grey reference line,
    ``"baseline: thread_queue <size>"``."""
    df = tidy[tidy["pattern"].isin(list(SCALING_PATTERNS)) & (tidy["metric"] == "throughput_msgs")
              & (tidy["value"] > 0)]
    panels = setups(df)
    patterns = [p for p in SCALING_PATTERNS if df.loc[df["pattern"] == p, "workers"].nunique() > 1]
    if not panels or not patterns:
        raise NoData("no fanin, dispatch or rpc cases with more than one worker count")
    fig, axes = new_figure(len(panels), len(patterns), panel=(3.2, 2.5))
    names: set[str] = set()
    size_styles: dict[int, str] = {}
    for row, (label, part) in zip(axes, panels, strict=True):
        for ax, pattern in zip(row, patterns, strict=True):
            pp = part[part["pattern"] == pattern]
            sizes = representative_sizes(pp["payload_bytes"])
            for i, size in enumerate(sizes):
                size_styles.setdefault(size, LINESTYLES[i % len(LINESTYLES)])
            for mech in sorted({str(m) for m in pp["mechanism"]}, key=mechanism_sort_key):
                for size in sizes:
                    m = pp[(pp["mechanism"] == mech) & (pp["payload_bytes"] == size)].sort_values("workers")
                    if m.empty:
                        continue
                    names.add(mech)
                    if is_reference(mech):
                        plot_reference(ax, m["workers"], m["value"], mech, f" {format_size(size)}",
                                       ls=size_styles[size])
                        continue
                    ax.plot(m["workers"], m["value"], color=mechanism_color(mech), ls=size_styles[size],
                            marker="o", ms=3.5, label=f"{mech} {format_size(size)}")
                    ci_band(ax, m, "workers", mechanism_color(mech))
            workers_axis(ax, pp["workers"] if len(pp) else [1])
            rate_axis(ax, "throughput", "msg/s")
            ax.set_title(f"{pattern}\n{label}", fontsize="small")
            ax.grid(True, which="major", alpha=0.3)
            if pp.empty:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")
    mechs, refs = split_references(names)
    suptitle(fig, "Throughput against number of workers (fanin: producers, dispatch: pool workers, rpc: clients; "
                  "shaded: 95 % CI)" + (f"\n{REFERENCE_NOTE}" if refs else ""))
    mechanism_legend(fig, mechs, [(format_size(s), {"ls": ls}) for s, ls in sorted(size_styles.items())],
                     references=refs)
    return fig


def pool_apply_vs_async(tidy: pd.DataFrame) -> Figure:
    """Dispatch cases (Pool.apply vs Pool.apply_async, and any other pool mechanism): latency per task
    (p50) and tasks per second against payload size; colour = mechanism, line style = worker count. Lines
    are labelled ``"<mechanism> w<workers>"``. A row per setup."""
    df = per_task_latency(tidy)          # latency per task only: a batch's is not drawn beside a task's
    df = df[(df["pattern"] == "dispatch") & df["metric"].isin(["latency_p50", "throughput_msgs"])
            & (df["payload_bytes"] > 0)]
    panels = setups(df)
    if not panels:
        raise NoData("no dispatch (pool) cases")
    fig, axes = new_figure(len(panels), 2)
    names: set[str] = set()
    worker_styles: dict[int, str] = {}
    for row, (label, part) in zip(axes, panels, strict=True):
        wide = metric_table(part, ["latency_p50", "throughput_msgs"], ["mechanism", "workers", "payload_bytes"])
        for w in sorted({int(w) for w in wide["workers"]}):
            worker_styles.setdefault(w, LINESTYLES[len(worker_styles) % len(LINESTYLES)])
        for mech in sorted({str(m) for m in wide["mechanism"]}, key=mechanism_sort_key):
            for w in sorted({int(w) for w in wide.loc[wide["mechanism"] == mech, "workers"]}):
                m = wide[(wide["mechanism"] == mech) & (wide["workers"] == w)].sort_values("payload_bytes")
                style = {"color": mechanism_color(mech), "ls": worker_styles[w], "marker": "o", "ms": 3.5,
                         "label": f"{mech} w{w}"}
                if m["latency_p50"].notna().any():     # none for the batch forms (plan.cases.PER_CALL_LATENCY)
                    row[0].plot(m["payload_bytes"], m["latency_p50"], **style)
                row[1].plot(m["payload_bytes"], m["throughput_msgs"], **style)
                names.add(mech)
        seconds_axis(row[0], "latency per task, p50")
        rate_axis(row[1], "tasks completed", "tasks/s")
        size_panels(row, wide["payload_bytes"], label)
    suptitle(fig, "Pool.apply against Pool.apply_async: latency per task and throughput, per worker count")
    mechanism_legend(fig, sorted(names, key=mechanism_sort_key),
                     [(f"{w} worker{'s' if w > 1 else ''}", {"ls": ls}) for w, ls in sorted(worker_styles.items())])
    return fig


def startup_cost(tidy: pd.DataFrame) -> Figure:
    """Time to start a process per start method: a dot at p50 and a whisker up to p99, one dot per payload
    size (the pickled argument; up to four sizes), a panel per machine and Python version, log y axis. The
    p50 is written beside each dot. Lines are labelled with the size ("8 B")."""
    df = tidy[(tidy["pattern"] == "startup") & tidy["metric"].isin(["latency_p50", "latency_p99"])
              & (tidy["value"] > 0)]
    panels = setups(df, ["machine_id", "python_version", "payload_kind"])
    if not panels:
        raise NoData("no startup (process_start) cases")
    ncols = min(3, len(panels))
    fig, axes = new_figure(math.ceil(len(panels) / ncols), ncols, panel=(3.6, 2.6), sharey=True)
    size_colors: dict[int, str] = {}
    for ax, (label, part) in zip(axes.flat, panels, strict=False):
        wide = metric_table(part, ["latency_p50", "latency_p99"], ["start_method", "payload_bytes"])
        methods = sorted({str(m) for m in wide["start_method"]},
                         key=lambda m: (["fork", "forkserver", "spawn"] + [m]).index(m))
        sizes = representative_sizes(wide["payload_bytes"], 4)
        step = 0.6 / max(len(sizes), 1)
        for j, size in enumerate(sizes):
            color = size_colors.setdefault(size, SIZE_COLORS[len(size_colors) % len(SIZE_COLORS)])
            x, p50, p99 = [], [], []
            for i, method in enumerate(methods):
                r = wide[(wide["start_method"] == method) & (wide["payload_bytes"] == size)]
                if r.empty:
                    continue
                x.append(i - 0.3 + step * (j + 0.5))
                p50.append(float(r["latency_p50"].iloc[0]))
                p99.append(float(r["latency_p99"].iloc[0]))
            if not x:
                continue
            err = np.maximum(np.nan_to_num(np.array(p99) - np.array(p50)), 0)
            ax.errorbar(x, p50, yerr=np.vstack([np.zeros_like(err), err]), fmt="o", ms=4, color=color, capsize=2, lw=0.9,
                        label=format_size(size))
            for xi, v in zip(x, p50, strict=True):
                ax.text(xi + step * 0.15, v, format_seconds(v), ha="left", va="center", fontsize=6)
        ax.set_xticks(range(len(methods)), methods, fontsize="small")
        ax.set_xlim(-0.5, len(methods) - 0.5)
        ax.set_xlabel("start method", fontsize="small")
        seconds_axis(ax, "time to start a process")
        ax.set_title(label, fontsize="small")
        ax.grid(True, axis="y", which="major", alpha=0.3)
    remove_unused(axes, len(panels))
    suptitle(fig, "Process start-up: Process.start() until the child runs (dot: p50, whisker: p99)")
    handles = [Line2D([], [], color=c, marker="o", ls="", label=format_size(s)) for s, c in sorted(size_colors.items())]
    legend_right(fig, handles, title="argument size")
    return fig
