"""What a result file records about a case: its metrics and noise, from its rounds. Pure functions.

Rounds are the unit of replication (DESIGN.md rule 9; ``round_stats``): the headline estimates and their
confidence intervals come from per-round values, each round weighing the same; percentiles are of
single-operation samples (never batch means), with every round weighing the same, and only where the
samples support them. Noise is described, not removed: per-round values, CIs against a target, the spread
and variation between rounds run in fresh processes, and a bimodality check.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from ..plan.metrics import PERCENTILES
from .round_stats import round_estimate, supported_percentile

NOISY_CV = 0.10           # sd of log per-round values (~ coefficient of variation) above this -> "noisy"
FEW_SAMPLES = 100         # below this, p90 and beyond are not reported and the case is flagged
PACE_LATE = 0.05          # a stream round whose paced producer sent more than this share late -> "pace_missed"
TARGET_CI = 0.05          # a headline metric's 95 % CI is "tight" within +-5 % of its estimate
HIGH_STEAL = 0.05         # a round whose CPUs lost more than this share of the window to the hypervisor
BIMODAL_P = 0.01          # dip test p-value below this -> not unimodal ...
BIMODAL_MIN_DIP = 0.015   # ... and "bimodal" only if the dip statistic is at least this (is_bimodal)


def round_cv(values: Sequence[float]) -> float | None:
    """Standard deviation of the logs of positive per-round values (about their coefficient of variation
    for small spreads); None with fewer than two rounds."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x) and x > 0], dtype=np.float64)
    if v.size < 2:
        return None
    return float(np.log(v).std(ddof=1))


def spread(values: Sequence[float]) -> float | None:
    """(max - min) / median of per-round values; None with fewer than two rounds."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    if len(v) < 2:
        return None
    med = float(np.median(v))
    return float((max(v) - min(v)) / med) if med > 0 else None


def is_bimodal(samples_ns: Sequence[int], max_points: int = 4000) -> bool:
    """True when Hartigan's dip test rejects a unimodal log-latency distribution by a margin that matters.

    ``diptest.diptest`` (Hartigan & Hartigan 1985) on log(samples) of the positive samples, evenly thinned
    to ``max_points`` (deterministic); False with fewer than 50. The p-value is interpolated from the
    tabulated critical values (``boot_pval=False``: no bootstrap, so deterministic). Bimodal needs
    p < ``BIMODAL_P`` and a dip (the sup distance from the ECDF to the nearest unimodal CDF) of at least
    ``BIMODAL_MIN_DIP``: p < 0.01 alone needs a dip of 0.081 at 50 samples, 0.020 at 1,000, 0.014 at
    2,000 but only 0.0099 at 4,000, so with many samples the test rejects departures too small to call
    two modes; the minimum dip keeps the flag's meaning from changing with the sample count (it binds from
    about 1,800 samples). Measured (numpy seeds 0-2; n = 2,000 / 4,000): one log-normal, sigma 0.1 or 0.3,
    dips 0.004-0.006 / 0.003-0.004 (p > 0.9); with 2 % outliers at 10x 0.004-0.005 / 0.004; with 5 % at
    10x 0.011-0.012 (p 0.05-0.11) / 0.011 (p 0.002-0.004: rejected, not flagged thanks to the minimum
    dip); with 8 % at 10x (n = 4,000) 0.018. Modes at 30 and 60 µs (sigma 0.1 each) dip 0.11 at 50/50,
    0.039-0.043 at 80/20, 0.021 / 0.018-0.020 at 90/10; 80/20 with sigma 0.15, 0.020-0.022 / 0.018-0.020
    (p < 1e-5). 0.015 lies between the 5 % outlier cluster and the weakest of these mixtures. On the
    reference VM's stored runs (results/vm-003596: 938 cases, about 2,000 samples each, where the two
    thresholds nearly coincide) 239 have p < 0.01, with dips from 0.0140; the 14 below 0.015 look like
    their neighbours just above it (broad, lumpy): there is no natural break in that range.

    Ties: samples are integer nanoseconds, often on a coarse grid (lock hand-offs of 160-300 ns in 10 ns
    steps), and a step-shaped ECDF is far from every unimodal CDF. Unimodal log-normals rounded to a grid
    dip, untreated: 0.005-0.007 at 30 µs / 100 ns (fine), but 0.024-0.027 at 30 µs / 1 µs and at
    3 µs / 100 ns, 0.095-0.098 at 1 µs / 100 ns, all p ~ 0. So each run of k equal values is spread evenly over
    the interval between the midpoints to its neighbouring distinct values (deterministic; the ECDF
    becomes piecewise linear there; values without ties stay). That brings those cases to 0.0003-0.005,
    changes tie-free samples not at all, and keeps real modes: the 30/60 µs 50/50 mix rounded to 100 ns
    still dips 0.11, and the reference VM's 1-worker lock case (humps at 170-210 and 250-290 ns) goes from
    0.063 to 0.024.
    """
    import diptest

    a = np.asarray(samples_ns, dtype=np.float64)
    a = a[a > 0]
    if a.size < 50:
        return False
    if a.size > max_points:
        a = a[np.linspace(0, a.size - 1, max_points).astype(int)]
    x = np.sort(np.log(a))
    u, first, counts = np.unique(x, return_index=True, return_counts=True)
    if u.size < 2:
        return False
    if u.size < x.size:                                     # spread each run of ties between midpoints
        gaps = np.diff(u)
        below = np.concatenate([gaps[:1], gaps]) / 2
        above = np.concatenate([gaps, gaps[-1:]]) / 2
        k = np.repeat(counts, counts)
        rank = np.arange(x.size) - np.repeat(first, counts)
        spread_x = np.repeat(u - below, counts) + np.repeat(below + above, counts) * (rank + 0.5) / k
        x = np.where(k > 1, spread_x, x)
    dip, p = diptest.diptest(x, sort_x=False, boot_pval=False)
    return bool(p < BIMODAL_P and dip >= BIMODAL_MIN_DIP)


def bounded(samples: Sequence[int] | np.ndarray, cap: int) -> list[int] | np.ndarray:
    """At most ``cap`` samples, evenly spaced through the round (keeps time order; deterministic).

    A list in, a list of ints out (as stored in result files); a numpy array in, an array out (no copy
    when it is short enough), as the comparison's tests take it."""
    n = len(samples)
    if isinstance(samples, np.ndarray):
        return samples if n <= cap else samples[_even_index(n, cap)]
    if n <= cap:
        return list(samples)
    return [int(samples[i]) for i in _even_index(n, cap)]


