"""Statistics for comparisons, on lists of sample arrays (one pair per case), vectorized over cases.

Pure numpy + scipy.stats, no pandas, no I/O: cases with samples of the same sizes go through one
vectorized scipy call. ``ipcbench.analysis.compare`` decides what to test and what counts as significant.
(These would sit well in ``ipcbench.results.summary``; they live here while that module is shared work.)
"""

from __future__ import annotations

import inspect
import warnings
from collections import defaultdict

import numpy as np

CONFIDENCE = 0.95          # level of the ratio CIs
MIN_ROUNDS = 3             # per side, for tests on per-round values
MAX_TEST_SAMPLES = 1000    # per side for the U test on latency samples (thinned evenly in time with
                           # results.summary.bounded; the CIs use every stored sample)
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20240611


def _by_shape(xs: list[np.ndarray], ys: list[np.ndarray], min_n: int):
    """Group case indices by (len x, len y) so each group is one vectorized scipy call."""
    groups = defaultdict(list)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if len(x) >= min_n and len(y) >= min_n:
            groups[(len(x), len(y))].append(i)
    for idx in groups.values():
        yield idx, np.stack([xs[i] for i in idx]), np.stack([ys[i] for i in idx])


def mann_whitney(xs: list[np.ndarray], ys: list[np.ndarray], min_n: int = 1) -> np.ndarray:
    """Two-sided Mann-Whitney U p-value for each pair of samples; NaN where a side has < min_n values."""
    from scipy import stats

    p = np.full(len(xs), np.nan)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for idx, x, y in _by_shape(xs, ys, min_n):
            p[idx] = stats.mannwhitneyu(x, y, axis=1, alternative="two-sided", method="auto").pvalue
    return p


def quantile_ci_ranks(n: np.ndarray, q: float, confidence=CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """0-based order-statistic indices bounding the distribution-free CI of quantile ``q``, per sample size.

    The same indices ``scipy.stats.quantile_test(...).confidence_interval()`` uses (two-sided), vectorized
    over sample sizes (and levels); -1 or >= n where the CI does not exist (too few samples for ``q``).
    """
    from scipy import stats

    a = (1 - np.asarray(confidence, dtype=float)) / 2
    n = np.asarray(n)
    return stats.binom.ppf(a, n, q).astype(int) - 1, stats.binom.isf(a, n, q).astype(int)


def sorted_quantile(samples: list[np.ndarray], q: float) -> np.ndarray:
    """Quantile ``q`` of each sorted sample, interpolated as ``np.percentile`` does (its default, linear)."""
    out = np.full(len(samples), np.nan)
    for i, s in enumerate(samples):
        if len(s):
            pos = q * (len(s) - 1)
            lo = int(pos)
            hi = min(lo + 1, len(s) - 1)
            out[i] = s[lo] + (pos - lo) * (s[hi] - s[lo])
    return out


def _bounds(samples: list[np.ndarray], q: float, confidence) -> np.ndarray:
    """(low, high) of each sorted sample's distribution-free CI of quantile ``q``; NaN where there is none."""
    n = np.array([len(s) for s in samples])
    lo, hi = quantile_ci_ranks(n, q, confidence)
    out = np.full((len(samples), 2), np.nan)
    for i, s in enumerate(samples):
        if 0 <= lo[i] and hi[i] < n[i]:
            out[i] = s[lo[i]], s[hi[i]]
    return out


def latency_ratio_ci(base: list[np.ndarray], other: list[np.ndarray], q: float,
                     confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """CI of quantile ``q`` of other / of base, from sorted samples; NaN where a side has too few.

    Each side's distribution-free CI of the quantile (order statistics) is taken at the level at which two
    intervals that do not overlap mean a difference at ``1 - confidence`` (Goldstein & Healy 1995: about 83 %
    for equal widths, up to 95 % for very unequal ones; the widths come from the 95 % intervals). The
    ratio's CI runs from low_other / high_base to high_other / low_base. No normal approximation of the
    quantile is needed, so it stays honest on bimodal latencies (simulated coverage ~95 % on 50/50 mixtures,
    where a log-normal approximation covers ~50 %).
    """
    from scipy import stats

    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(all="ignore"):
        wb, wo = (np.log(b[:, 1] / b[:, 0]) for b in (_bounds(base, q, confidence), _bounds(other, q, confidence)))
        k = wo / wb
        zc = np.where(np.isfinite(k), z * np.sqrt(1 + k * k) / (1 + k), z)
        level = 2 * stats.norm.cdf(zc) - 1
        b, o = _bounds(base, q, level), _bounds(other, q, level)
        ok = np.isfinite(wb) & np.isfinite(wo)
        return np.where(ok, o[:, 0] / b[:, 1], np.nan), np.where(ok, o[:, 1] / b[:, 0], np.nan)


def _bootstrap_kwargs() -> dict:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    from scipy import stats

    return {"rng": rng} if "rng" in inspect.signature(stats.bootstrap).parameters else {"random_state": rng}


def median_fast(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """np.median for short rows (per-round values): a full sort beats partition there, 3x on 1000 x 5."""
    s = np.sort(a, axis=axis)
    n = s.shape[axis]
    return (np.take(s, (n - 1) // 2, axis=axis) + np.take(s, n // 2, axis=axis)) / 2


def round_ratio_ci(base: list[np.ndarray], other: list[np.ndarray], center=median_fast,
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
