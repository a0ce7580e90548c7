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
TARGET_CI = 0.05          # a headline metric's 95 % CI is "tight" within +-5 % of its estimate
HIGH_STEAL = 0.05         # a round whose CPUs lost more than this share of the window to the hypervisor


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
    """True when the log-latency density has two or more clear modes.

    A Gaussian KDE (scipy.stats.gaussian_kde) of log(samples), trimmed to the 1st-99th percentile so that
    a thin tail does not count as a mode; peaks found by scipy.signal.find_peaks with a prominence of at
    least 10 % of the highest peak. Needs >= 50 samples.
    """
    from scipy import signal, stats

    a = np.asarray(samples_ns, dtype=np.float64)
    a = a[a > 0]
    if a.size < 50:
        return False
    if a.size > max_points:
        a = a[np.linspace(0, a.size - 1, max_points).astype(int)]
    x = np.log(a)
    lo, hi = np.percentile(x, [1, 99])
    x = x[(x >= lo) & (x <= hi)]
    if x.size < 50 or np.ptp(x) == 0:
        return False
    kde = stats.gaussian_kde(x)
    grid = np.linspace(x.min(), x.max(), 256)
    dens = kde(grid)
    # pad with zeros so a mode at either edge of the range counts as a peak
    peaks, _ = signal.find_peaks(np.concatenate([[0.0], dens, [0.0]]), prominence=0.1 * dens.max())
    return len(peaks) >= 2


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


def summarize(rounds: list[dict], target_ci: float = TARGET_CI) -> tuple[dict[str, float], dict]:
    """Metrics and noise description of a case from its successful rounds; rounds weigh equally.

    Each round dict has ``samples_ns`` (all samples), ``ops``, ``window_ns``, ``bytes_per_op``, ``cpu_s``.
    Returns ``(metrics, noise)``: metrics by name (units in ``ipcbench.plan.metrics``), noise = per-round
    values, the round-level CIs of the headline metrics, percentiles left out and why, and flags.

    * ``latency_p50``: geometric mean of the rounds' medians, with a Student-t CI over rounds
      (``round_stats.round_estimate``); ``throughput_msgs`` likewise from the rounds' throughputs.
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

    headlines = [round_headline(r) for r in rounds]
    per_round_p50 = [p for p, _ in headlines if p is not None]
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

    per_round_tput = [tput for _, tput in headlines if tput is not None]
    if per_round_tput:
        est = round_estimate(per_round_tput)
        metrics["throughput_msgs"] = est.value
        metrics["throughput_bytes"] = est.value * rounds[0]["bytes_per_op"]
        record_ci("throughput_msgs", est)
    ops = sum(r["ops"] for r in rounds if r.get("ops") and r.get("cpu_s") is not None)
    cpu = sum(r["cpu_s"] for r in rounds if r.get("ops") and r.get("cpu_s") is not None)
    if ops:
        metrics["cpu_per_msg"] = cpu / ops

    lat_spread, tput_spread = spread(per_round_p50), spread(per_round_tput)
    if lat_spread is not None:
        metrics["latency_round_spread"] = lat_spread
    if tput_spread is not None:
        metrics["throughput_round_spread"] = tput_spread

    flags = []
    if any(w is None or w > target_ci for w in ci_rel.values()):
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
