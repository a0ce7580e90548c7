"""Statistics on raw samples: pure functions, numbers in, numbers out. No I/O, no plotting.

Percentiles come from per-message samples pooled over rounds (never from batch means). Noise is
described, not removed: the spread between rounds run in fresh processes, a distribution-free
confidence interval for the median, and a bimodality check.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from ..plan.metrics import PERCENTILES

NOISY_SPREAD = 0.20       # (max - min) / median of per-round values above this -> "noisy"
FEW_SAMPLES = 100         # below this, p99 and beyond are little more than the maximum


def latency_metrics(samples_ns: Sequence[int]) -> dict[str, float]:
    """Percentiles and max of single-operation samples, in seconds."""
    a = np.asarray(samples_ns, dtype=np.float64) / 1e9
    if a.size == 0:
        return {}
    out = {name: float(np.percentile(a, q)) for name, q in PERCENTILES.items()}
    out["latency_max"] = float(a.max())
    return out


def spread(values: Sequence[float]) -> float | None:
    """(max - min) / median of per-round values; None with fewer than two rounds."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    if len(v) < 2:
        return None
    med = float(np.median(v))
    return float((max(v) - min(v)) / med) if med > 0 else None


def median_ci(samples_ns: Sequence[int], confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free CI for the median (binomial order statistics, scipy.stats.quantile_test), in s."""
    from scipy import stats

    a = np.asarray(samples_ns, dtype=np.float64) / 1e9
    if a.size < 6:
        return None
    ci = stats.quantile_test(a, q=float(np.median(a)), p=0.5).confidence_interval(confidence)
    lo, hi = float(ci.low), float(ci.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return lo, hi


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


def summarize(rounds: list[dict]) -> tuple[dict[str, float], dict]:
    """Metrics and noise description of a case from its successful rounds.

    Each round dict has ``samples_ns`` (all samples), ``ops``, ``window_ns``, ``bytes_per_op``, ``cpu_s``.
    Returns ``(metrics, noise)``: metrics by name (units in ``ipcbench.plan.metrics``), noise = spreads, CI and flags.
    """
    pooled = [s for r in rounds for s in r["samples_ns"]]
    metrics: dict[str, float] = dict(latency_metrics(pooled))
    metrics["samples"] = float(len(pooled))

    per_round_p50 = [float(np.median(r["samples_ns"])) / 1e9 for r in rounds if r["samples_ns"]]
    per_round_tput = [r["ops"] / (r["window_ns"] / 1e9) for r in rounds
                      if r.get("ops") and r.get("window_ns")]
    if per_round_tput:
        tput = float(np.median(per_round_tput))
        metrics["throughput_msgs"] = tput
        metrics["throughput_bytes"] = tput * rounds[0]["bytes_per_op"]
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
    if any(s is not None and s > NOISY_SPREAD for s in (lat_spread, tput_spread)):
        flags.append("noisy")
    if is_bimodal(pooled):
        flags.append("bimodal")
    if pooled and len(pooled) < FEW_SAMPLES:
        flags.append("few_samples")
    noise = {
        "rounds": len(rounds),
        "round_p50_s": per_round_p50,
        "round_throughput": per_round_tput,
        "median_ci_s": median_ci(pooled),
        "flags": flags,
    }
    return metrics, noise
