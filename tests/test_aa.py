"""The A/A check on simulated runs: hierarchical data (a level per round, noise per message)."""

import numpy as np
import pytest

from ipcbench import cli
from ipcbench.analysis.aa import aa_check
from ipcbench.analysis.compare import Side
from tests import factories as f

SIZES = [8 * 2**i for i in range(40)]


def run(seed, scale=1.0, run_offset_sd=0.0, rounds=6, round_sd=0.08):
    """One run of 40 roundtrip cases: each case's rounds vary (round_sd); ``run_offset_sd`` adds one level
    per case for the whole run (drift between runs that the rounds of one run cannot show)."""
    rng = np.random.default_rng(seed)
    cases = []
    for i, size in enumerate(SIZES):
        offset = float(np.exp(rng.normal(0.0, run_offset_sd))) if run_offset_sd else 1.0
        samples = f.hierarchical_samples(seed * 1000 + i, rounds, per_round=100, scale=scale * offset,
                                         round_sd=round_sd)
        cases.append(f.case_record(samples_ns=samples, rounds=rounds, payload_bytes=size))
    rs = f.result_set(cases, machine_id="vm")
    rs["_source"] = f"run{seed}.json"
    return rs


def test_two_runs_of_the_same_machine_pass():
    res = aa_check(Side("a", [run(1)]), Side("b", [run(2)]))
    assert res.sig_fraction <= 0.05
    assert res.coverage >= 0.80
    assert res.passed and next(ln for ln in res.lines() if ln.startswith("overall")).endswith("PASS")
    assert list(res.per_metric.metric) == ["latency_p50", "throughput_msgs"]
    assert (res.per_metric.rows == 40).all() and (res.per_metric.coverable == 40).all()


def test_coverage_is_about_what_theory_says():
    """Many independent A/A pairs: A's 95 % CI (6 rounds, t = 2.57) holds B's estimate with probability
    P(|T5| < 2.57 / sqrt(2)) ~ 0.87 when rounds are the only variation."""
    cov = [aa_check(Side("a", [run(10 + k)]), Side("b", [run(50 + k)]), metrics=("latency_p50",)).coverage
           for k in range(5)]
    assert np.mean(cov) == pytest.approx(0.87, abs=0.06)


def test_a_real_difference_fails_the_check():
    res = aa_check(Side("a", [run(1)]), Side("b", [run(2, scale=1.3)]))
    assert res.sig_fraction > 0.9 and not res.passed
    assert len(res.significant_rows) == int(res.per_metric.significant.sum())


def test_drift_between_runs_that_rounds_do_not_show_fails_coverage():
    """CIs that only know the rounds of one run are too narrow when whole runs drift (15 % per case):
    the check says so instead of passing."""
    res = aa_check(Side("a", [run(1, round_sd=0.02)]), Side("b", [run(2, round_sd=0.02, run_offset_sd=0.15)]))
    assert res.coverage < 0.5 and not res.passed
    assert len(res.uncovered) == int(res.per_metric.coverable.sum() - res.per_metric.covered.sum())


def test_the_between_run_component_is_estimated_from_the_runs():
    """Known levels: rounds vary by 8 %; with a 6 % per-case offset per run the method of moments finds
    about 6 %, without one about 0; a whole-run slowdown of 10 % shows as the common shift."""
    calm = aa_check(Side("a", [run(1)]), Side("b", [run(2)]))
    assert calm.run_sd["latency_p50"] < 0.02
    drift = aa_check(Side("a", [run(3, run_offset_sd=0.06)]), Side("b", [run(4, run_offset_sd=0.06)]))
    assert drift.run_sd["latency_p50"] == pytest.approx(0.06, abs=0.02)
    assert abs(drift.shift["latency_p50"]) < 0.03
    slower = aa_check(Side("a", [run(5)]), Side("b", [run(6, scale=1.10)]))
    assert np.exp(slower.shift["latency_p50"]) == pytest.approx(1.10, abs=0.03)
    assert "the runs differ beyond their rounds by a sd of" in "\n".join(drift.lines())


def test_cli_exit_status_and_output(tmp_path, capsys):
    a, b = f.write(tmp_path / "a.json", run(1)), f.write(tmp_path / "b.json", run(2))
    assert cli.main(["aa", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "latency_p50: " in out and out.strip().splitlines()[2].endswith("PASS")
    c = f.write(tmp_path / "c.json", run(3, scale=1.3))
    assert cli.main(["aa", str(a), str(c), "--show", "2"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "significant in an A/A comparison (" in out
    assert out.count("  pipe_duplex roundtrip") == 4               # 2 of each list


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert cli.main(["aa", str(tmp_path / "missing.json"), str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
