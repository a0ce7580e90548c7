"""Mechanisms held against a reference measured in the same setup: the raw floors, the thread baseline, and
Celery beside ``multiprocessing.Pool``. Pure pandas and round statistics: the tidy frame in (and, for
round-level CIs, the result-set dicts), frames out; nothing is drawn here.

* **The floors** (``FLOORS``: ``os_pipe``, ``socketpair``) move raw bytes with a length and no pickling:
  the least an IPC exchange costs on the machine. **The baseline** (``BASELINES``: ``thread_queue``) is
  ``queue.Queue`` between threads of one process: the same exchange without a process boundary. Figures
  draw both as reference lines (``plots.base.reference_style``).
* ``floor_tables``: per setup (``setups.setups``: machine, Python, start method, placement, payload kind,
  result file), each mechanism's throughput (messages/s) as a fraction of *the best floor measured in the
  same setup* at the same payload size and pattern: round trips against the floors' round trips, one-way
  streams against their streams. A mechanism without a stream case is held by its fan-in case with one
  producer (the same one-way delivery, as the throughput figure draws it). A setup without a floor gets
  no table but a sentence saying why.
* ``celery_tables``: per setup with ``celery`` dispatch cases, the overhead per task (p50 latency of
  ``celery`` against ``pool_apply``: difference and ratio) and the throughput (against
  ``pool_apply_async``) at each payload size and worker count (Celery's concurrency against the pool's
  size).

Uncertainty. A ratio (fraction) is ``other / reference`` of the recorded values; its 95 % CI is that of the
ratio of the geometric means of the two cases' round values (``compare_stats.round_tests``: Welch on log
round values, as ``ipcbench compare`` does), placed on the recorded ratio, where both cases have at least
``compare_stats.MIN_ROUNDS`` rounds (``ci_from == "rounds"``). Without round values (a frame given
without its result sets) the range spans the far ends of the two cases' own CIs (``"case CIs"``: wider,
conservative, as the answer table does); with neither, there is no CI (``""``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..results.schema import machine_id_of, python_version_of
from ..units import format_size
from .compare_stats import round_tests, round_values
from .setups import CASE_KEY, setups

FLOORS = ("os_pipe", "socketpair")
BASELINES = ("thread_queue",)
REFERENCES = (*FLOORS, *BASELINES)
FLOOR_PATTERNS = ("roundtrip", "stream")        # what the floors run (fanin would need a protocol of its own)
FLOOR_KINDS = ("bytes", "numpy")                # what they carry: an object has no bytes without pickling
FRACTION_METRIC = "throughput_msgs"

CELERY = "celery"
CELERY_PATTERN = "dispatch"
POOL_LATENCY = "pool_apply"             # one task at a time: the overhead per task
POOL_THROUGHPUT = "pool_apply_async"    # many tasks in flight: throughput

FRACTION_COLUMNS = ["setup", "table", "mechanism", "role", "pattern", "workers", "payload_bytes", "value",
                    "floor", "floor_value", "fraction", "fraction_ci_low", "fraction_ci_high", "ci_from",
                    "is_floor"]
CELERY_COLUMNS = ["payload_bytes", "workers", "celery", "pool", "difference", "ratio", "ratio_ci_low",
                  "ratio_ci_high", "ci_from"]


def role(mechanism) -> str:
    """``"floor"``, ``"baseline"`` or ``"mechanism"``."""
    return "floor" if mechanism in FLOORS else "baseline" if mechanism in BASELINES else "mechanism"


def reference_label(mechanism) -> str:
    """How a figure's legend names a reference line: ``floor: os_pipe``, ``baseline: thread_queue``."""
    return f"{role(mechanism)}: {mechanism}"


