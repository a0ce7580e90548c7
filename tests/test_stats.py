import numpy as np
import pytest

from ipcbench.plan import metrics
from ipcbench.results import summary as stats


def test_spread():
    assert stats.spread([10.0, 11.0, 12.0]) == pytest.approx(2 / 11)
    assert stats.spread([5.0]) is None
    assert stats.spread([None, 4.0]) is None


def test_bimodal_detection():
    rng = np.random.default_rng(2)
    two = np.concatenate([rng.normal(29_000, 1_500, 1500), rng.normal(80_000, 4_000, 1500)])
    one = rng.lognormal(np.log(40_000), 0.25, 3000)
    assert stats.is_bimodal(two)
    assert not stats.is_bimodal(one)
    assert not stats.is_bimodal(two[:20])       # too few samples to say


def _lognormal(rng, median_ns, sigma, n):
    return rng.lognormal(np.log(median_ns), sigma, n)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("share_fast", [0.5, 0.8])
def test_bimodal_two_lognormal_modes_flagged(seed, share_fast):
    # round trips at 30 µs and 60 µs (e.g. same core vs. cross-core), 2,000 samples, 50/50 and 80/20
    rng = np.random.default_rng(seed)
    n_fast = int(2000 * share_fast)
    s = np.concatenate([_lognormal(rng, 30_000, 0.1, n_fast), _lognormal(rng, 60_000, 0.1, 2000 - n_fast)])
    assert stats.is_bimodal(rng.permutation(s))        # order (as measured, interleaved) does not matter
    assert stats.is_bimodal(np.round(s).astype(np.int64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unimodal_lognormal_not_flagged(seed):
    rng = np.random.default_rng(seed)
    assert not stats.is_bimodal(_lognormal(rng, 30_000, 0.3, 2000))
    assert not stats.is_bimodal(_lognormal(rng, 30_000, 0.3, 20_000))   # thinned to 4,000: still not


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_long_right_tail_not_flagged(seed):
    # a unimodal body plus 2 % outliers at 10x (a preemption now and then) is a tail, not a second mode
    rng = np.random.default_rng(seed)
    s = np.concatenate([_lognormal(rng, 30_000, 0.3, 1960), _lognormal(rng, 300_000, 0.3, 40)])
    assert not stats.is_bimodal(rng.permutation(s))


def test_few_samples_not_flagged():
    rng = np.random.default_rng(0)
    s = np.concatenate([_lognormal(rng, 30_000, 0.05, 24), _lognormal(rng, 300_000, 0.05, 25)])
    assert len(s) == 49 and not stats.is_bimodal(s)
    assert stats.is_bimodal(np.concatenate([s, [300_000]]))      # 50: enough for modes this far apart
    assert not stats.is_bimodal([0] * 100 + [-5] * 100)         # no positive samples
    assert not stats.is_bimodal([30_000] * 500)                 # all equal: one value, one mode


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("median_ns", "resolution_ns", "sigma"),
                         [(30_000, 100, 0.3), (30_000, 1000, 0.3), (3_000, 100, 0.3), (1_000, 100, 0.2),
                          (200, 10, 0.3)])
def test_integer_rounded_unimodal_not_flagged(seed, median_ns, resolution_ns, sigma):
    # integer nanoseconds on a coarse grid: many exact ties, which the dip test alone would call multimodal
    rng = np.random.default_rng(seed)
    s = _lognormal(rng, median_ns, sigma, 2000)
    grid = (np.round(s / resolution_ns) * resolution_ns).astype(np.int64)
    assert len(np.unique(grid)) < 500
    assert not stats.is_bimodal(grid)


def test_bimodal_thresholds_need_both_p_value_and_dip(monkeypatch):
    diptest = pytest.importorskip("diptest")
    x = np.arange(1, 201)
    monkeypatch.setattr(diptest, "diptest", lambda *a, **k: (0.05, 0.001))
    assert stats.is_bimodal(x)
    monkeypatch.setattr(diptest, "diptest", lambda *a, **k: (stats.BIMODAL_MIN_DIP / 2, 0.0))
    assert not stats.is_bimodal(x)                      # significant but too small to matter
    monkeypatch.setattr(diptest, "diptest", lambda *a, **k: (0.05, stats.BIMODAL_P * 2))
    assert not stats.is_bimodal(x)                      # big dip, but could be chance (few samples)


def test_is_bimodal_deterministic_and_bounded():
    rng = np.random.default_rng(5)
    s = np.concatenate([_lognormal(rng, 30_000, 0.1, 30_000), _lognormal(rng, 60_000, 0.1, 30_000)])
    assert stats.is_bimodal(s) is True
    assert all(stats.is_bimodal(s) is True for _ in range(3))
    assert stats.is_bimodal(s, max_points=400) is True


def test_bounded_keeps_order_and_ends():
    s = list(range(10_000))
    b = stats.bounded(s, 100)
    assert len(b) == 100 and b[0] == 0 and b[-1] == 9999 and b == sorted(b)
    assert stats.bounded([3, 1, 2], 5) == [3, 1, 2]


def _round(samples, ops=None, window_ns=None, cpu=None, bytes_per_op=16):
    return {"samples_ns": samples, "ops": ops if ops is not None else len(samples),
            "window_ns": window_ns if window_ns is not None else sum(samples),
            "bytes_per_op": bytes_per_op, "cpu_s": cpu}


def test_summarize_values_from_fake_clock_rounds():
    # three rounds, each 100 ops of exactly 1 µs / 1.1 µs / 1.2 µs, 50 µs of CPU per round
    rounds = [_round([1000] * 100, cpu=50e-6), _round([1100] * 100, cpu=50e-6), _round([1200] * 100, cpu=50e-6)]
    m, noise = stats.summarize(rounds)
    assert m["samples"] == 300
    # rounds weigh equally: the geometric mean of the round medians 1.0, 1.1, 1.2 us
    gmean = 1.32 ** (1 / 3)
    assert m["latency_p50"] == pytest.approx(gmean * 1e-6)
    assert m["latency_p90"] == pytest.approx(1.2e-6)            # each round a third of the mass
    assert "latency_p99" not in m and noise["omitted"]["latency_p99"] == "needs >= 1,000 samples, has 300"
    assert m["latency_max"] == pytest.approx(1.2e-6)
    # per-round throughput 1e6, 0.909e6, 0.833e6 ops/s -> their geometric mean
    assert m["throughput_msgs"] == pytest.approx(1e6 / gmean)
    assert m["throughput_bytes"] == pytest.approx(16e6 / gmean)
    assert m["cpu_per_msg"] == pytest.approx(150e-6 / 300)
    assert m["latency_round_spread"] == pytest.approx(200 / 1100)
    assert noise["round_p50_s"] == pytest.approx([1e-6, 1.1e-6, 1.2e-6])
    # 95 % t interval over 3 rounds (t = 4.303, sd of logs 0.0912): about -20 % .. +25 %
    lo, hi = noise["ci"]["latency_p50"]
    assert lo == pytest.approx(gmean * 1e-6 * 0.797, rel=0.01) and hi == pytest.approx(gmean * 1e-6 * 1.254, rel=0.01)
    assert noise["ci_rel"]["latency_p50"] == pytest.approx(0.254, abs=0.01)
    assert "wide_ci" in noise["flags"]          # far from +-5 %: three rounds this different can't say more
    assert "noisy" not in noise["flags"]        # rounds vary by ~9 %, under the 10 % threshold
    # exactly 1.0 / 1.1 / 1.2 µs, a third each: on this 100 ns grid no level is rarer than its neighbours,
    # so there is no dip between them (is_bimodal spreads ties over the grid) -- a flat spread, not modes.
    # Rounds at levels apart, each with its own jitter, are flagged: test_summarize_flags_two_round_levels
    assert "bimodal" not in noise["flags"]


def test_summarize_flags_two_round_levels():
    # three rounds near 30 µs, three near 60 µs (e.g. sharing a core or not): two modes, said, not hidden
    rng = np.random.default_rng(7)
    level = [30_000, 60_000, 30_000, 60_000, 30_000, 60_000]
    rounds = [_round(np.round(_lognormal(rng, med, 0.05, 300)).astype(int).tolist()) for med in level]
    assert "bimodal" in stats.summarize(rounds)[1]["flags"]
    same = [_round(np.round(_lognormal(rng, 30_000, 0.2, 300)).astype(int).tolist()) for _ in level]
    assert "bimodal" not in stats.summarize(same)[1]["flags"]


def test_summarize_tight_rounds_meet_the_target():
    rounds = [_round([1000 + k] * 100) for k in (0, 5, 10, 3, 7, 2)]
    _, noise = stats.summarize(rounds)
    assert noise["ci_rel"]["latency_p50"] < 0.01 and noise["ci_rel"]["throughput_msgs"] < 0.01
    assert "wide_ci" not in noise["flags"] and noise["target_ci"] == 0.05


def test_one_round_has_no_ci_and_says_so():
    _, noise = stats.summarize([_round([1000] * 50)])
    assert noise["ci"]["latency_p50"] is None and noise["ci_rel"]["latency_p50"] is None
    assert "wide_ci" in noise["flags"]


def test_summarize_flags_noisy_and_few_samples():
    rounds = [_round([1000] * 20), _round([2000] * 20)]
    m, noise = stats.summarize(rounds)
    assert "noisy" in noise["flags"] and "few_samples" in noise["flags"]
    assert m["latency_round_spread"] == pytest.approx(1000 / 1500)


def test_summarize_without_throughput_or_cpu():
    # startup rounds: samples only
    m, _ = stats.summarize([{"samples_ns": [5_000_000] * 10, "ops": None, "window_ns": None,
                             "bytes_per_op": 8, "cpu_s": None}])
    assert "throughput_msgs" not in m and "cpu_per_msg" not in m
    assert m["latency_p50"] == pytest.approx(5e-3)


def test_every_metric_summarize_records_is_in_the_registry_with_its_unit():
    rounds = [{"samples_ns": [1_000 * (i % 7 + 1) for i in range(200)], "ops": 200, "window_ns": 10**6,
               "bytes_per_op": 16, "cpu_s": 1e-4} for _ in range(3)]
    m, noise = stats.summarize(rounds)
    assert set(m) <= set(metrics.METRICS) and set(metrics.UNITS) == set(metrics.METRICS)
    assert {k: metrics.unit(k) for k in m if k.startswith("latency_p")} == {"latency_p50": "s", "latency_p90": "s"}
    assert set(noise["omitted"]) == {"latency_p99", "latency_p999"}     # 600 samples support p50 and p90 only
    assert (metrics.unit("throughput_msgs"), metrics.unit("throughput_bytes")) == ("msg/s", "B/s")
    assert stats.PERCENTILES == {"latency_p50": 50, "latency_p90": 90, "latency_p99": 99, "latency_p999": 99.9}


def test_metric_registry_directions_and_formats():
    assert metrics.higher_is_better("throughput_bytes") and metrics.lower_is_better("cpu_per_msg")
    assert not metrics.higher_is_better("samples") and not metrics.lower_is_better("samples")
    assert metrics.COMPARABLE == ("latency_p50", "latency_p90", "latency_p99", "latency_p999", "latency_max",
                                  "latency_first_call", "latency_oneway_p50", "throughput_msgs", "throughput_bytes",
                                  "cpu_per_msg")
    assert metrics.get("faults_per_msg").better == "none"             # a description of the state, not a score
    assert metrics.names(kind="spread") == ("latency_round_spread", "throughput_round_spread")
    assert metrics.format_value("throughput_msgs", 12345) == "12.3k msg/s"
    assert metrics.format_value("throughput_msgs", 12345, with_unit=False) == "12.3k"
    assert metrics.format_value("throughput_bytes", 1.2e9) == "1.2 GB/s"
    assert metrics.format_value("latency_p99", 29.4e-6) == "29.4 µs"
    assert metrics.format_value("latency_round_spread", 0.25) == "25%"
    assert metrics.format_value("cpu_per_msg", float("nan")) == "n/a"
    assert metrics.format_value("samples", None, missing="–") == "–"
    assert all(m.help and m.better in metrics.BETTER and m.kind in metrics.KINDS for m in metrics.METRICS.values())


def test_bounded_thins_arrays_like_lists():
    s = np.arange(10_000, dtype=np.int64) * 3
    assert isinstance(stats.bounded(s, 100), np.ndarray)
    assert list(stats.bounded(s, 100)) == stats.bounded(list(s), 100)
    short = s[:5]
    assert stats.bounded(short, 100) is short


def test_rounds_with_steal_or_other_work_are_flagged_not_dropped():
    quiet = {"steal_s": 0.0, "steal_span_s": 0.1, "steal_cpus": 2, "procs_running": 1}
    stolen = {"steal_s": 0.03, "steal_span_s": 0.1, "steal_cpus": 2, "procs_running": 1}    # 15 %
    crowded = {"steal_s": 0.0, "steal_span_s": 0.1, "steal_cpus": 2, "procs_running": 3}
    rounds = [{**_round([1000] * 50), **quiet}, {**_round([1000] * 50), **stolen}, {**_round([1000] * 50), **crowded}]
    m, noise = stats.summarize(rounds)
    assert noise["round_steal"] == pytest.approx([0.0, 0.15, 0.0])
    assert noise["busy_rounds"] == [2]                  # listed, but one busy round of three is no pattern
    assert "steal" in noise["flags"] and "busy" not in noise["flags"]
    assert m["samples"] == 150 and noise["rounds"] == 3
    _, crowded_run = stats.summarize([rounds[0], rounds[2], rounds[2]])
    assert crowded_run["busy_rounds"] == [1, 2] and "busy" in crowded_run["flags"]
    _, calm = stats.summarize([{**_round([1000] * 50), **quiet}] * 2)
    assert not {"steal", "busy"} & set(calm["flags"])
    _, unknown = stats.summarize([_round([1000] * 50)] * 2)            # not Linux: nothing to judge
    assert unknown["round_steal"] == [None, None] and unknown["busy_rounds"] == []
