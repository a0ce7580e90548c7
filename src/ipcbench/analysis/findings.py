"""Key findings computed from the tidy frame: pure pandas functions, frame in, findings out.

Nothing here is hard-coded: every sentence names what the data in front of it says (which mechanism is
fastest for which payload sizes, by how much, how throughput scales with workers...). Comparisons are
like with like: one pattern, one worker count, one setup (machine, Python version, start method) at a
time (``setups``); who leads is ranked in ``winners``, words and numbers are written with ``units``.
No I/O and no plotting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..plan.metrics import lower_is_better
from ..units import (
    format_bytes_rate,
    format_change,
    format_percent,
    format_ratio,
    format_seconds,
    format_size,
)
from .setups import CASE_KEY, metric_table, setups
from .winners import TIE, bands, leaders

NOISE_FLAGS = ("wide_ci", "noisy", "bimodal", "few_samples", "steal", "busy", "pace_missed")


@dataclass(frozen=True)
class Finding:
    topic: str                  # latency | throughput | scaling | pool | startup | cpu | noise
    text: str                   # one plain sentence (escaped by the template, not here)
    setup: str | None = None    # setup label; None when the finding is about everything loaded
    data: dict = field(default_factory=dict, compare=False)


def _sizes_phrase(lo: int, hi: int, all_sizes: Sequence[int]) -> str:
    first, last = min(all_sizes), max(all_sizes)
    if len(all_sizes) == 1 or lo == hi:
        return f"At {format_size(lo)}"
    if lo == first and hi == last:
        return f"At every payload size measured ({format_size(lo)} to {format_size(hi)})"
    if lo == first:
        return f"Up to {format_size(hi)}"
    if hi == last:
        return f"From {format_size(lo)} up"
    return f"From {format_size(lo)} to {format_size(hi)}"


def _ratio_range(ratios: Sequence[float]) -> str:
    lo, hi = format_ratio(min(ratios)), format_ratio(max(ratios))
    return lo if lo == hi else f"{lo}–{hi}"


def _names(names: Sequence[str]) -> str:
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


# ------------------------------------------------------------------------------------------------
# who is fastest, by payload size
# ------------------------------------------------------------------------------------------------
_LEADER_TEXT = {
    # (lower_is_better) -> (superlative, comparative)
    True: ("the lowest {what}", "lower"),
    False: ("the highest {what}", "higher"),
}


def leader_findings(tidy: pd.DataFrame, pattern: str, metric: str, what: str, topic: str) -> list[Finding]:
    """Sentences like "Up to 16 KiB, pipe_duplex has the lowest round-trip latency (p50): 1.7x lower than
    queue." for one pattern at its smallest worker count, per setup (lower or higher wins as the metric
    registry says)."""
    lower = lower_is_better(metric)
    out = []
    df = tidy[(tidy["pattern"] == pattern) & (tidy["metric"] == metric)]
    for label, part in setups(df):
        part = part[part["workers"] == part["workers"].min()]
        rows = leaders(part, metric, lower)
        all_sizes = sorted(int(s) for s in part["payload_bytes"].unique())
        for band in bands(rows):
            lo, hi = band[0]["payload_bytes"], band[-1]["payload_bytes"]
            ratios = [r["ratio"] for r in band]
            winner = band[0]["winner"]
            runners = [r["runner_up"] for r in band]
            where = _sizes_phrase(lo, hi, all_sizes)
            if not band[0]["clear"]:
                text = (f"{where}, no clear winner in {what}: {winner} leads {_names(runners)} by "
                        f"{_ratio_range(ratios)}, but their 95 % confidence intervals overlap.")
                winner = None
            elif max(ratios) < TIE:
                text = (f"{where}, {winner} and {_names(runners)} are within {format_percent(TIE - 1)} of each other "
                        f"in {what}.")
            else:
                sup, comp = _LEADER_TEXT[lower]
                text = (f"{where}, {winner} has {sup.format(what=what)}: {_ratio_range(ratios)} {comp} "
                        f"than {_names(runners)}" + (" (the runner-up)." if len(set(runners)) == 1 else "."))
            out.append(Finding(topic, text, label, {"pattern": pattern, "metric": metric, "winner": winner,
                                                     "from_bytes": lo, "to_bytes": hi, "rows": band}))
    return out


def roundtrip_latency(tidy: pd.DataFrame) -> list[Finding]:
    return leader_findings(tidy, "roundtrip", "latency_p50", "round-trip latency (p50)", "latency")


def stream_throughput(tidy: pd.DataFrame) -> list[Finding]:
    out = leader_findings(tidy, "stream", "throughput_bytes", "one-way throughput (stream)", "throughput")
    df = tidy[(tidy["pattern"] == "stream") & (tidy["metric"] == "throughput_bytes") & (tidy["value"] > 0)]
    for label, part in setups(df):
        best = part.loc[part["value"].idxmax()]
        out.append(Finding("throughput", f"Peak one-way throughput: {format_bytes_rate(best['value'])} "
                           f"({best['mechanism']} at {format_size(int(best['payload_bytes']))}).", label,
                           {"mechanism": str(best["mechanism"]), "value": float(best["value"]),
                            "payload_bytes": int(best["payload_bytes"])}))
    return out


# ------------------------------------------------------------------------------------------------
# workers, pools, start-up, CPU, noise
# ------------------------------------------------------------------------------------------------
def scaling(tidy: pd.DataFrame, patterns: Sequence[str] = ("fanin", "dispatch", "rpc")) -> list[Finding]:
    """How throughput (msg/s) changes from the fewest to the most workers, at the smallest payload."""
    out = []
    df = tidy[tidy["pattern"].isin(list(patterns)) & (tidy["metric"] == "throughput_msgs")]
    for label, part in setups(df):
        for pattern in [p for p in patterns if p in set(part["pattern"])]:
            pp = part[part["pattern"] == pattern]
            size = int(pp["payload_bytes"].min())
            pp = pp[pp["payload_bytes"] == size]
            w0, w1 = int(pp["workers"].min()), int(pp["workers"].max())
            if w0 == w1:
                continue
            ratios = {}
            for mech, g in pp.groupby("mechanism", sort=True, observed=True):
                a = g.loc[g["workers"] == w0, "value"]
                b = g.loc[g["workers"] == w1, "value"]
                if len(a) and len(b) and a.iloc[0] > 0:
                    ratios[str(mech)] = float(b.iloc[0] / a.iloc[0])
            if not ratios:
                continue
            ranked = sorted(ratios.items(), key=lambda kv: -kv[1])
            parts = ", ".join(f"{format_change(r)} for {m}" for m, r in ranked)
            out.append(Finding("scaling", f"{pattern} at {format_size(size)}: {w1} workers instead of {w0} "
                               f"change throughput (msg/s) {parts}.", label,
                               {"pattern": pattern, "payload_bytes": size, "from_workers": w0, "to_workers": w1,
                                "ratios": ratios}))
    return out


def pool_async(tidy: pd.DataFrame, sync: str = "pool_apply", asynchronous: str = "pool_apply_async",
               window: str = "pool_apply_async_window") -> list[Finding]:
    """Pool.apply_async against Pool.apply: tasks per second (apply_async as users submit: a batch, then
    collect), and latency per task at the smallest size compared at equal concurrency only: the windowed
    form with one task per worker against ``apply``, with one worker (a batch's latency is a batch's)."""
    out = []
    df = tidy[(tidy["pattern"] == "dispatch") & tidy["mechanism"].isin([sync, asynchronous, window])]
    for label, part in setups(df):
        t = metric_table(part, ["throughput_msgs", "latency_p50"], ["payload_bytes", "workers", "mechanism"])
        s = t[t["mechanism"] == sync].set_index(["payload_bytes", "workers"])
        a = t[t["mechanism"] == asynchronous].set_index(["payload_bytes", "workers"])
        w = t[t["mechanism"] == window].set_index(["payload_bytes", "workers"])
        both = s.merge(a, how="inner", left_index=True, right_index=True, suffixes=("_s", "_a"))
        both = both.dropna(subset=["throughput_msgs_s", "throughput_msgs_a"])
        both = both[both["throughput_msgs_s"] > 0]
        if both.empty:
            continue
        ratios = (both["throughput_msgs_a"] / both["throughput_msgs_s"]).astype(float)
        sizes = sorted({int(i[0]) for i in both.index})
        workers = sorted({int(i[1]) for i in both.index})
        span = format_size(sizes[0]) if len(sizes) == 1 else f"{format_size(sizes[0])} to {format_size(sizes[-1])}"
        wspan = f"{workers[0]} worker{'s' if workers[0] > 1 else ''}" if len(workers) == 1 else \
            f"{workers[0]} to {workers[-1]} workers"
        text = (f"{asynchronous} completes {_ratio_range(list(ratios))} as many tasks per second as {sync} "
                f"(dispatch, {span}, {wspan})")
        lat = None
        one = s.merge(w, how="inner", left_index=True, right_index=True, suffixes=("_s", "_w"))
        one = one[(one.index.get_level_values("workers") == 1) & (one["latency_p50_s"] > 0)
                  & np.isfinite(one["latency_p50_w"])].sort_index()
        if not one.empty:
            first = one.iloc[0]
            lat = float(first["latency_p50_w"] / first["latency_p50_s"])
            text += (f"; one task at a time, {window}'s latency per task (p50) is {format_ratio(lat)} that of "
                     f"{sync} (at {format_size(int(one.index[0][0]))}, 1 worker)")
        out.append(Finding("pool", text + ".", label, {"throughput_ratios": [float(r) for r in ratios],
                                                       "latency_ratio": lat}))
    return out


def startup(tidy: pd.DataFrame) -> list[Finding]:
    """Process start-up time (p50, smallest argument) per start method, per machine and Python."""
    out = []
    df = tidy[(tidy["pattern"] == "startup") & (tidy["metric"] == "latency_p50")]
    for label, part in setups(df, ["machine_id", "python_version", "payload_kind"]):
        size = int(part["payload_bytes"].min())
        p = part[part["payload_bytes"] == size].groupby("start_method", observed=True)["value"].median()
        p = p[p > 0].sort_values()
        if p.empty:
            continue
        times = ", ".join(f"{m} {format_seconds(v)}" for m, v in p.items())
        text = f"Starting a process (p50, {format_size(size)} argument): {times}"
        if len(p) > 1:
            text += f"; {p.index[0]} is {format_ratio(p.iloc[-1] / p.iloc[0])} faster than {p.index[-1]}"
        out.append(Finding("startup", text + ".", label, {"payload_bytes": size,
                                                          "p50_s": {str(k): float(v) for k, v in p.items()}}))
    return out


def cpu_cost(tidy: pd.DataFrame, pattern: str = "roundtrip") -> list[Finding]:
    """Least and most CPU per message (all processes) at the smallest payload of ``pattern``."""
    out = []
    df = tidy[(tidy["pattern"] == pattern) & (tidy["metric"] == "cpu_per_msg") & (tidy["value"] > 0)]
    for label, part in setups(df):
        part = part[(part["workers"] == part["workers"].min())]
        size = int(part["payload_bytes"].min())
        p = part[part["payload_bytes"] == size].groupby("mechanism", observed=True)["value"].first().sort_values()
        if p.empty:
            continue
        lo_m, lo = str(p.index[0]), float(p.iloc[0])
        if len(p) == 1:
            text = f"A {pattern} op with {lo_m} at {format_size(size)} costs {format_seconds(lo)} of CPU (all processes)."
        else:
            hi_m, hi = str(p.index[-1]), float(p.iloc[-1])
            text = (f"Per {pattern} op at {format_size(size)}, {lo_m} uses the least CPU ({format_seconds(lo)} "
                    f"across all processes) and {hi_m} the most ({format_seconds(hi)}, {format_ratio(hi / lo)}).")
        out.append(Finding("cpu", text, label, {"pattern": pattern, "payload_bytes": size,
                                                "cpu_per_msg": {str(k): float(v) for k, v in p.items()}}))
    return out


def flagged_cases(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per case whose noise flags include one of ``NOISE_FLAGS``."""
    cases = tidy.drop_duplicates(subset=[c for c in CASE_KEY if c in tidy.columns])
    flags = cases["flags"].fillna("").astype(str)
    keep = flags.map(lambda f: any(x in f.split(",") for x in NOISE_FLAGS)).astype(bool)
    return cases[keep]


