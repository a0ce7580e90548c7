"""Statistics for comparisons, on per-round values (one array per case and side).

Rounds are the unit of replication (DESIGN.md rule 9): a case's evidence is one value per round (its
median latency, its p99, its throughput, its CPU per operation), never the pooled messages, whose
"independence" would make every CI far too narrow. Each pair is tested with ``round_stats.ratio_test``
(Welch's t-test on log round values; unequal numbers of rounds are fine). Pure numpy + scipy, no pandas.
``ipcbench.analysis.compare`` decides what to test and what counts as significant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..results.round_stats import CONFIDENCE, ratio_test

MIN_ROUNDS = 2             # per side: fewer and there is no spread to test against

__all__ = ["CONFIDENCE", "MIN_ROUNDS", "RoundTests", "round_tests", "round_values"]


@dataclass
class RoundTests:
    """Per matched pair: p-value, CI factors (CI / estimate, to scale onto a recorded ratio), rounds."""

    p: np.ndarray
    lo_factor: np.ndarray
    hi_factor: np.ndarray
    n_base: np.ndarray
    n_other: np.ndarray


def round_tests(base: list[np.ndarray], other: list[np.ndarray], confidence: float = CONFIDENCE,
                extra_var: float = 0.0) -> RoundTests:
    """``ratio_test`` of every pair of per-round value arrays; NaN where a side has < ``MIN_ROUNDS``.
    ``extra_var``: the between-run variance of the two sides (``ratio_test``), one for all or one per pair."""
    n = len(base)
    p, lo, hi = (np.full(n, np.nan) for _ in range(3))
    extra = np.broadcast_to(np.asarray(extra_var, dtype=float), (n,))
    for i, (b, o) in enumerate(zip(base, other, strict=True)):
        if len(b) >= MIN_ROUNDS and len(o) >= MIN_ROUNDS:
            t = ratio_test(b, o, confidence, float(extra[i]))
            if t.ratio > 0:
                p[i], lo[i], hi[i] = t.p_value, t.low / t.ratio, t.high / t.ratio
    return RoundTests(p, lo, hi, np.array([len(b) for b in base]), np.array([len(o) for o in other]))


def round_values(samples_by_round: list[np.ndarray], q_percent: float) -> np.ndarray:
    """Percentile ``q_percent`` of each round's stored samples (rounds without samples are skipped)."""
    return np.array([np.percentile(s, q_percent) for s in samples_by_round if len(s)], dtype=float)