# ------------------------------------------------------------------------------------------------
# per-round values, by the tidy frame's case key
# ------------------------------------------------------------------------------------------------
def _norm(v) -> str:
    """A key part as text: "?" for a missing value, whole numbers without ".0" (8 and 8.0 are one size)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "?"
    if isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v).is_integer():
        return str(int(v))
    return str(v)


def case_key(row) -> tuple:
    """The case key (``setups.CASE_KEY``) of a tidy row (dict or Series), normalized for look-ups."""
    return tuple(_norm(row.get(c)) for c in CASE_KEY)


class RoundValues:
    """Per-round values of the cases of result-set dicts (as ``frame.read_set`` returns them), looked up by
    the tidy frame's case key: ``throughput_msgs`` the rounds' throughputs (``noise.round_throughput``),
    ``latency_p50`` the rounds' medians (``noise.round_p50_s``, else the median of each round's stored
    samples), as ``analysis.compare`` reads them. Computed on first use, per case."""

    def __init__(self, sets: Iterable[dict] = ()):
        self._recs: dict[tuple, dict] = {}
        self._cache: dict[tuple, np.ndarray] = {}
        for rs in sets:
            head = (machine_id_of(rs), python_version_of(rs))
            for rec in rs.get("cases") or ():
                if not isinstance(rec, dict) or rec.get("status") != "ok" or not isinstance(rec.get("case"), dict):
                    continue
                c = rec["case"]
                key = tuple(_norm(v) for v in (*head, c.get("start_method"), c.get("placement"), c.get("mechanism"),
                                               c.get("pattern"), c.get("payload_kind"), c.get("payload_bytes"),
                                               c.get("workers"), rs.get("_source")))
                self._recs[key] = rec

    def get(self, metric: str, key: tuple) -> np.ndarray:
        if (metric, key) not in self._cache:
            self._cache[(metric, key)] = self._values(metric, self._recs.get(key))
        return self._cache[(metric, key)]

    @staticmethod
    def _values(metric: str, rec: dict | None) -> np.ndarray:
        if rec is None:
            return np.empty(0)
        noise = rec.get("noise") or {}
        if metric == "throughput_msgs":
            return np.asarray(noise.get("round_throughput") or (), dtype=float)
        if metric == "latency_p50":
            if noise.get("round_p50_s"):
                return np.asarray(noise["round_p50_s"], dtype=float)
            rounds = [r for r in rec.get("rounds") or () if r.get("ok", True)]
            return round_values([np.asarray(r.get("samples_ns") or (), dtype=float) / 1e9 for r in rounds], 50)
        raise ValueError(f"no per-round values for {metric}")


def held_against(others: pd.DataFrame, bases: pd.DataFrame, metric: str, rounds: RoundValues | None
                 ) -> pd.DataFrame:
    """``ratio`` = other / base of row-aligned tidy rows of ``metric`` (same length), with its 95 % CI
    (``ratio_ci_low``/``ratio_ci_high``) and where the CI came from (``ci_from``, see the module doc)."""
    vo = others["value"].to_numpy(dtype=float)
    vb = bases["value"].to_numpy(dtype=float)
    with np.errstate(all="ignore"):
        ratio = vo / vb
    lo, hi = np.full(len(vo), np.nan), np.full(len(vo), np.nan)
    source = np.full(len(vo), "", dtype=object)
    if len(vo) and rounds is not None:
        t = round_tests([rounds.get(metric, case_key(r)) for r in bases.to_dict("records")],
                        [rounds.get(metric, case_key(r)) for r in others.to_dict("records")])
        ok = np.isfinite(t.lo_factor) & np.isfinite(t.hi_factor)
        lo[ok], hi[ok], source[ok] = ratio[ok] * t.lo_factor[ok], ratio[ok] * t.hi_factor[ok], "rounds"
    o_lo, o_hi = (others[c].to_numpy(dtype=float) if c in others else np.full(len(vo), np.nan)
                  for c in ("ci_low", "ci_high"))
    b_lo, b_hi = (bases[c].to_numpy(dtype=float) if c in bases else np.full(len(vb), np.nan)
                  for c in ("ci_low", "ci_high"))
    with np.errstate(all="ignore"):
        far = (source == "") & np.isfinite(o_lo) & np.isfinite(o_hi) & np.isfinite(b_lo) & np.isfinite(b_hi) \
            & (b_lo > 0) & (b_hi > 0) & (o_lo >= 0)
        lo[far], hi[far], source[far] = o_lo[far] / b_hi[far], o_hi[far] / b_lo[far], "case CIs"
    return pd.DataFrame({"ratio": ratio, "ratio_ci_low": lo, "ratio_ci_high": hi, "ci_from": source},
                        index=others.index)


# ------------------------------------------------------------------------------------------------
# fractions of the floor
# ------------------------------------------------------------------------------------------------
@dataclass
class FloorTable:
    """One setup: its fractions of the floor (``FRACTION_COLUMNS``; empty where none) and sentences about
    what could not be held against a floor (``notes``; the first says why, where there is no table)."""

    setup: str
    fractions: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _patterns_text(patterns: Sequence[str]) -> str:
    return ", ".join(sorted({str(p) for p in patterns})) or "no"


def _no_floor_reason(part: pd.DataFrame) -> str:
    kinds = {str(k) for k in part["payload_kind"].dropna().unique()} if "payload_kind" in part else set()
    patterns = {str(p) for p in part["pattern"].unique()}
    floors = " and ".join(FLOORS)
    if kinds and not kinds & set(FLOOR_KINDS):
        return (f"No floor was measured in this setup: the floors ({floors}) carry {' and '.join(FLOOR_KINDS)} "
                f"payloads only (an {_patterns_text(kinds)} payload has no raw bytes without pickling), so no "
                f"fraction of the floor is shown.")
    if not patterns & {"roundtrip", "stream", "fanin"}:
        return (f"No floor was measured in this setup: it has {_patterns_text(patterns)} cases only, and the "
                f"floors ({floors}) run {' and '.join(FLOOR_PATTERNS)}, so no fraction of the floor is shown.")
    return (f"No floor ({floors}) was measured in this setup, so no fraction of the floor is shown: run them "
            f"in the same invocation as the others (ipcbench run -m ...,{','.join(FLOORS)}).")


def _one_way_cases(thr: pd.DataFrame) -> pd.DataFrame:
    """Stream cases (1 worker); for a mechanism without any, its fan-in cases with one producer."""
    stream = thr[(thr["pattern"] == "stream") & (thr["workers"] == 1)]
    fanin = thr[(thr["pattern"] == "fanin") & (thr["workers"] == 1) & ~thr["mechanism"].isin(set(stream["mechanism"]))]
    return pd.concat([stream, fanin])


def _floor_rows(label: str, table: str, cases: pd.DataFrame, floors: pd.DataFrame,
                rounds: RoundValues | None) -> pd.DataFrame:
    best = (floors.sort_values(["payload_bytes", "value"], ascending=[True, False], kind="stable")
            .drop_duplicates("payload_bytes").set_index("payload_bytes"))
    cases = cases[cases["payload_bytes"].isin(best.index)]
    if cases.empty:
        return pd.DataFrame(columns=FRACTION_COLUMNS)
    base = best.loc[cases["payload_bytes"].to_numpy()].reset_index()
    base.index = cases.index
    r = held_against(cases, base, FRACTION_METRIC, rounds)
    is_floor = (cases["mechanism"].to_numpy() == base["mechanism"].to_numpy())
    r.loc[is_floor, ["ratio_ci_low", "ratio_ci_high"]] = np.nan
    r.loc[is_floor, "ci_from"] = ""
    return pd.DataFrame({
        "setup": label, "table": table, "mechanism": cases["mechanism"].astype(str),
        "role": [role(m) for m in cases["mechanism"]], "pattern": cases["pattern"].astype(str),
        "workers": cases["workers"].astype(int), "payload_bytes": cases["payload_bytes"].astype(int),
        "value": cases["value"].astype(float), "floor": base["mechanism"].astype(str).to_numpy(),
        "floor_value": base["value"].astype(float).to_numpy(), "fraction": r["ratio"],
        "fraction_ci_low": r["ratio_ci_low"], "fraction_ci_high": r["ratio_ci_high"], "ci_from": r["ci_from"],
        "is_floor": is_floor,
    }, columns=FRACTION_COLUMNS)


def floor_tables(tidy: pd.DataFrame, rounds: RoundValues | None = None) -> list[FloorTable]:
    """Per setup of ``tidy`` (in ``setups`` order): each mechanism's throughput (msg/s) as a fraction of the
    best floor of its setup, pattern and payload size (module doc). ``table`` is ``"roundtrip"`` or
    ``"stream"`` (one-way: stream cases, or fan-in with one producer); ``rounds`` gives round-level CIs."""
    out = []
    for label, part in setups(tidy):
        thr = part[(part["metric"] == FRACTION_METRIC) & (part["value"] > 0) & (part["payload_bytes"] > 0)]
        thr = thr.drop_duplicates(["mechanism", "pattern", "payload_bytes", "workers"])   # a file listing a case twice
        floors = thr[thr["mechanism"].isin(FLOORS) & thr["pattern"].isin(FLOOR_PATTERNS) & (thr["workers"] == 1)]
        if floors.empty:
            out.append(FloorTable(label, pd.DataFrame(columns=FRACTION_COLUMNS), [_no_floor_reason(part)]))
            continue
        frames, notes = [], []
        for table in FLOOR_PATTERNS:
            cases = thr[(thr["pattern"] == "roundtrip") & (thr["workers"] == 1)] if table == "roundtrip" \
                else _one_way_cases(thr)
            fl = floors[floors["pattern"] == table]
            if cases.empty:
                continue
            if fl.empty:
                notes.append(f"{table}: no floor was measured for this pattern, so its "
                             f"{len(cases)} case(s) are not held against one.")
                continue
            rows = _floor_rows(label, table, cases, fl, rounds)
            missing = sorted(set(cases["payload_bytes"].astype(int)) - set(fl["payload_bytes"].astype(int)))
            if missing:
                notes.append(f"{table}: no floor at {', '.join(format_size(s) for s in missing)}, so those sizes "
                             f"have no fraction.")
            frames.append(rows)
        frames = [f for f in frames if len(f)]
        fractions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FRACTION_COLUMNS)
        out.append(FloorTable(label, fractions, notes))
    return out


# ------------------------------------------------------------------------------------------------
# Celery beside Pool
# ------------------------------------------------------------------------------------------------
@dataclass
class CeleryTable:
    """One setup with celery dispatch cases: ``latency`` (celery's p50 per task against pool_apply's) and
    ``throughput`` (against pool_apply_async's), both ``CELERY_COLUMNS``; ``notes`` name what has no
    counterpart."""

    setup: str
    latency: pd.DataFrame
    throughput: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _beside(part: pd.DataFrame, metric: str, pool: str, rounds: RoundValues | None) -> tuple[pd.DataFrame, list]:
    """celery's ``metric`` against ``pool``'s at each payload size and worker count of ``part`` (one setup),
    and the (size, workers) of celery cases without a counterpart."""
    d = part[(part["pattern"] == CELERY_PATTERN) & (part["metric"] == metric) & (part["value"] > 0)]
    key = ["payload_bytes", "workers"]
    cel = d[d["mechanism"] == CELERY].drop_duplicates(key).sort_values(key)
    ref = d[d["mechanism"] == pool].drop_duplicates(key)
    m = cel.reset_index(names="_i").merge(ref.reset_index(names="_i")[[*key, "_i"]], on=key, suffixes=("", "_pool"))
    matched = set(zip(m["payload_bytes"], m["workers"], strict=True))
    lost = [(int(s), int(w)) for s, w in zip(cel["payload_bytes"], cel["workers"], strict=True) if (s, w) not in matched]
    if m.empty:
        return pd.DataFrame(columns=CELERY_COLUMNS), lost
    others, bases = part.loc[m["_i"].to_list()], part.loc[m["_i_pool"].to_list()]
    r = held_against(others, bases, metric, rounds)
    out = pd.DataFrame({"payload_bytes": m["payload_bytes"].astype(int).to_numpy(),
                        "workers": m["workers"].astype(int).to_numpy(), "celery": others["value"].to_numpy(dtype=float),
                        "pool": bases["value"].to_numpy(dtype=float), "ratio": r["ratio"].to_numpy(),
                        "ratio_ci_low": r["ratio_ci_low"].to_numpy(), "ratio_ci_high": r["ratio_ci_high"].to_numpy(),
                        "ci_from": r["ci_from"].to_numpy()})
    out["difference"] = out["celery"] - out["pool"]
    return out[CELERY_COLUMNS], lost


def celery_tables(tidy: pd.DataFrame, rounds: RoundValues | None = None) -> list[CeleryTable]:
    """Per setup that has ``celery`` dispatch cases: its latency and throughput beside Pool (module doc)."""
    out = []
    for label, part in setups(tidy):
        if not ((part["mechanism"] == CELERY) & (part["pattern"] == CELERY_PATTERN)).any():
            continue
        latency, lost_l = _beside(part, "latency_p50", POOL_LATENCY, rounds)
        throughput, lost_t = _beside(part, FRACTION_METRIC, POOL_THROUGHPUT, rounds)
        notes = []
        missing = [(f"{POOL_LATENCY} and {POOL_THROUGHPUT} were", lost_l)] if lost_l and lost_l == lost_t else \
            [(f"{pool} was", lost) for pool, lost in ((POOL_LATENCY, lost_l), (POOL_THROUGHPUT, lost_t)) if lost]
        for who, lost in missing:
            shown = ", ".join(f"{format_size(s)} w{w}" for s, w in sorted(lost))
            notes.append(f"{who} not measured beside celery at {shown} (same payload size and worker count) in "
                         f"this setup: run ipcbench run -m celery,{POOL_LATENCY},{POOL_THROUGHPUT}.")
        out.append(CeleryTable(label, latency, throughput, notes))
    return out


__all__ = ["BASELINES", "CELERY", "CELERY_COLUMNS", "CELERY_PATTERN", "FLOORS", "FLOOR_KINDS", "FLOOR_PATTERNS",
           "FRACTION_COLUMNS", "FRACTION_METRIC", "POOL_LATENCY", "POOL_THROUGHPUT", "REFERENCES", "CeleryTable",
           "FloorTable", "RoundValues", "case_key", "celery_tables", "floor_tables", "held_against",
           "reference_label", "role"]
