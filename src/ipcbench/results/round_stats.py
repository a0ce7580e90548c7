"""Round-level statistics: rounds are the unit of replication (DESIGN.md, rule 9).

Messages inside one round share a placement, a cache state and a moment of the machine's life, so they
are not independent: the uncertainty of a case is the variation *between* rounds. Every function here
takes one value per round (or one sample array per round) and weighs the rounds equally.

* ``round_estimate``: the geometric mean of per-round values (e.g. round medians, round throughputs) with
  a Student-t confidence interval on their logarithms. Timings are positive and skewed, and ratios are
  what users compare, so the log scale is the natural one; with few rounds the t interval is wide, which
  is the honest answer (Kalibera & Jones, "Rigorous Benchmarking in Reasonable Time", 2013, build CIs
  the same way at the top level of repetition).
* ``ratio_test``: Welch's t-test on the log round values of two sides (unequal numbers of rounds and
  unequal spreads are fine) and the CI of the ratio of their geometric means.
* ``mixture_percentile``: a percentile of all samples with each round weighted equally (a round with
  many fast messages does not outvote a slow round), and ``supported_percentile``: how many samples a
  percentile needs before it means more than "the maximum".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
# A percentile q is reported only from at least SUPPORT / (1 - q) samples: about ten samples beyond it.
# p50: 20, p90: 100, p99: 1,000, p99.9: 10,000.
SUPPORT = 10


def min_samples(q_percent: float) -> int:
    """Samples needed before percentile ``q_percent`` is reported (10 beyond it; see ``SUPPORT``)."""
    return math.ceil(round(SUPPORT / (1 - q_percent / 100), 6))


@dataclass(frozen=True)
class Estimate:
    """A round-level estimate: ``value`` with its CI [``low``, ``high``] from ``rounds`` round values.

    ``low``/``high`` are NaN with fewer than two rounds (no spread to judge from)."""

    value: float
    low: float
    high: float
    rounds: int
    confidence: float = CONFIDENCE

    @property
    def rel_half_width(self) -> float:
        """The CI's larger distance from the estimate, as a fraction of it (0.05 = within +-5 %)."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.value <= 0:
            return math.inf
        return max(self.high / self.value - 1.0, 1.0 - self.low / self.value)


def _exp(x: float) -> float:
    """``math.exp``, but infinity where the result is too large for a float (absurd values in a file)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _logs(values: Sequence[float]) -> np.ndarray:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    a = a[np.isfinite(a) & (a > 0)]
    return np.log(a)


def round_estimate(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate | None:
    """Geometric mean of positive per-round values and its Student-t CI on the log scale; None if none."""
    from scipy import stats

    x = _logs(values)
    if x.size == 0:
        return None
    mean = float(x.mean())
    if x.size < 2:
        return Estimate(_exp(mean), math.nan, math.nan, 1, confidence)
    sem = float(x.std(ddof=1)) / math.sqrt(x.size)
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * sem
    return Estimate(_exp(mean), _exp(mean - half), _exp(mean + half), int(x.size), confidence)


def widen(value: float, low: float, high: float, extra_sd: float, confidence: float = CONFIDENCE
          ) -> tuple[float, float]:
    """A round-level CI [low, high] around ``value`` widened by a component the rounds cannot show (a
    between-run sd on the log scale): half-widths on the log scale add in quadrature, the extra one at
    the normal quantile. Unchanged where ``extra_sd`` is 0 or the CI is missing."""
    from scipy import stats

    if not extra_sd or not (value > 0 and math.isfinite(low) and math.isfinite(high) and low > 0):
        return low, high
    z = float(stats.norm.ppf(0.5 + confidence / 2)) * extra_sd
    m = math.log(value)
    lo, hi = m - math.log(low), math.log(high) - m
    return _exp(m - math.hypot(lo, z)), _exp(m + math.hypot(hi, z))


@dataclass(frozen=True)
class RatioTest:
    """``other / base`` as a ratio of geometric means of round values, its CI, and Welch's p-value."""

    ratio: float
    low: float
    high: float
    p_value: float
    base_rounds: int
    other_rounds: int


def ratio_test(base: Sequence[float], other: Sequence[float], confidence: float = CONFIDENCE,
               extra_var: float = 0.0) -> RatioTest:
    """Welch's t-test on log round values (scipy.stats.ttest_ind, equal_var=False) and the ratio's CI.

    NaN p-value and CI where a side has fewer than two rounds. Where both sides have no spread at all,
    the CI is the ratio itself and p is 1 if the sides are equal, 0 otherwise.

    ``extra_var``: variance (log scale) the difference has beyond what the rounds show, e.g. the
    between-run components of the two sides' machines (``between_run``): added to Welch's standard error,
    with Welch's degrees of freedom (the level above the rounds in Kalibera and Jones's two-level design)."""
    from scipy import stats

    a, b = _logs(base), _logs(other)
    if a.size == 0 or b.size == 0:
        return RatioTest(math.nan, math.nan, math.nan, math.nan, int(a.size), int(b.size))
    diff = float(b.mean() - a.mean())
    ratio = _exp(diff)
    if a.size < 2 or b.size < 2:
        return RatioTest(ratio, math.nan, math.nan, math.nan, int(a.size), int(b.size))
    if extra_var > 0:
        va, vb = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
        denom = va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1)
        df = (va + vb) ** 2 / denom if denom > 0 else math.inf
        se = math.sqrt(va + vb + extra_var)
        crit = float(stats.t.ppf(0.5 + confidence / 2, df))
        p = float(2 * stats.t.sf(abs(diff) / se, df))
        return RatioTest(ratio, _exp(diff - crit * se), _exp(diff + crit * se), p, int(a.size), int(b.size))
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return RatioTest(ratio, ratio, ratio, 1.0 if diff == 0 else 0.0, int(a.size), int(b.size))
    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(confidence)
    return RatioTest(ratio, _exp(float(ci.low)), _exp(float(ci.high)), float(res.pvalue),
                     int(a.size), int(b.size))


def mixture_percentile(rounds: Sequence[Sequence[float]], q_percent: float) -> float | None:
    """Percentile of the pooled samples with every round weighing the same (each sample 1/len(round)).

    Rounds of equal length weigh the same already: then numpy's default (linear) percentile of the pooled
    samples; otherwise numpy's weighted percentile (``method="inverted_cdf"``, the one it supports)."""
    parts = [np.asarray(r, dtype=np.float64) for r in rounds if len(r)]
    if not parts:
        return None
    values = np.concatenate(parts)
    if len({p.size for p in parts}) == 1:       # equal weights: numpy's default (linear) percentile
        return float(np.percentile(values, q_percent))
    weights = np.concatenate([np.full(p.size, 1.0 / p.size) for p in parts])
    return float(np.percentile(values, q_percent, weights=weights, method="inverted_cdf"))


def supported_percentile(rounds: Sequence[Sequence[float]], q_percent: float) -> tuple[float | None, str | None]:
    """``(value, None)``, or ``(None, reason)`` where the samples are too few for this percentile."""
    n = sum(len(r) for r in rounds)
    need = min_samples(q_percent)
    if n < need:
        return None, f"needs >= {need:,} samples, has {n:,}"
    return mixture_percentile(rounds, q_percent), None
