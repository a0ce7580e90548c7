"""Compare result sets: matched cases -> a frame of ratios, confidence intervals and significance.

Pure: result-set dicts in (as ``frame.read_set`` returns them), a pandas frame out. No plotting, no files.

Matching. A case is keyed by ``mechanism, pattern, payload_kind, payload_bytes, workers`` plus
``start_method`` and ``python_version``, never by ``machine_id``. A dimension of the last two is left out of
the key ("matched across") when each side holds exactly one value of it and the values differ: that is
what the comparison is about (a fork run against a spawn run, Python 3.11 against 3.13). When a side holds
several values (a ``full`` run has every start method) the dimension stays in the key, so fork is compared
with fork and spawn with spawn. Cases found on one side only are reported, not compared; failed cases are
listed, not compared. A side may hold several result files of one machine: their samples are pooled and
their recorded values are combined by their median. A side holding several machines is refused.

Statistics (scipy.stats throughout), for every metric present on both sides:

* ``ratio`` = other / base of the recorded values (below 1 means "other is lower").
* Latency metrics (``latency_*``): the raw per-message samples stored in the rounds. ``p_value`` is a
  two-sided Mann-Whitney U test (``scipy.stats.mannwhitneyu``; unequal sizes are fine), one test per case
  shared by its latency metrics. The CI of the ratio of two percentiles follows Price & Bonett (2002): each
  side's distribution-free CI of the percentile (the order statistics ``scipy.stats.quantile_test`` picks,
  from ``scipy.stats.binom``) gives a standard error of its logarithm; the two combine into a normal CI of
  the log ratio. It costs a sort per case, so two full result sets compare in seconds (a bootstrap on
  2000 x 2000 samples per case would take minutes). ``latency_max`` gets no CI: one extreme sample.
* Round metrics (``throughput_*``, ``cpu_per_msg``): the per-round values are the samples, so there are few
  (2 in ``smoke``, 5 in ``full``). With fewer than ``MIN_ROUNDS`` per side there is no test and no CI
  (``p_value`` NaN). Otherwise Mann-Whitney U (exact for small samples: with 3 rounds per side its smallest
  p-value is 0.1, so nothing can be significant) and a percentile bootstrap CI (``scipy.stats.bootstrap``,
  ``BOOTSTRAP_RESAMPLES`` resamples, fixed seed) of the ratio of medians (of means for ``cpu_per_msg``).
* ``significant``: p_value < ``ALPHA`` and |ratio - 1| >= ``MIN_EFFECT`` and the CI excludes 1. Where any of
  them cannot be computed the answer is False, never a guess. ``better`` names the side that wins a
  significant difference (lower latency/CPU, higher throughput).
"""

from __future__ import annotations

import inspect
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import UserError
from .stats import PERCENTILES, UNITS
from .units import format_size

ALPHA = 0.05               # p-value below which a difference can count as significant
MIN_EFFECT = 0.05          # ... and only if |ratio - 1| is at least this (5 %)
CONFIDENCE = 0.95          # level of the ratio CIs
MIN_ROUNDS = 3             # per side, for tests on per-round values
MAX_TEST_SAMPLES = 1000    # per side for the U test on latency samples (the CIs use every stored sample)
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20240611

LATENCY_METRICS = ("latency_p50", "latency_p90", "latency_p99", "latency_p999", "latency_max")
ROUND_METRICS = ("throughput_msgs", "throughput_bytes", "cpu_per_msg")
METRICS = LATENCY_METRICS + ROUND_METRICS
DEFAULT_METRICS = ("latency_p50", "latency_p99", "throughput_msgs")
HIGHER_IS_BETTER = frozenset({"throughput_msgs", "throughput_bytes"})
QUANTILES = {m: q / 100 for m, q in PERCENTILES.items()}
# per-round samples of each round metric: bytes/s is msgs/s times the payload, so it shares their test
ROUND_SAMPLES = {"throughput_msgs": "throughput_msgs", "throughput_bytes": "throughput_msgs",
                 "cpu_per_msg": "cpu_per_msg"}