def noise(tidy: pd.DataFrame, failures: pd.DataFrame | None = None) -> list[Finding]:
    cases = tidy.drop_duplicates(subset=[c for c in CASE_KEY if c in tidy.columns])
    n = len(cases) + (0 if failures is None else len(failures))
    out = []
    flagged = flagged_cases(tidy)
    if len(flagged):
        counts = {f: int(flagged["flags"].astype(str).map(lambda s, f=f: f in s.split(",")).sum())
                  for f in NOISE_FLAGS}
        detail = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
        out.append(Finding("noise", f"{len(flagged)} of {n} cases carry noise warnings ({detail}); read "
                           "their numbers with care.", None, {"flagged": len(flagged), "cases": n, **counts}))
    if failures is not None and len(failures):
        out.append(Finding("noise", f"{len(failures)} of {n} cases failed; their reasons are listed below.",
                           None, {"failed": len(failures), "cases": n}))
    return out


def key_findings(tidy: pd.DataFrame, failures: pd.DataFrame | None = None) -> list[Finding]:
    """All findings for the report, in reading order."""
    return [*roundtrip_latency(tidy), *stream_throughput(tidy), *scaling(tidy), *pool_async(tidy),
            *startup(tidy), *cpu_cost(tidy), *noise(tidy, failures)]