@functools.lru_cache(maxsize=256)
def _even_index(n: int, cap: int) -> np.ndarray:
    return np.linspace(0, n - 1, cap).round().astype(int)


def round_headline(rnd: dict) -> tuple[float | None, float | None]:
    """A round's median latency (s) and throughput (ops/s): the per-round values the headline estimates
    and CIs are made of (here, and in the runner's decision to run another round)."""
    samples = rnd.get("samples_ns")
    p50 = float(np.median(np.asarray(samples, dtype=np.float64) / 1e9)) if samples is not None and len(samples) else None
    ops, window = rnd.get("ops"), rnd.get("window_ns")
    return p50, (ops / (window / 1e9) if ops and window else None)


def steal_fraction(rnd: dict) -> float | None:
    """Share of a round's CPU time (over ``steal_span_s`` on ``steal_cpus`` CPUs) stolen by the hypervisor."""
    s, span, cpus = rnd.get("steal_s"), rnd.get("steal_span_s"), rnd.get("steal_cpus")
    if s is None or not span or not cpus:
        return None
    return s / (span * cpus)


def busy(rnd: dict) -> bool:
    """Other work was runnable when the round started: at least as many runnable processes besides the
    runner (``procs_running`` counts it) as the round's CPUs."""
    running, cpus = rnd.get("procs_running"), rnd.get("steal_cpus")
    return running is not None and bool(cpus) and running - 1 >= cpus


