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


def with_between(rs, sds):
    rs["run"] = {**(rs.get("run") or {}), "between_run": dict(sds)}
    return rs


def test_a_recorded_between_run_component_makes_the_check_hold_and_still_finds_a_real_difference():
    """Kalibera and Jones's two levels: runs drift by 5 % per case, rounds by 2 %. Rounds alone make the
    CIs too narrow (the check fails); with the between-run sd measured on an earlier pair (what
    `ipcbench aa --save` keeps and later runs record), a new pair passes, and a real 1.3x is still found."""
    kw = {"round_sd": 0.02, "run_offset_sd": 0.05}
    bare = aa_check(Side("a", [run(21, **kw)]), Side("b", [run(22, **kw)]))
    assert not bare.passed and bare.coverage < 0.6
    calib = aa_check(Side("a", [run(23, **kw)]), Side("b", [run(24, **kw)]))
    assert calib.run_sd["latency_p50"] == pytest.approx(0.05, abs=0.02)
    sds = calib.run_sd
    checks = [aa_check(Side("a", [with_between(run(30 + 2 * k, **kw), sds)]),
                       Side("b", [with_between(run(31 + 2 * k, **kw), sds)])) for k in range(4)]
    assert all(c.sig_fraction <= 0.05 for c in checks)
    assert np.mean([c.coverage for c in checks]) >= 0.80
    real = aa_check(Side("a", [with_between(run(40, **kw), sds)]),
                    Side("b", [with_between(run(41, scale=1.3, **kw), sds)]))
    assert real.sig_fraction > 0.8


def test_ratio_test_and_widen_add_the_between_run_variance():
    from ipcbench.results.round_stats import ratio_test, widen

    a, b = [1.0, 1.02, 0.98, 1.01, 0.99], [1.10, 1.12, 1.08, 1.11, 1.09]
    plain, wide = ratio_test(a, b), ratio_test(a, b, extra_var=0.05 ** 2 * 2)
    assert plain.ratio == wide.ratio and plain.p_value < 1e-4 < wide.p_value
    assert wide.low < plain.low < plain.high < wide.high
    assert ratio_test(a, b, extra_var=0.0) == plain
    lo, hi = widen(100.0, 90.0, 110.0, 0.0)
    assert (lo, hi) == (90.0, 110.0)
    lo, hi = widen(100.0, 100.0, 100.0, 0.05)                 # no spread in the rounds: +-1.96 sd
    assert np.log(100 / lo) == pytest.approx(1.959964 * 0.05) and np.log(hi / 100) == pytest.approx(1.959964 * 0.05)


def test_aa_save_keeps_the_estimate_in_the_machine_file_and_runs_record_it(tmp_path, capsys, monkeypatch):
    import json

    from ipcbench.measure import machine_file

    mf = tmp_path / "machine.json"
    monkeypatch.setenv("IPCBENCH_MACHINE_FILE", str(mf))
    me = machine_file.load()["machine_id"]
    kw = {"round_sd": 0.02, "run_offset_sd": 0.05}
    a, b = run(51, **kw), run(52, **kw)
    for rs in (a, b):
        rs["machine_id"] = rs["machine"]["machine_id"] = me
    pa, pb = f.write(tmp_path / "a.json", a), f.write(tmp_path / "b.json", b)
    assert cli.main(["aa", str(pa), str(pb), "--save"]) == 1          # this pair itself had none: FAIL
    out = capsys.readouterr().out
    assert "recorded no between-run sd" in out and f"kept in {mf}" in out
    kept = json.loads(mf.read_text())["between_run"]
    assert kept["latency_p50"] == pytest.approx(0.05, abs=0.025) and kept["pairs"][0]["files"] == [str(pa), str(pb)]
    first = kept["pairs"][0]["latency_p50"]
    c, d = run(54), run(55)                               # a calm pair: about 0; the pooled sd is the RMS
    for rs in (c, d):
        rs["machine_id"] = rs["machine"]["machine_id"] = me
    pc, pd_ = f.write(tmp_path / "c2.json", c), f.write(tmp_path / "d2.json", d)
    cli.main(["aa", str(pc), str(pd_), "--save"])
    capsys.readouterr()
    kept = json.loads(mf.read_text())["between_run"]
    second = kept["pairs"][1]["latency_p50"]
    assert len(kept["pairs"]) == 2 and kept["latency_p50"] == pytest.approx(((first ** 2 + second ** 2) / 2) ** 0.5,
                                                                          abs=1e-6)
    from ipcbench.commands.run import _between_run

    assert _between_run(me)["latency_p50"] == kept["latency_p50"] and _between_run("other-machine") is None
    # the same pair again, under other names: refused, the estimate unchanged
    import shutil

    shutil.copy(pc, tmp_path / "c3.json")
    assert cli.main(["aa", str(tmp_path / "c3.json"), str(pd_), "--save"]) == 2
    assert "this pair of runs is kept already" in capsys.readouterr().err
    assert json.loads(mf.read_text())["between_run"] == kept and len(kept["pairs"][1]["runs"]) == 2
    other = f.write(tmp_path / "c.json", run(53))                     # machine "vm", not this one
    assert cli.main(["aa", str(pa), str(other), "--save"]) == 2
    assert "--save keeps the estimate for this machine" in capsys.readouterr().err
