"""Which mechanism is fastest, per payload size: pure pandas, tidy frame in, winners out.

Mechanisms only compete within one setup, one pattern and one worker count. ``leaders`` ranks them per
payload size; ``bands`` groups consecutive sizes with the same winner (for findings); ``winner_grid`` does
it for every (pattern, worker count) of a setup at once (for the winner map). Which direction wins comes
from the metric registry (lower latency, higher throughput).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..plan.cases import per_task_latency
from ..plan.metrics import lower_is_better as _lower_is_better

TIE = 1.05            # a margin below this is "about the same"


def _clear(lower_is_better: bool, best: tuple[float, float], second: tuple[float, float]) -> bool:
    """The winner is clear when the two round-level 95 % CIs do not overlap (a conservative test: two
    disjoint 95 % intervals mean a difference at well under the 5 % level); never without both CIs."""
    (b_lo, b_hi), (s_lo, s_hi) = best, second
    if not all(np.isfinite(x) for x in (b_lo, b_hi, s_lo, s_hi)):
        return False
    return bool(b_hi < s_lo) if lower_is_better else bool(b_lo > s_hi)


def leaders(df: pd.DataFrame, metric: str, lower_is_better: bool | None = None, alone: bool = False
            ) -> list[dict]:
    """Per payload size (sorted), the best and second-best mechanism of ``df`` (one setup, pattern,
    worker count) by ``metric``; ``ratio`` is the winner's margin over the runner-up (>= 1). Sizes with
    fewer than two mechanisms are left out, or with ``alone`` kept with ``runner_up`` and ``ratio`` None.
    ``clear``: the winner's round-level CI and the runner-up's do not overlap (``ci_low``/``ci_high`` of the
    tidy frame; False where either has none). ``lower_is_better``: by default the metric registry's direction."""
    if lower_is_better is None:
        lower_is_better = _lower_is_better(metric)
    d = df[(df["metric"] == metric) & (df["value"] > 0)].drop_duplicates(["payload_bytes", "mechanism"])
    sizes = d["payload_bytes"].to_numpy(dtype=np.int64)
    mechs = d["mechanism"].astype(str).to_numpy()
    values = d["value"].to_numpy(dtype=np.float64)
    nan = np.full(len(d), np.nan)
    lo = d["ci_low"].to_numpy(dtype=np.float64) if "ci_low" in d else nan
    hi = d["ci_high"].to_numpy(dtype=np.float64) if "ci_high" in d else nan
    order = np.lexsort((mechs, values if lower_is_better else -values, sizes))
    out = []
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and sizes[order[j]] == sizes[order[i]]:
            j += 1
        b = order[i]
        if j - i >= 2:
            s = order[i + 1]
            ratio = values[s] / values[b] if lower_is_better else values[b] / values[s]
            out.append({"payload_bytes": int(sizes[b]), "winner": str(mechs[b]), "value": float(values[b]),
                        "runner_up": str(mechs[s]), "runner_up_value": float(values[s]), "ratio": float(ratio),
                        "clear": _clear(lower_is_better, (lo[b], hi[b]), (lo[s], hi[s]))})
        elif alone:
            out.append({"payload_bytes": int(sizes[b]), "winner": str(mechs[b]), "value": float(values[b]),
                        "runner_up": None, "runner_up_value": None, "ratio": None, "clear": True})
        i = j
    return out


def bands(rows: list[dict]) -> list[list[dict]]:
    """Consecutive payload sizes with the same winner, grouped (a clear win and an unclear one apart)."""
    out: list[list[dict]] = []
    for row in rows:
        last = out[-1][-1] if out else None
        if last and last["winner"] == row["winner"] and last.get("clear", True) == row.get("clear", True):
            out[-1].append(row)
        else:
            out.append([row])
    return out


def winner_grid(df: pd.DataFrame, metric: str, patterns: Sequence[str]
                ) -> tuple[list[tuple[str, int]], list[int], dict]:
    """For one setup: the rows (pattern, workers) where at least two mechanisms compete at some size
    (in the order of ``patterns``, then by workers), the payload sizes, and
    ``cells[(row, size)] = (winner, margin over the runner-up, or None where it ran alone, clear)``
    (``clear``: see ``leaders``)."""
    df = per_task_latency(df)            # a batch's latency is never ranked beside a task's
    df = df[df["pattern"].isin(list(patterns)) & (df["metric"] == metric) & (df["value"] > 0)]
    sizes = sorted({int(s) for s in df["payload_bytes"]})
    cells: dict = {}
    contested: set[tuple[str, int]] = set()
    for (pattern, w), g in df.groupby(["pattern", "workers"], sort=False, observed=True):
        row = (str(pattern), int(w))
        for r in leaders(g, metric, alone=True):
            cells[(row, r["payload_bytes"])] = (r["winner"], r["ratio"], r["clear"])
            if r["runner_up"] is not None:
                contested.add(row)
    rank = {p: i for i, p in enumerate(patterns)}
    rows = sorted(contested, key=lambda r: (rank[r[0]], r[1]))
    cells = {k: v for k, v in cells.items() if k[0] in contested}
    return rows, sizes, cells
