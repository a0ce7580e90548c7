"""Compare result sets: matched cases -> a frame of ratios, confidence intervals and significance.

Pure: result-set dicts in (as ``frame.read_set`` returns them), a pandas frame out. No plotting, no files.

Matching. A case is keyed by ``mechanism, pattern, payload_kind, payload_bytes, workers`` plus
``start_method``, ``python_version`` and ``placement``, never by ``machine_id``. A dimension of the last three is
left out of the key ("matched across") when each side holds exactly one value of it and the values differ: that is
what the comparison is about (a fork run against a spawn run, Python 3.11 against 3.13). When a side holds
several values (a ``full`` run has every start method) the dimension stays in the key, so fork is compared
with fork and spawn with spawn. Cases found on one side only are reported, not compared; failed cases are
listed, not compared. A side may hold several result files of one machine: their rounds are pooled and
their recorded values are combined by their median. A side holding several machines is refused.

Statistics (scipy.stats throughout), for every metric present on both sides. Rounds are the unit of
replication (DESIGN.md rule 9): every test and CI is on per-round values, never on pooled messages.

* ``ratio`` = other / base of the recorded values (below 1 means "other is lower").
* Per-round values of a case: ``latency_p50`` the rounds' medians (as recorded in ``noise``), the other
  latency percentiles the same percentile of each round's stored samples, ``throughput_*`` the rounds'
  throughputs, ``cpu_per_msg`` each round's CPU time per operation. ``latency_max`` is not tested (one
  extreme sample). Rounds of several files of one side are pooled.
* ``p_value``: Welch's t-test on the log round values (``scipy.stats.ttest_ind(equal_var=False)``, unequal
  numbers of rounds and unequal spreads are fine); the CI of the ratio is that of the ratio of geometric
  means of round values, placed on the recorded ratio (``compare_stats.round_tests``). With fewer than
  ``MIN_ROUNDS`` rounds a side there is no test and no CI (``p_value`` NaN). ``n_base``/``n_other`` count
  rounds; few rounds give wide CIs, which is the honest answer.
* ``q_value``: the p-value adjusted for testing many cases at once (Benjamini-Hochberg false discovery
  rate, ``scipy.stats.false_discovery_control``), within one family: one other side x one metric, over every
  case with a p-value. A full preset compares ~1,000 cases per metric; at p < 0.05 about 50 cases that did
  not change would come out "different" by chance. With q < 0.05 at most 5 % of the differences called
  significant are expected to be false.
* ``significant``: q_value < ``ALPHA`` and |ratio - 1| >= ``MIN_EFFECT`` and the CI excludes 1. Where any of
  them cannot be computed the answer is False, never a guess. ``better`` names the side that wins a
  significant difference (lower latency/CPU, higher throughput).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import UserError
from ..plan import metrics as registry
from ..plan.cases import case_name
from ..results.frame import machine_id_of, python_version_of
from ..results.schema import between_run_of
from .compare_stats import round_tests, round_values

ALPHA = 0.05               # p-value below which a difference can count as significant
MIN_EFFECT = 0.05          # ... and only if |ratio - 1| is at least this (5 %)

# what can be compared: the metrics with a better direction (plan.metrics), in the registry's order
LATENCY_METRICS = registry.names(kind="latency", comparable=True)
METRICS = registry.COMPARABLE
DEFAULT_METRICS = ("latency_p50", "latency_p99", "throughput_msgs")
# the per-round values each metric is tested on: bytes/s is msgs/s times the payload, so it shares their
# test; latency_max has none (one extreme sample)
ROUND_VALUES = {**{m: m for m in registry.PERCENTILES}, "throughput_msgs": "throughput_msgs",
                "throughput_bytes": "throughput_msgs", "cpu_per_msg": "cpu_per_msg"}

KEY_ALWAYS = ["mechanism", "pattern", "payload_kind", "payload_bytes", "workers"]
KEY_MAYBE = ["start_method", "python_version", "placement"]
_KEY = [*KEY_ALWAYS, *KEY_MAYBE]
SIDE_COLUMNS = ["start_method", "python_version", "placement", "machine_id"]
COLUMNS = ["base_set", "other_set", *KEY_ALWAYS,
           *[f"{s}_{c}" for c in SIDE_COLUMNS for s in ("base", "other")],
           "metric", "unit", "base", "other", "ratio", "ratio_ci_low", "ratio_ci_high", "p_value",
           "q_value", "significant", "better", "n_base", "n_other", "samples_of", "base_flags", "other_flags"]


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
                f"{case_label(r, ['start_method', 'placement'])} in {r['result_set']} ({r['error']})"
                for r in f.head(5).to_dict("records")) + ("; ..." if len(f) > 5 else ""))
        return lines


def case_label(row, dims=()) -> str:
    """``queue roundtrip 64 KiB w1`` (+ payload kind if not bytes, + the values of ``dims``)."""
    get = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    extra = []
    for dim in dims:
        v = get(dim) or get(f"base_{dim}")
        if v:
            extra.append(f"Python {v}" if dim == "python_version" else str(v))
    return case_name(get("mechanism"), get("pattern"), int(get("payload_bytes")), get("workers"),
                     get("payload_kind"), extra)


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
    return " · ".join([join(machine_id_of(rs) for rs in sets),
                       "Python " + join(python_version_of(rs) for rs in sets),
                       join(rec["case"]["start_method"] for rs in sets for rec in rs["cases"]),
                       join(rec["case"].get("placement", "os") for rs in sets for rec in rs["cases"]),
                       "preset " + join(rs.get("run", {}).get("preset") for rs in sets)])


# --- collecting one side ------------------------------------------------------------------------------

@dataclass
class _Cases:
    rows: list[dict]                       # key columns + side columns + flags + metric values
    rounds: dict[str, list[np.ndarray]]    # ROUND_VALUES source -> per case, its per-round values
    failed: list[dict]
    # ROUND_VALUES source -> per case, the variance (log scale) of its estimate beyond its rounds: the
    # between-run component its runs recorded (run.between_run, from the machine file), divided by the
    # number of runs pooled; 0 where none was recorded
    between: dict[str, list[float]] = field(default_factory=dict)


def _collect(side: Side) -> _Cases:
    machines = sorted({str(machine_id_of(rs)) for rs in side.sets})
    if len(machines) > 1:
        raise UserError(f"{side.label} holds result sets of {len(machines)} machines ({', '.join(machines)}); "
                        f"give one machine's file or folder (results/<machine_id>/) per argument")
    groups: dict[tuple, list] = {}      # case key (KEY_ALWAYS + KEY_MAYBE) -> [(machine_id, record), ...]
    failed: list[tuple[tuple, dict]] = []     # (case key, row)
    for rs in side.sets:
        mid, py = machine_id_of(rs), python_version_of(rs)
        for rec in rs["cases"]:
            c = rec["case"]
            k = (c["mechanism"], c["pattern"], c["payload_kind"], c["payload_bytes"], c["workers"],
                 c["start_method"], py, c.get("placement", "os"))
            if rec.get("status") == "ok":
                groups.setdefault(k, []).append((mid, rec, between_run_of(rs)))
            else:
                failed.append((k, {**dict(zip(_KEY, k, strict=True)), "machine_id": mid, "error": rec.get("error"),
                                   "result_set": rs.get("_source", side.label)}))
    # a case that failed in one file but was measured in another of this side is compared, not "failed"
    out = _Cases([], {src: [] for src in set(ROUND_VALUES.values())}, [f for k, f in failed if k not in groups])
    out.between = {src: [] for src in out.rounds}
    for k, recs in groups.items():         # several records: the same case in several files; pool their rounds
        for src, values in _round_values([rec for _, rec, _ in recs]).items():
            out.rounds[src].append(values)
            sds = [bw.get(src) or 0.0 for _, _, bw in recs]
            out.between[src].append(float(np.mean(np.square(sds))) / len(recs))
        row = dict(zip(_KEY, k, strict=True))
        row["machine_id"] = recs[0][0]
        row["flags"] = ",".join(sorted({fl for _, rec, _ in recs for fl in (rec.get("noise") or {}).get("flags") or ()}))
        for m in METRICS:
            v = [rec["metrics"][m]["value"] for _, rec, _ in recs if m in rec.get("metrics", {})]
            if v:
                row[m] = v[0] if len(v) == 1 else float(np.median(v))
        out.rows.append(row)
    return out


def _round_values(recs: list[dict]) -> dict[str, np.ndarray]:
    """Per-round values of one case (its records in one or more files): ROUND_VALUES source -> array."""
    rounds = [r for rec in recs for r in rec.get("rounds") or () if r.get("ok", True)]
    stored = [np.asarray(r.get("samples_ns") or (), dtype=np.float64) / 1e9 for r in rounds]
    out = {}
    for src in set(ROUND_VALUES.values()):
        if src == "latency_p50":
            noted = [v for rec in recs for v in (rec.get("noise") or {}).get("round_p50_s") or ()]
            values = np.array(noted, dtype=float) if noted else round_values(stored, 50)
        elif src in registry.PERCENTILES:
            values = round_values(stored, registry.PERCENTILES[src])
        elif src == "throughput_msgs":
            values = np.array([t for rec in recs for t in (rec.get("noise") or {}).get("round_throughput") or ()],
                              dtype=float)
        else:                               # cpu_per_msg
            values = np.array([r["cpu_s"] / r["ops"] for r in rounds if r.get("ops") and r.get("cpu_s") is not None],
                              dtype=float)
        out[src] = values
    return out


def match_dimensions(base: Side, other: Side) -> tuple[list[str], list[str]]:
    """(key, across): the case columns to match on, and the dimensions matched across (see module doc)."""
    def values(side: Side, dim: str) -> set:
        if dim == "python_version":
            return {python_version_of(rs) for rs in side.sets}
        return {rec["case"].get(dim, "os") for rs in side.sets for rec in rs["cases"]}

    across = []
    for dim in KEY_MAYBE:
        vb, vo = values(base, dim), values(other, dim)
        if len(vb) == 1 and len(vo) == 1 and vb != vo:
            across.append(dim)
    return [*KEY_ALWAYS, *(d for d in KEY_MAYBE if d not in across)], across


def _metric_rows(metric: str, b: _Cases, o: _Cases, ib: np.ndarray, io: np.ndarray, tests) -> pd.DataFrame | None:
    """Rows of one metric; ``tests(metric)`` gives the cached round tests (None: not tested)."""
    vb = np.array([b.rows[i].get(metric, np.nan) for i in ib], dtype=float)
    vo = np.array([o.rows[i].get(metric, np.nan) for i in io], dtype=float)
    keep = np.isfinite(vb) & np.isfinite(vo) & (vb > 0) & (vo >= 0)
    if not keep.any():
        return None
    with np.errstate(all="ignore"):
        ratio = vo / vb
    t = tests(metric)
    if t is None:                       # latency_max: no test
        p = lo = hi = np.full(len(ib), np.nan)
        n_b = np.array([len(b.rounds["latency_p50"][i]) for i in ib])
        n_o = np.array([len(o.rounds["latency_p50"][i]) for i in io])
    else:
        p, n_b, n_o = t.p, t.n_base, t.n_other
        lo, hi = ratio * t.lo_factor, ratio * t.hi_factor
    kind = "rounds"
    q = fdr_adjust(np.where(keep, p, np.nan))
    with np.errstate(invalid="ignore"):
        sig = (q < ALPHA) & (np.abs(ratio - 1) >= MIN_EFFECT) & ((lo > 1) | (hi < 1))
    lower_wins = (ratio > 1) if registry.higher_is_better(metric) else (ratio < 1)
    better = np.where(sig, np.where(lower_wins, "other", "base"), "")
    df = pd.DataFrame({"metric": metric, "unit": registry.unit(metric), "base": vb, "other": vo,
                       "ratio": ratio, "ratio_ci_low": lo, "ratio_ci_high": hi, "p_value": p,
                       "q_value": q, "significant": sig, "better": better, "n_base": n_b, "n_other": n_o,
                       "samples_of": kind, "_i": np.arange(len(ib))})
    return df[keep]


def fdr_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values of the finite entries of ``p``; NaN stays NaN."""
    from scipy import stats

    q = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q


def compare_pair(base: Side, other: Side, metrics=METRICS, collected: _Cases | None = None
                 ) -> tuple[pd.DataFrame, dict]:
    """One other side against the base: (rows of ``COLUMNS``, info with key/across/only_* frames)."""
    key, across = match_dimensions(base, other)
    b, o = collected or _collect(base), _collect(other)
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

    def tests(metric: str):            # computed once per kind of round values, only when a metric needs them
        src = ROUND_VALUES.get(metric)
        if src is None:
            return None
        if src not in cache:
            extra = [b.between[src][i] + o.between[src][j] for i, j in zip(ib, io)]
            cache[src] = round_tests([b.rounds[src][i] for i in ib], [o.rounds[src][i] for i in io], extra_var=extra)
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
    collected = _collect(base)
    for other in others:
        df, info = compare_pair(base, other, metrics, collected)
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
