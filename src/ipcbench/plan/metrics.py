"""The metric registry: every metric a case records, defined once.

Each ``Metric`` says what it is (``help``), its unit (as stored in result files and the tidy export), which
direction is better (``"lower"``, ``"higher"``, or ``"none"`` for descriptions of the measurement such as
the sample count), its ``kind`` (``latency``, ``throughput``, ``cpu``, ``count``, ``spread``) and how a
value is written for people. Statistics (``results.summary``), comparisons (``analysis.compare``), the
winner maps, the report's tables and ``ipcbench list`` all read it from here.

    from ipcbench.plan import metrics
    metrics.unit("throughput_bytes")                 # "B/s"
    metrics.higher_is_better("latency_p50")          # False
    metrics.format_value("throughput_msgs", 12345)   # "12.3k msg/s"
    metrics.PERCENTILES                              # {"latency_p50": 50, ..., "latency_p999": 99.9}

Names and units are public (result files, CSV export): add metrics, never rename them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..units import (
    format_bytes_rate,
    format_count,
    format_count_rate,
    format_number,
    format_percent,
    format_seconds,
)

BETTER = ("lower", "higher", "none")
KINDS = ("latency", "throughput", "cpu", "count", "spread")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str                           # as stored with each value (result files, tidy export)
    better: str                         # "lower" | "higher" | "none" (not a quality: nothing to win)
    kind: str                           # one of KINDS
    help: str                           # one line, for ``ipcbench list`` and documentation
    number: Callable[[float], str]      # the value as text; includes the unit where it is part of the number
    suffix: str = ""                    # unit written after ``number`` where the context does not name it
    percentile: float | None = None     # latency percentiles: which one, of single-operation samples

    @property
    def comparable(self) -> bool:
        """Whether one value can be better than another (what comparisons and winner maps rank)."""
        return self.better != "none"

    def format(self, value, with_unit: bool = True, missing: str = "n/a") -> str:
        """``value`` for people (``missing`` where there is none); ``with_unit=False`` leaves out the
        ``suffix``, for a column whose heading names the unit."""
        if value is None or not math.isfinite(value):
            return missing
        text = self.number(value)
        return f"{text} {self.suffix}" if with_unit and self.suffix else text


def _latency(name: str, q: float | None, what: str) -> Metric:
    return Metric(name, "s", "lower", "latency", what, format_seconds, percentile=q)


_ALL = (
    _latency("latency_p50", 50, "median latency of one operation (round trip, call, task, start-up): "
             "geometric mean of the rounds' medians"),
    _latency("latency_p90", 90, "90th percentile of single-operation latency"),
    _latency("latency_p99", 99, "99th percentile of single-operation latency"),
    _latency("latency_p999", 99.9, "99.9th percentile of single-operation latency (needs thousands of samples)"),
    _latency("latency_max", None, "the slowest single operation timed"),
    _latency("latency_first_call", None, "rpc: a client's first call on a fresh Manager proxy (it connects to "
             "the server and authenticates): median over every client of every round"),
    _latency("latency_oneway_p50", None, "stream: one-way latency of a message at light load, open loop: the "
             "producer sends on a fixed schedule at a tenth of the rate the stream delivered, and a sample is "
             "receipt - scheduled send time; geometric mean of the rounds' medians"),
    Metric("throughput_msgs", "msg/s", "higher", "throughput", "operations per second where the payload is delivered "
           "(geometric mean of the rounds')", format_count_rate, suffix="msg/s"),
    Metric("throughput_bytes", "B/s", "higher", "throughput", "payload bytes per second delivered "
           "(throughput_msgs x bytes per operation)", format_bytes_rate),
    Metric("cpu_per_msg", "s", "lower", "cpu", "CPU seconds of every process involved (peers, servers, feeder "
           "threads) per operation", format_seconds),
    Metric("faults_per_msg", "count", "none", "cpu", "minor page faults of every process involved per "
           "operation: pages mapped on first touch, e.g. large buffers the allocator got fresh from mmap "
           "(the allocator state, docs/measurement.md)", format_count_rate, suffix="faults"),
    Metric("samples", "count", "none", "count", "single-operation latency samples timed, over all rounds",
           format_count),
    Metric("latency_round_spread", "ratio", "none", "spread", "(max - min) / median of the rounds' median "
           "latencies", format_percent),
    Metric("throughput_round_spread", "ratio", "none", "spread", "(max - min) / median of the rounds' "
           "throughputs", format_percent),
)

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}
UNITS: dict[str, str] = {m.name: m.unit for m in _ALL}
PERCENTILES: dict[str, float] = {  # latency metric -> percentile (0-100) of single-operation samples
    m.name: m.percentile for m in _ALL if m.percentile is not None}
COMPARABLE: tuple[str, ...] = tuple(m.name for m in _ALL if m.comparable)


def get(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def names(kind: str | None = None, comparable: bool | None = None) -> tuple[str, ...]:
    """Metric names in registry order, optionally only of one ``kind`` and/or (not) ``comparable``."""
    return tuple(m.name for m in _ALL if (kind is None or m.kind == kind)
                 and (comparable is None or m.comparable == comparable))


def unit(name: str) -> str:
    """The unit of ``name``; "" for a metric not in the registry."""
    m = METRICS.get(name)
    return m.unit if m else ""


def higher_is_better(name: str) -> bool:
    return get(name).better == "higher"


def lower_is_better(name: str) -> bool:
    return get(name).better == "lower"


def format_value(name: str, value, with_unit: bool = True, missing: str = "n/a") -> str:
    """``value`` of metric ``name`` for people: ``29.4 µs``, ``12.3k msg/s``, ``1.2 GB/s``, ``20%``.

    A metric not in the registry is written as a plain number."""
    m = METRICS.get(name)
    if m is None:
        return missing if value is None or not math.isfinite(value) else format_number(value)
    return m.format(value, with_unit, missing)
