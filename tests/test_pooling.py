"""Repeated runs of one setup are pooled round by round (results.pooling)."""

import numpy as np
import pytest

from ipcbench.analysis.setups import setups
from ipcbench.results.frame import load_sets, tidy_frame
from ipcbench.results.pooling import pool_runs
from ipcbench.results.round_stats import round_estimate
from tests import factories as f


def _set(seed, source, machine_id="m", rounds=4, status="ok", **case):
    samples = f.hierarchical_samples(seed, rounds, per_round=300, round_sd=0.1)
    rs = f.result_set([f.case_record(samples, rounds=rounds, status=status, error=f"died in {source}", **case)],
                      machine_id=machine_id)
    rs["_source"] = source
    return rs


def test_two_runs_of_one_setup_become_one_case_with_every_round():
    a, b = _set(1, "a.json"), _set(2, "b.json", rounds=6)
    (pooled,) = pool_runs([a, b])
    assert pooled["_source"] == "a.json + b.json" and pooled["run"]["pooled_from"] == ["a.json", "b.json"]
    (rec,) = pooled["cases"]
    assert rec["pooled_from"] == ["a.json", "b.json"] and len(rec["rounds"]) == 10
    assert [r["source"] for r in rec["rounds"]] == ["a.json"] * 4 + ["b.json"] * 6
    p50s = a["cases"][0]["noise"]["round_p50_s"] + b["cases"][0]["noise"]["round_p50_s"]
    assert rec["noise"]["round_p50_s"] == p50s                  # the values each run recorded, all of them
    est = round_estimate(p50s)
    assert rec["metrics"]["latency_p50"]["value"] == pytest.approx(est.value)
    assert rec["noise"]["ci"]["latency_p50"] == pytest.approx([est.low, est.high])
    assert rec["metrics"]["samples"]["value"] == 4 * 300 + 6 * 300
    tput = a["cases"][0]["noise"]["round_throughput"] + b["cases"][0]["noise"]["round_throughput"]
    assert rec["metrics"]["throughput_msgs"]["value"] == pytest.approx(round_estimate(tput).value)
    assert rec["ci_reached"] == pytest.approx(max(rec["noise"]["ci_rel"].values()))
    assert rec["target_met"] == (rec["ci_reached"] <= 0.05)
    # more rounds, narrower CI than either run alone (same spread between rounds)
    assert rec["noise"]["ci_rel"]["latency_p50"] < min(s["cases"][0]["noise"]["ci_rel"]["latency_p50"] for s in (a, b))


def test_other_machines_and_python_versions_are_never_pooled():
    sets = [_set(1, "a.json"), _set(2, "b.json", machine_id="n"), _set(3, "c.json")]
    sets[2]["python"] = {**sets[2]["python"], "python_version": "3.13.0"}
    assert [s["_source"] for s in pool_runs(sets)] == ["a.json", "b.json", "c.json"]


def test_a_case_failed_in_one_run_and_measured_in_another_counts_as_measured():
    ok, failed = _set(1, "a.json"), _set(2, "b.json", status="failed")
    (rec,) = pool_runs([failed, ok])[0]["cases"]
    assert rec["status"] == "ok" and rec["pooled_from"] == ["a.json"] and len(rec["rounds"]) == 4
    (rec,) = pool_runs([failed, _set(3, "c.json", status="failed")])[0]["cases"]
    assert rec["status"] == "failed"
    assert rec["error"] == "b.json: died in b.json; c.json: died in c.json"


def test_distinct_cases_of_the_runs_are_all_kept():
    a, b = _set(1, "a.json", payload_bytes=8), _set(2, "b.json", payload_bytes=1024)
    (pooled,) = pool_runs([a, b])
    assert sorted(c["case"]["payload_bytes"] for c in pooled["cases"]) == [8, 1024]
    assert all("pooled_from" not in c for c in pooled["cases"])          # one file each: as recorded


def test_the_report_shows_one_setup_for_two_runs_and_each_file_on_request(tmp_path):
    paths = [f.write(tmp_path / name, _set(seed, name)) for seed, name in ((1, "a.json"), (2, "b.json"))]
    pooled = load_sets(paths, pool=True)
    assert [label for label, _ in setups(pooled.tidy)] == ["m · Python 3.11.7 · fork · spread"]
    separate = load_sets(paths)
    assert [label for label, _ in setups(separate.tidy)] == ["m · Python 3.11.7 · fork · spread · a.json",
                                                            "m · Python 3.11.7 · fork · spread · b.json"]
    assert len(tidy_frame(pooled.sets).query("metric == 'latency_p50'")) == 1
    assert np.isfinite(pooled.tidy.query("metric == 'latency_p50'").ci_low).all()


def test_pooling_keeps_allocator_states_apart_and_every_files_skipped_mechanisms(tmp_path):

    def run(name, allocator=None, skipped=()):
        rs = f.result_set([f.case_record()])
        rs["run"] = {**(rs.get("run") or {}), "skipped_mechanisms": list(skipped),
                     **({"allocator": allocator} if allocator else {})}
        rs["_source"] = name
        return rs

    skip = {"mechanism": "celery", "reason": "celery is not installed"}
    pooled = pool_runs([run("a.json"), run("b.json", skipped=[skip]), run("c.json", "warm")])
    assert [p["_source"] for p in pooled] == ["a.json + b.json", "c.json"]
    assert pooled[0]["run"]["skipped_mechanisms"] == [{**skip, "source": "b.json"}]


def test_a_pooled_set_carries_the_machines_between_run_sd_if_any_of_its_files_recorded_it():
    from ipcbench.results.schema import between_run_of

    old, new = f.result_set([f.case_record()]), f.result_set([f.case_record()])
    old["_source"], new["_source"] = "old.json", "new.json"
    new["run"] = {**(new.get("run") or {}), "between_run": {"latency_p50": 0.1, "throughput_msgs": 0.2}}
    pooled = pool_runs([old, new])
    assert len(pooled) == 1 and between_run_of(pooled[0]) == {"latency_p50": 0.1, "throughput_msgs": 0.2,
                                                             "throughput_bytes": 0.2}
    assert between_run_of(pool_runs([old])[0]) == {}


def test_runs_whose_idle_cpus_waited_differently_are_not_pooled():
    """machine.cpu_idle: a set that recorded another idle setting is a setup of its own; a set from before
    the setting was recorded pools with its machine's one recorded setting, and stays alone where the
    machine's files recorded several (it cannot be told which it ran under)."""
    polled = {"driver": "haltpoll", "governor": "haltpoll", "guest_halt_poll_ns": 200000}
    halted = {**polled, "guest_halt_poll_ns": 0}

    def run(name, idle=None, seed=1):
        rs = _set(seed, name)
        rs["machine"] = {k: v for k, v in rs["machine"].items() if k != "cpu_idle"}    # a file from before it
        if idle is not None:
            rs["machine"]["cpu_idle"] = idle
        return rs

    sets = [run("a.json", halted), run("b.json", polled, 2), run("c.json", halted, 3), run("old.json", seed=4)]
    assert [p["_source"] for p in pool_runs(sets)] == ["a.json + c.json", "b.json", "old.json"]
    assert [p["_source"] for p in pool_runs([run("old.json"), run("a.json", halted, 2)])] == ["old.json + a.json"]
    assert [p["_source"] for p in pool_runs([run("x.json"), run("y.json", seed=2)])] == ["x.json + y.json"]
