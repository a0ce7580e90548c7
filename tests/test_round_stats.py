"""Round-level statistics on simulated rounds: hierarchical data with a known between-round variance."""

import math

import numpy as np
import pytest

from ipcbench.results.round_stats import (
    Estimate,
    min_samples,
    mixture_percentile,
    ratio_test,
    round_estimate,
    supported_percentile,
)

TRUE_MEDIAN = 50e-6      # s: the typical round's median latency
ROUND_SD = 0.15          # sd of log(round median) between rounds: placement, drift
MESSAGE_SD = 0.30        # sd of log(latency) of messages within a round


def simulate_round_medians(rng, n_rounds, scale=1.0, messages=500):
    """Round medians of hierarchical data: a round effect, then per-message noise around it."""
    effects = rng.normal(0.0, ROUND_SD, n_rounds)
    return [float(np.median(TRUE_MEDIAN * scale * np.exp(e + rng.normal(0.0, MESSAGE_SD, messages))))
            for e in effects]


def test_min_samples_per_percentile():
    assert [min_samples(q) for q in (50, 90, 99, 99.9)] == [20, 100, 1000, 10000]


def test_estimate_is_the_geometric_mean_with_a_t_interval():
    est = round_estimate([1.0, 4.0])
    assert est.value == pytest.approx(2.0)
    # log values 0 and ln 4: sd = ln4/sqrt(2), sem = ln4/2, t(0.975, 1) = 12.706
    half = 12.7062047 * math.log(4) / 2
    assert est.low == pytest.approx(2.0 * math.exp(-half), rel=1e-6)
    assert est.high == pytest.approx(2.0 * math.exp(half), rel=1e-6)
    assert est.rounds == 2


def test_one_round_has_no_interval_and_nothing_gives_none():
    est = round_estimate([3.0])
    assert est.value == pytest.approx(3.0) and math.isnan(est.low) and est.rel_half_width == math.inf
    assert round_estimate([]) is None
    assert round_estimate([0.0, None, float("nan")]) is None


def test_rel_half_width():
    assert Estimate(100.0, 95.0, 104.0, 10).rel_half_width == pytest.approx(0.05)
    assert Estimate(100.0, 98.0, 110.0, 10).rel_half_width == pytest.approx(0.10)


def test_round_ci_covers_the_true_value_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    # The true typical round median: exp(E[log round median]) ~ TRUE_MEDIAN (median of symmetric noise).
    covered = 0
    trials = 400
    for _ in range(trials):
        est = round_estimate(simulate_round_medians(rng, 8))
        covered += est.low <= TRUE_MEDIAN <= est.high
    assert 0.91 <= covered / trials <= 0.99


def test_pooled_messages_would_not_cover():
    """The old mistake, for contrast: a CI from pooled messages is far too narrow for the between-round spread."""
    from scipy import stats

    rng = np.random.default_rng(2)
    covered = 0
    trials = 100
    for _ in range(trials):
        effects = rng.normal(0.0, ROUND_SD, 8)
        pooled = np.concatenate([TRUE_MEDIAN * np.exp(e + rng.normal(0.0, MESSAGE_SD, 500)) for e in effects])
        ci = stats.quantile_test(pooled, q=float(np.median(pooled)), p=0.5).confidence_interval(0.95)
        covered += ci.low <= TRUE_MEDIAN <= ci.high
    assert covered / trials < 0.6


def test_a_a_comparisons_are_rarely_significant_and_a_real_difference_is_found():
    rng = np.random.default_rng(3)
    trials = 400
    false_hits = sum(ratio_test(simulate_round_medians(rng, 6), simulate_round_medians(rng, 6)).p_value < 0.05
                     for _ in range(trials))
    assert false_hits / trials <= 0.08
    found = 0
    for _ in range(100):
        res = ratio_test(simulate_round_medians(rng, 8), simulate_round_medians(rng, 8, scale=1.3))
        found += res.p_value < 0.05 and res.low > 1.0
        assert 1.0 < res.ratio < 1.7
    assert found >= 80


def test_ratio_test_with_unequal_rounds_and_edge_cases():
    res = ratio_test([1.0, 1.1, 0.9], [2.0, 2.2, 1.8, 2.1, 1.9])
    assert res.ratio == pytest.approx(2.0, rel=0.05)
    assert res.low < res.ratio < res.high and res.p_value < 0.01
    assert (res.base_rounds, res.other_rounds) == (3, 5)
    one = ratio_test([1.0], [2.0, 2.0])
    assert one.ratio == pytest.approx(2.0) and math.isnan(one.p_value) and math.isnan(one.low)
    same = ratio_test([1.0, 1.0], [1.0, 1.0, 1.0])
    assert (same.ratio, same.low, same.high, same.p_value) == (1.0, 1.0, 1.0, 1.0)
    assert ratio_test([], [1.0, 2.0]).ratio != ratio_test([], [1.0, 2.0]).ratio   # NaN


def test_mixture_percentile_weighs_rounds_equally():
    fast = [1.0] * 900     # a round with many fast messages
    slow = [3.0] * 100     # a round with few slow ones
    # Pooled, the median is 1.0 (900 of 1000); with rounds weighted equally half the mass is at 3.0.
    assert float(np.percentile(fast + slow, 75)) == 1.0
    assert mixture_percentile([fast, slow], 75) == 3.0
    assert mixture_percentile([fast, slow], 25) == 1.0
    assert mixture_percentile([[], []], 50) is None


def test_supported_percentile_says_why_it_is_left_out():
    rounds = [list(range(1, 301)), list(range(1, 301))]
    value, reason = supported_percentile(rounds, 99)
    assert value is None and reason == "needs >= 1,000 samples, has 600"
    value, reason = supported_percentile(rounds, 90)
    assert reason is None and 270.0 <= value <= 271.0
