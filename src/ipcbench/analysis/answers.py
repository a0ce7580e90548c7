"""The answer a user came for: per setup, pattern and payload size, which mechanism to use.

One row per (setup, pattern, payload size), at the pattern's smallest worker count: the winner by the
pattern's headline metric, the runner-up, and how much worse the runner-up is, with a range from the two
round-level 95 % CIs (conservative: from the far ends of both). A winner is named only where the two
CIs do not overlap (``winners.leaders``' ``clear``); otherwise the row says there is no clear winner.
"""

from __future__ import annotations

import math

import pandas as pd

from ..plan.metrics import lower_is_better
from .setups import setups
from .winners import leaders

# pattern -> the metric that answers "which is best" for it, and how to say it
QUESTIONS = {
    "roundtrip": ("latency_p50", "round-trip latency (p50)"),
    "stream": ("throughput_bytes", "one-way throughput"),
    "fanin": ("throughput_msgs", "many-to-one throughput"),
    "rpc": ("latency_p50", "proxy call latency (p50)"),
    "dispatch": ("throughput_msgs", "task throughput"),
}
COLUMNS = ["setup", "pattern", "question", "metric", "workers", "payload_bytes", "use", "runner_up", "factor",
           "factor_low", "factor_high", "clear"]


def _factor_range(lower: bool, best: dict, second: dict) -> tuple[float, float]:
    """How much worse the runner-up is, from the two CIs' far ends (NaN where a CI is missing)."""
    b_lo, b_hi, s_lo, s_hi = best["ci_low"], best["ci_high"], second["ci_low"], second["ci_high"]
    if not all(math.isfinite(x) and x > 0 for x in (b_lo, b_hi, s_lo, s_hi)):
        return math.nan, math.nan
    return (s_lo / b_hi, s_hi / b_lo) if lower else (b_lo / s_hi, b_hi / s_lo)


def answers(tidy: pd.DataFrame) -> pd.DataFrame:
    """The answer table (``COLUMNS``), setups in ``setups`` order, patterns in ``QUESTIONS`` order."""
    rows = []
    for label, part in setups(tidy):
        for pattern, (metric, question) in QUESTIONS.items():
            df = part[(part["pattern"] == pattern) & (part["metric"] == metric)]
            if df.empty:
                continue
            df = df[df["workers"] == df["workers"].min()]
            lower = lower_is_better(metric)
            ci = df.set_index(["payload_bytes", "mechanism"])[["ci_low", "ci_high"]].to_dict("index")
            for r in leaders(df, metric, lower):
                best, second = ci[(r["payload_bytes"], r["winner"])], ci[(r["payload_bytes"], r["runner_up"])]
                lo, hi = _factor_range(lower, best, second)
                rows.append({"setup": label, "pattern": pattern, "question": question, "metric": metric,
                             "workers": int(df["workers"].iloc[0]), "payload_bytes": r["payload_bytes"],
                             "use": r["winner"] if r["clear"] else None, "runner_up": r["runner_up"],
                             "factor": r["ratio"], "factor_low": lo, "factor_high": hi, "clear": r["clear"],
                             "leader": r["winner"]})
    return pd.DataFrame(rows, columns=[*COLUMNS, "leader"])