def summarize(rounds: list[dict], target_ci: float = TARGET_CI,
              round_values: tuple[list[float], list[float]] | None = None) -> tuple[dict[str, float], dict]:
    """Metrics and noise description of a case from its successful rounds; rounds weigh equally.

    Each round dict has ``samples_ns`` (all samples), ``ops``, ``window_ns``, ``bytes_per_op``, ``cpu_s``.
    Returns ``(metrics, noise)``: metrics by name (units in ``ipcbench.plan.metrics``), noise = per-round
    values, the round-level CIs of the headline metrics, percentiles left out and why, and flags.

    * ``latency_p50``: geometric mean of the rounds' medians, with a Student-t CI over rounds
      (``round_stats.round_estimate``); ``throughput_msgs`` likewise from the rounds' throughputs.
      ``round_values``: (medians, throughputs) of the rounds as recorded when they ran, for rounds whose
      stored samples are a subsample (``pooling``); by default both come from the rounds given.
    * ``latency_p90/p99/p999``: percentiles of all samples with each round weighing the same, reported
      only from enough samples (``round_stats.min_samples``: p99 needs 1,000); ``latency_max``: the largest.
    * flags: ``wide_ci`` (a headline CI wider than +-``target_ci``, or none: too few rounds), ``noisy``
      (rounds' values vary by more than ``NOISY_CV``), ``bimodal``, ``few_samples``, ``steal`` (a round
      lost more than ``HIGH_STEAL`` of its CPU time to the hypervisor), ``busy`` (other work was runnable
      when at least half of the rounds started: on an idle 2-vCPU machine ~6 % of rounds start next to
      the run's own exiting processes, which is no reason to flag a case). Rounds are flagged, never
      dropped: ``round_steal`` and ``busy_rounds`` say which.
    """
    with_samples = [np.asarray(r["samples_ns"], dtype=np.float64) / 1e9 for r in rounds if len(r["samples_ns"])]
    metrics: dict[str, float] = {}
    omitted: dict[str, str] = {}
    ci: dict[str, list[float] | None] = {}
    ci_rel: dict[str, float | None] = {}

    def record_ci(name: str, est) -> None:
        ok = est is not None and math.isfinite(est.low)
        ci[name] = [est.low, est.high] if ok else None
        ci_rel[name] = est.rel_half_width if ok else None

    if round_values is None:
        headlines = [round_headline(r) for r in rounds]
        per_round_p50 = [p for p, _ in headlines if p is not None]
        per_round_tput = [tput for _, tput in headlines if tput is not None]
    else:           # recorded per-round values, where the rounds' stored samples are a subsample (pooling)
        per_round_p50, per_round_tput = list(round_values[0]), list(round_values[1])
    if with_samples:
        est = round_estimate(per_round_p50)
        metrics["latency_p50"] = est.value
        record_ci("latency_p50", est)
        for name, q in PERCENTILES.items():
            if name == "latency_p50":
                continue
            value, why = supported_percentile(with_samples, q)
            if value is None:
                omitted[name] = why
            else:
                metrics[name] = value
        metrics["latency_max"] = float(max(s.max() for s in with_samples))
    pooled_n = sum(len(s) for s in with_samples)
    metrics["samples"] = float(pooled_n)

    if per_round_tput:
        est = round_estimate(per_round_tput)
        metrics["throughput_msgs"] = est.value
        metrics["throughput_bytes"] = est.value * rounds[0]["bytes_per_op"]
        record_ci("throughput_msgs", est)
    ops = sum(r["ops"] for r in rounds if r.get("ops") and r.get("cpu_s") is not None)
    cpu = sum(r["cpu_s"] for r in rounds if r.get("ops") and r.get("cpu_s") is not None)
    if ops:
        metrics["cpu_per_msg"] = cpu / ops
    oneway = [(r.get("params") or {}).get("oneway_p50_ns") for r in rounds]
    oneway = [v / 1e9 for v in oneway if v is not None and v > 0]
    if oneway:
        est = round_estimate(oneway)
        metrics["latency_oneway_p50"] = est.value
        record_ci("latency_oneway_p50", est)
    firsts = [v for r in rounds for v in ((r.get("params") or {}).get("first_call_ns") or ())]
    if firsts:
        metrics["latency_first_call"] = float(np.median(firsts)) / 1e9
    counted = [r for r in rounds if r.get("ops") and r.get("minor_faults") is not None]
    if counted:
        metrics["faults_per_msg"] = sum(r["minor_faults"] for r in counted) / sum(r["ops"] for r in counted)

    lat_spread, tput_spread = spread(per_round_p50), spread(per_round_tput)
    if lat_spread is not None:
        metrics["latency_round_spread"] = lat_spread
    if tput_spread is not None:
        metrics["throughput_round_spread"] = tput_spread

    flags = []
    if any(w is None or w > target_ci for m, w in ci_rel.items() if m in ("latency_p50", "throughput_msgs")):
        flags.append("wide_ci")
    if any(c is not None and c > NOISY_CV for c in (round_cv(per_round_p50), round_cv(per_round_tput))):
        flags.append("noisy")
    if with_samples and is_bimodal(np.concatenate(with_samples)):
        flags.append("bimodal")
    if with_samples and pooled_n < FEW_SAMPLES:
        flags.append("few_samples")
    round_steal = [steal_fraction(r) for r in rounds]
    busy_rounds = [i for i, r in enumerate(rounds) if busy(r)]
    if any(s is not None and s > HIGH_STEAL for s in round_steal):
        flags.append("steal")
    if busy_rounds and 2 * len(busy_rounds) >= len(rounds):     # systematic, not a round's neighbour
        flags.append("busy")
    if any(((r.get("params") or {}).get("paced_late") or 0) > PACE_LATE for r in rounds):
        flags.append("pace_missed")
    noise = {
        "rounds": len(rounds),
        "round_p50_s": per_round_p50,
        "round_throughput": per_round_tput,
        "ci": ci,
        "ci_rel": ci_rel,
        "target_ci": target_ci,
        "omitted": omitted,
        "round_steal": round_steal,
        "busy_rounds": busy_rounds,
        "flags": flags,
    }
    return metrics, noise