KEY_ALWAYS = ["mechanism", "pattern", "payload_kind", "payload_bytes", "workers"]
KEY_MAYBE = ["start_method", "python_version"]
SIDE_COLUMNS = ["start_method", "python_version", "machine_id"]
COLUMNS = ["base_set", "other_set", *KEY_ALWAYS,
           *[f"{s}_{c}" for c in SIDE_COLUMNS for s in ("base", "other")],
           "metric", "unit", "base", "other", "ratio", "ratio_ci_low", "ratio_ci_high", "p_value",
           "significant", "better", "n_base", "n_other", "samples_of", "base_flags", "other_flags"]


@dataclass
class Side:
    """One side of a comparison: a label (the path the user gave) and its result sets."""

    label: str
    sets: list[dict]


@dataclass
class Comparison:
    frame: pd.DataFrame                 # one row per matched case x metric, columns ``COLUMNS``
    base: str                           # label of the base side
    others: list[str]                   # labels of the other sides, in order
    sides: dict[str, str] = field(default_factory=dict)          # label -> "machine · Python · start method"
    key: dict[str, list[str]] = field(default_factory=dict)      # other label -> case columns matched on
    across: dict[str, list[str]] = field(default_factory=dict)   # other label -> dimensions matched across
    shown: dict[str, list[str]] = field(default_factory=dict)    # other label -> dims worth naming in labels
    matched: dict[str, int] = field(default_factory=dict)        # other label -> matched case count
    only_base: pd.DataFrame = None      # case columns + other_set: found only in base
    only_other: pd.DataFrame = None     # ... only in that other
    failed: pd.DataFrame = None         # failed cases of either side: side, result_set, case columns, error

    def summary(self) -> list[str]:
        """Plain sentences: what was matched, what is missing where, what failed."""
        lines = []
        for o in self.others:
            across = self.across.get(o) or []
            how = f", matched across {' and '.join(across)}" if across else ""
            lines.append(f"{o} vs {self.base}: {self.matched.get(o, 0)} case(s) compared{how}")
            dims = self.shown.get(o, [])
            ob = self.only_base[self.only_base.other_set == o]
            oo = self.only_other[self.only_other.other_set == o]
            if len(ob) or len(oo):
                lines.append(f"{_missing(ob, 'base', dims)}; {_missing(oo, 'other', dims)}")
        if len(self.failed):
            f = self.failed
            lines.append(f"{len(f)} failed case(s) not compared: " + "; ".join(
                f"{case_label(r, ['start_method'])} in {r['result_set']} ({r['error']})"
                for r in f.head(5).to_dict("records")) + ("; ..." if len(f) > 5 else ""))
        return lines


def case_label(row, dims=()) -> str:
    """``queue roundtrip 64 KiB w1`` (+ payload kind if not bytes, + the values of ``dims``)."""
    get = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    parts = [get("mechanism"), get("pattern"), format_size(int(get("payload_bytes"))), f"w{get('workers')}"]
    if get("payload_kind") not in (None, "bytes"):
        parts.append(get("payload_kind"))
    for dim in dims:
        v = get(dim) or get(f"base_{dim}")
        if v:
            parts.append(f"Python {v}" if dim == "python_version" else str(v))
    return " ".join(str(p) for p in parts)


def _missing(df: pd.DataFrame, side: str, dims) -> str:
    if not len(df):
        return f"none only in {side}"
    eg = ", ".join(case_label(r, dims) for r in df.head(3).to_dict("records"))
    return f"{len(df)} case(s) only in {side} (e.g. {eg}{', ...' if len(df) > 3 else ''})"


def describe(side: Side) -> str:
    """``vm-1 · Python 3.11.7 · fork · smoke``: what a side holds, for headers."""
    def join(values):
        return ",".join(sorted({str(v) for v in values if v is not None})) or "?"

    sets = side.sets
    return " · ".join([join(rs.get("machine_id") for rs in sets),
                       "Python " + join(rs.get("python", {}).get("python_version") for rs in sets),
                       join(rec["case"]["start_method"] for rs in sets for rec in rs["cases"]),
                       "preset " + join(rs.get("run", {}).get("preset") for rs in sets)])


# --- collecting one side ------------------------------------------------------------------------------

