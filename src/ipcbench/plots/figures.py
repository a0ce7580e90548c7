"""Frames -> matplotlib Figures. Figures never show, save or read files; statistics never import this.

Every figure function takes a frame (the tidy frame, or the raw samples frame for distributions) and
returns a ``matplotlib.figure.Figure`` built without pyplot (no display, no global list of open figures;
``savefig`` picks the renderer by format: SVG for the report, Agg for PNG), or raises ``NoData`` when the
frame has nothing for it. Result sets are never mixed: one
panel per setup (machine_id, python_version, start_method). ``FIGURES`` lists them in report order;
``celery_beside_pool`` is drawn in the report's own "Celery beside Pool" section instead.

    from ipcbench.results.frame import load_sets
    from ipcbench.plots import figures
    loaded = load_sets(["results/"])
    fig = figures.latency_vs_size(loaded.tidy)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from .base import NoData, mechanism_color
from .celery import celery_beside_pool
from .dist import ecdf, latency_distributions
from .scaling import pool_apply_vs_async, representative_sizes, scaling, startup_cost
from .size import cpu_per_message, latency_vs_size, oneway_latency_vs_size, throughput_vs_size
from .winner import winner_grid, winner_map

__all__ = [
    "FIGURES", "FigureSpec", "NoData", "celery_beside_pool", "cpu_per_message", "ecdf", "latency_distributions",
    "latency_vs_size", "mechanism_color", "oneway_latency_vs_size", "pool_apply_vs_async", "representative_sizes", "scaling", "startup_cost",
    "throughput_vs_size", "winner_grid", "winner_map",
]


@dataclass(frozen=True)
class FigureSpec:
    id: str                                   # HTML id, stable
    title: str
    source: str                               # "tidy" or "samples": which frame ``make`` takes
    make: Callable[[pd.DataFrame], Figure]
    alt: str                                  # what the figure shows, for screen readers


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("fig-latency", "Round-trip latency against payload size", "tidy", latency_vs_size,
               "Line chart, log-log: round-trip latency (p50 solid, p99 dashed) against payload size, one line "
               "per mechanism, one panel per setup."),
    FigureSpec("fig-oneway", "One-way latency at light load against payload size", "tidy", oneway_latency_vs_size,
               "Line chart, log-log: the median one-way latency of a stream message sent on a fixed schedule at "
               "a tenth of the measured maximum rate, with its 95 % CI shaded, against payload size, one line "
               "per mechanism, one panel per setup."),
    FigureSpec("fig-throughput", "Delivered throughput against payload size", "tidy", throughput_vs_size,
               "Line charts, log-log: one-way delivered throughput in MB/s and in messages/s against payload "
               "size, one line per mechanism."),
    FigureSpec("fig-winner-latency", "Fastest mechanism by payload size and workers: latency", "tidy",
               lambda df: winner_map(df, "latency"),
               "Grid: for each payload size (columns) and pattern with worker count (rows), the mechanism "
               "with the lowest median latency and its margin over the runner-up."),
    FigureSpec("fig-winner-throughput", "Fastest mechanism by payload size and workers: throughput", "tidy",
               lambda df: winner_map(df, "throughput"),
               "Grid: for each payload size (columns) and pattern with worker count (rows), the mechanism "
               "with the highest throughput in messages per second and its margin over the runner-up."),
    FigureSpec("fig-scaling", "Scaling with workers", "tidy", scaling,
               "Line charts: throughput in messages per second against number of workers for fan-in, "
               "pool dispatch and manager RPC cases, one line per mechanism and payload size."),
    FigureSpec("fig-pool", "Pool.apply against Pool.apply_async", "tidy", pool_apply_vs_async,
               "Line charts: latency per task and tasks per second against payload size for Pool.apply and "
               "Pool.apply_async, one line per mechanism and worker count."),
    FigureSpec("fig-distributions", "Latency distributions at small payloads", "samples", latency_distributions,
               "Empirical cumulative distributions of single-message latency, log x axis and logit y axis, "
               "one line per mechanism: steps show modes, the right end shows the tail."),
    FigureSpec("fig-cpu", "CPU cost per message", "tidy", cpu_per_message,
               "Line charts, log-log: CPU seconds of all processes per message against payload size, one "
               "line per mechanism, one panel per pattern."),
    FigureSpec("fig-startup", "Process start-up by start method", "tidy", startup_cost,
               "Bar chart, log y axis: time to start a process (median, whisker to p99) per start method, "
               "one bar per argument size."),
)