@dataclass
class _Cases:
    rows: list[dict]                       # key columns + side columns + flags + metric values
    latency: list[np.ndarray]              # stored samples (ns), pooled over rounds and files
    rounds: dict[str, list[np.ndarray]]    # throughput_msgs / cpu_per_msg -> per-round values
    failed: list[dict]


def _collect(side: Side) -> _Cases:
    machines = sorted({str(rs.get("machine_id") or rs.get("machine", {}).get("machine_id")) for rs in side.sets})
    if len(machines) > 1:
        raise UserError(f"{side.label} holds result sets of {len(machines)} machines ({', '.join(machines)}); "
                        f"give one machine's file or folder (results/<machine_id>/) per argument")
    merged: dict[tuple, dict] = {}
    failed = []
    for rs in side.sets:
        mid = rs.get("machine_id") or rs.get("machine", {}).get("machine_id")
        py = rs.get("python", {}).get("python_version")
        for rec in rs["cases"]:
            c = rec["case"]
            row = {**{k: c[k] for k in KEY_ALWAYS}, "start_method": c["start_method"], "python_version": py,
                   "machine_id": mid}
            if rec.get("status") != "ok":
                failed.append({**row, "error": rec.get("error"), "result_set": rs.get("_source", side.label)})
                continue
            k = tuple(row[c] for c in [*KEY_ALWAYS, *KEY_MAYBE])
            ok_rounds = [r for r in rec.get("rounds", []) if r.get("ok", True)]
            lat = [np.asarray(r["samples_ns"], dtype=np.int64) for r in ok_rounds if r.get("samples_ns")]
            values = {m: v["value"] for m, v in rec.get("metrics", {}).items() if m in METRICS}
            tput = np.asarray((rec.get("noise") or {}).get("round_throughput") or [], dtype=np.float64)
            per_round = {"throughput_msgs": tput,
                         "cpu_per_msg": np.asarray([r["cpu_s"] / r["ops"] for r in ok_rounds
                                                    if r.get("ops") and r.get("cpu_s") is not None])}
            flags = set((rec.get("noise") or {}).get("flags") or [])
            if k in merged:                # the same case again (another file of this machine): pool
                e = merged[k]
                e["lat"].extend(lat)
                for m, v in per_round.items():
                    e["per_round"][m].append(v)
                for m, v in values.items():
                    e["values"].setdefault(m, []).append(v)
                e["flags"] |= flags
            else:
                merged[k] = {"row": row, "lat": lat, "per_round": {m: [v] for m, v in per_round.items()},
                             "values": {m: [v] for m, v in values.items()}, "flags": flags}
    out = _Cases([], [], {m: [] for m in set(ROUND_SAMPLES.values())}, failed)
    for e in merged.values():
        out.rows.append({**e["row"], "flags": ",".join(sorted(e["flags"])),
                         **{m: v[0] if len(v) == 1 else float(np.median(v)) for m, v in e["values"].items()}})
        out.latency.append(_join(e["lat"]))
        for m in out.rounds:
            out.rounds[m].append(_join(e["per_round"][m]))
    return out


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def match_dimensions(base: Side, other: Side) -> tuple[list[str], list[str]]:
    """(key, across): the case columns to match on, and the dimensions matched across (see module doc)."""
    def values(side: Side, dim: str) -> set:
        if dim == "python_version":
            return {rs.get("python", {}).get("python_version") for rs in side.sets}
        return {rec["case"][dim] for rs in side.sets for rec in rs["cases"]}

    across = []
    for dim in KEY_MAYBE:
        vb, vo = values(base, dim), values(other, dim)
        if len(vb) == 1 and len(vo) == 1 and vb != vo:
            across.append(dim)
    return [*KEY_ALWAYS, *(d for d in KEY_MAYBE if d not in across)], across


# --- statistics ---------------------------------------------------------------------------------------

def _by_shape(xs: list[np.ndarray], ys: list[np.ndarray], min_n: int):
    """Group case indices by (len x, len y) so each group is one vectorized scipy call."""
    groups = defaultdict(list)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if len(x) >= min_n and len(y) >= min_n:
            groups[(len(x), len(y))].append(i)
    for idx in groups.values():
        yield idx, np.stack([xs[i] for i in idx]), np.stack([ys[i] for i in idx])


def _thin(samples: np.ndarray, cap: int = MAX_TEST_SAMPLES) -> np.ndarray:
    """At most ``cap`` samples, evenly spaced in time (as the runner stores them): keeps the test cheap."""
    if len(samples) <= cap:
        return samples
    return samples[np.linspace(0, len(samples) - 1, cap).round().astype(int)]


def mann_whitney(xs: list[np.ndarray], ys: list[np.ndarray], min_n: int = 1) -> np.ndarray:
    """Two-sided Mann-Whitney U p-value for each pair of samples; NaN where a side has < min_n values."""
    from scipy import stats

    p = np.full(len(xs), np.nan)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for idx, x, y in _by_shape(xs, ys, min_n):
            p[idx] = stats.mannwhitneyu(x, y, axis=1, alternative="two-sided", method="auto").pvalue
    return p


def quantile_ci_ranks(n: np.ndarray, q: float, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """0-based order-statistic indices bounding the distribution-free CI of quantile ``q``, per sample size.

    The same indices ``scipy.stats.quantile_test(...).confidence_interval()`` uses (two-sided), vectorized
    over sample sizes; -1 or >= n where the CI does not exist (too few samples for that quantile).
    """
    from scipy import stats

    a = (1 - confidence) / 2
    n = np.asarray(n)
    return stats.binom.ppf(a, n, q).astype(int) - 1, stats.binom.isf(a, n, q).astype(int)


def latency_ratio_ci(base: list[np.ndarray], other: list[np.ndarray], ratio: np.ndarray, q: float,
                     confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """CI of other/base quantile ``q`` (Price & Bonett 2002 on the log scale), centred on ``ratio``."""
    from scipy import stats

    z = stats.norm.ppf(0.5 + confidence / 2)

    def log_se(samples: list[np.ndarray]) -> np.ndarray:
        n = np.array([len(s) for s in samples])
        lo, hi = quantile_ci_ranks(n, q, confidence)
        out = np.full(len(samples), np.nan)
        for i, s in enumerate(samples):
            if 0 <= lo[i] and hi[i] < n[i] and s[lo[i]] > 0:
                out[i] = (np.log(s[hi[i]]) - np.log(s[lo[i]])) / (2 * z)
        return out

    with np.errstate(all="ignore"):
        half = z * np.sqrt(log_se(base) ** 2 + log_se(other) ** 2)
        return ratio * np.exp(-half), ratio * np.exp(half)


def _bootstrap_kwargs() -> dict:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    from scipy import stats

    return {"rng": rng} if "rng" in inspect.signature(stats.bootstrap).parameters else {"random_state": rng}


def _median(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """np.median for short rows (per-round values): a full sort beats partition there, 3x on 1000 x 5."""
    s = np.sort(a, axis=axis)
    n = s.shape[axis]
    return (np.take(s, (n - 1) // 2, axis=axis) + np.take(s, n // 2, axis=axis)) / 2


def round_ratio_ci(base: list[np.ndarray], other: list[np.ndarray], center=_median,
                   confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile-bootstrap CI of center(other)/center(base) from per-round values (>= MIN_ROUNDS a side).

    Returns (estimate, low, high) per pair; NaN where a side has fewer than ``MIN_ROUNDS`` values.
    """
    from scipy import stats

    def ratio(b, o, axis=-1):
        return center(o, axis=axis) / center(b, axis=axis)

    est, lo, hi = (np.full(len(base), np.nan) for _ in range(3))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for idx, b, o in _by_shape(base, other, MIN_ROUNDS):
            res = stats.bootstrap((b, o), ratio, n_resamples=BOOTSTRAP_RESAMPLES, batch=250, vectorized=True,
                                  axis=-1, method="percentile", confidence_level=confidence,
                                  **_bootstrap_kwargs())
            est[idx] = ratio(b, o)
            lo[idx], hi[idx] = res.confidence_interval.low, res.confidence_interval.high
    return est, lo, hi


@dataclass
class _Tests:
    """Per matched pair: p-value, CI factors (CI / estimate, so a CI can be centred on a recorded ratio), n."""

    p: np.ndarray
    lo_factor: np.ndarray
    hi_factor: np.ndarray
    n_base: np.ndarray
    n_other: np.ndarray


def _round_tests(xb: list[np.ndarray], xo: list[np.ndarray], center) -> _Tests:
    est, lo, hi = round_ratio_ci(xb, xo, center)
    with np.errstate(all="ignore"):
        return _Tests(mann_whitney(xb, xo, MIN_ROUNDS), lo / est, hi / est,
                      np.array([len(x) for x in xb]), np.array([len(x) for x in xo]))


def _metric_rows(metric: str, b: _Cases, o: _Cases, ib: np.ndarray, io: np.ndarray, tests) -> pd.DataFrame | None:
    """Rows of one metric; ``tests(metric)`` gives the latency samples or the cached round tests."""
    vb = np.array([b.rows[i].get(metric, np.nan) for i in ib], dtype=float)
    vo = np.array([o.rows[i].get(metric, np.nan) for i in io], dtype=float)
    keep = np.isfinite(vb) & np.isfinite(vo) & (vb > 0) & (vo >= 0)
    if not keep.any():
        return None
    with np.errstate(all="ignore"):
        ratio = vo / vb
    if metric in LATENCY_METRICS:
        p, sorted_b, sorted_o = tests(metric)
        n_b, n_o = np.array([len(x) for x in sorted_b]), np.array([len(x) for x in sorted_o])
        if metric in QUANTILES:
            lo, hi = latency_ratio_ci(sorted_b, sorted_o, ratio, QUANTILES[metric])
        else:
            lo = hi = np.full(len(ib), np.nan)
        kind = "messages"
    else:
        t = tests(metric)
        p, n_b, n_o = t.p, t.n_base, t.n_other
        lo, hi = ratio * t.lo_factor, ratio * t.hi_factor
        kind = "rounds"
    with np.errstate(invalid="ignore"):
        sig = (p < ALPHA) & (np.abs(ratio - 1) >= MIN_EFFECT) & ((lo > 1) | (hi < 1))
    lower_wins = (ratio > 1) if metric in HIGHER_IS_BETTER else (ratio < 1)
    better = np.where(sig, np.where(lower_wins, "other", "base"), "")
    df = pd.DataFrame({"metric": metric, "unit": UNITS.get(metric, ""), "base": vb, "other": vo,
                       "ratio": ratio, "ratio_ci_low": lo, "ratio_ci_high": hi, "p_value": p,
                       "significant": sig, "better": better, "n_base": n_b, "n_other": n_o,
                       "samples_of": kind, "_i": np.arange(len(ib))})
    return df[keep]


def compare_pair(base: Side, other: Side, metrics=METRICS) -> tuple[pd.DataFrame, dict]:
    """One other side against the base: (rows of ``COLUMNS``, info with key/across/only_* frames)."""
    key, across = match_dimensions(base, other)
    b, o = _collect(base), _collect(other)
    bk = pd.DataFrame(b.rows, columns=[*KEY_ALWAYS, *KEY_MAYBE]).reset_index(names="_ib")
    ok = pd.DataFrame(o.rows, columns=[*KEY_ALWAYS, *KEY_MAYBE]).reset_index(names="_io")
    both = bk.merge(ok, on=key, how="outer", suffixes=("_b", "_o"), indicator=True)
    failed_keys = {tuple(f[c] for c in key) for f in [*b.failed, *o.failed]}

    def only(which: str) -> pd.DataFrame:
        df = both[both["_merge"] == which]
        df = df[np.array([tuple(r) not in failed_keys for r in df[key].itertuples(index=False)], dtype=bool)]
        suffix = "_b" if which == "left_only" else "_o"
        out = df[key].copy()
        for dim in across:
            out[dim] = df[dim + suffix]
        return out[[*KEY_ALWAYS, *KEY_MAYBE]].assign(other_set=other.label)

    m = both[both["_merge"] == "both"]
    ib, io = m["_ib"].to_numpy(dtype=int), m["_io"].to_numpy(dtype=int)
    cache: dict = {}

    def tests(metric: str):            # computed once per kind of samples, only when a metric needs them
        src = "latency" if metric in LATENCY_METRICS else ROUND_SAMPLES[metric]
        if src not in cache:
            if src == "latency":
                p = mann_whitney([_thin(b.latency[i]) for i in ib], [_thin(o.latency[i]) for i in io])
                cache[src] = (p, [np.sort(b.latency[i]) for i in ib], [np.sort(o.latency[i]) for i in io])
            else:
                center = np.mean if src == "cpu_per_msg" else _median
                cache[src] = _round_tests([b.rounds[src][i] for i in ib], [o.rounds[src][i] for i in io], center)
        return cache[src]

    parts = [r for r in (_metric_rows(m, b, o, ib, io, tests) for m in metrics) if r is not None]
    shown = [d for d in KEY_MAYBE if d in key and len({r[d] for r in [*b.rows, *o.rows]}) > 1]
    info = {"key": key, "across": across, "shown": shown, "matched": len(m), "only_base": only("left_only"),
            "only_other": only("right_only"),
            "failed": [{**f, "side": side} for side, c in (("base", b), ("other", o)) for f in c.failed]}
    if not parts:
        return pd.DataFrame(columns=COLUMNS), info
    stat = pd.concat(parts, ignore_index=True)
    cases = pd.DataFrame({
        "base_set": base.label, "other_set": other.label,
        **{c: [b.rows[i][c] for i in ib] for c in KEY_ALWAYS},
        **{f"base_{c}": [b.rows[i][c] for i in ib] for c in SIDE_COLUMNS},
        **{f"other_{c}": [o.rows[i][c] for i in io] for c in SIDE_COLUMNS},
        "base_flags": [b.rows[i]["flags"] for i in ib], "other_flags": [o.rows[i]["flags"] for i in io],
    })
    out = stat.join(cases, on="_i")
    order = {m: i for i, m in enumerate(METRICS)}
    out = out.assign(_m=out.metric.map(order)).sort_values(
        [*KEY_ALWAYS, "base_start_method", "base_python_version", "_m"], kind="stable")
    return out[COLUMNS].reset_index(drop=True), info


def check_metrics(metrics) -> tuple[str, ...]:
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise UserError(f"cannot compare metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    return tuple(metrics)


def compare(base: Side, others: list[Side], metrics=METRICS) -> Comparison:
    """Each other side against the base. ``metrics``: which to compute (fewer is faster)."""
    metrics = check_metrics(metrics)
    comp = Comparison(pd.DataFrame(columns=COLUMNS), base.label, [o.label for o in others],
                      sides={s.label: describe(s) for s in [base, *others]})
    frames, only_b, only_o, failed = [], [], [], []
    for other in others:
        df, info = compare_pair(base, other, metrics)
        frames.append(df)
        comp.key[other.label], comp.across[other.label] = info["key"], info["across"]
        comp.shown[other.label], comp.matched[other.label] = info["shown"], info["matched"]
        only_b.append(info["only_base"])
        only_o.append(info["only_other"])
        failed.extend(f for f in info["failed"] if f["side"] == "other" or other is others[0])
    frames = [f for f in frames if len(f)]
    comp.frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    comp.frame = comp.frame.astype({"significant": bool})
    cols = [*KEY_ALWAYS, *KEY_MAYBE, "other_set"]
    comp.only_base = pd.concat(only_b, ignore_index=True) if only_b else pd.DataFrame(columns=cols)
    comp.only_other = pd.concat(only_o, ignore_index=True) if only_o else pd.DataFrame(columns=cols)
    comp.failed = pd.DataFrame(failed, columns=["side", "result_set", *KEY_ALWAYS, *KEY_MAYBE, "machine_id",
                                                "error"])
    return comp


def compare_sets(sets: list[dict], metrics=METRICS) -> Comparison:
    """Every result set against the first, one set per side, labelled by its source file."""
    if len(sets) < 2:
        raise UserError("a comparison needs at least two result sets")
    sides = [Side(str(rs.get("_source") or rs.get("machine_id") or f"set {i}"), [rs]) for i, rs in enumerate(sets)]
    return compare(sides[0], sides[1:], metrics)
