"""Every mechanism end-to-end on a tiny case, in real processes (rounds forked from the warm launcher);
failures and reaping; the fresh-interpreter fallback; an interleaved, adaptive run."""

import dataclasses
from pathlib import Path

import pytest

from ipcbench.measure.mechanisms import all_mechanisms
from ipcbench.measure.progress import QuietProgress
from ipcbench.measure.runner import ResultWriter, RunOptions, run_case, run_cases, run_order
from ipcbench.plan.cases import Case, RoundSpec
from ipcbench.results.schema import load_result

TINY = RoundSpec(budget_s=0.005, min_messages=3, max_window_s=2, max_messages=300, warmup=2, warmup_s=0.01,
                 timeout_s=10)
OPTS = RunOptions(spec=TINY, rounds=2, round_timeout_s=30)

CASES = []
for mech in all_mechanisms():
    for pattern in mech.patterns:
        size = 0 if pattern == "contention" else 1024
        workers = 2 if pattern in ("fanin", "rpc", "dispatch", "contention") else 1
        case = Case(mech.name, pattern, "bytes", size, workers, "fork")
        if mech.name == "celery":        # needs Celery and a Redis server (tests/test_celery.py: required in CI)
            from ipcbench.measure.celery_support import missing

            case = pytest.param(case, marks=pytest.mark.skipif(bool(missing()), reason=str(missing())))
        CASES.append(case)

DEFAULT_EXPECTED = {"latency_p50", "latency_max", "throughput_msgs", "throughput_bytes", "cpu_per_msg",
                    "faults_per_msg", "samples", "latency_round_spread"}
EXPECTED = {  # metrics each pattern must produce (tail percentiles: where the samples support them)
    "startup": {"latency_p50", "latency_max", "samples"},
    "rpc": DEFAULT_EXPECTED | {"latency_first_call"},     # a fresh proxy's first call: connect + authenticate
    "stream": DEFAULT_EXPECTED | {"latency_oneway_p50"},  # the paced phase: open-loop one-way latency
}
TAILS = {"latency_p90": 100, "latency_p99": 1000, "latency_p999": 10000}   # samples each needs


def test_every_seed_mechanism_has_a_case():
    names = {(c.values[0] if hasattr(c, "values") else c).mechanism for c in CASES}
    assert names == {"queue", "pipe_duplex", "pipe_simplex", "manager_dict", "manager_list", "manager_queue",
                     "pool_apply", "pool_apply_async", "process_start", "lock",
                     "simple_queue", "joinable_queue", "os_pipe", "socketpair", "thread_queue",
        "pool_map", "pool_map_chunksize1", "pool_imap", "process_pool_executor", "process_pool_executor_map",
        "pool_apply_async_callback", "pool_apply_async_window", "process_pool_executor_window", "pipe_duplex_oob",
        "shared_memory", "sharedctypes_array", "sharedctypes_array_nolock", "celery"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.mechanism}-{c.pattern}")
def test_mechanism_end_to_end(case, no_leftovers):
    rec = run_case(case, OPTS)
    assert rec["status"] == "ok", rec["error"]
    m = {k: v["value"] for k, v in rec["metrics"].items()}
    assert EXPECTED.get(case.pattern, DEFAULT_EXPECTED) <= set(m)
    for tail, need in TAILS.items():                  # a tail percentile is there, or said to be missing
        assert (tail in m) == (m["samples"] >= need)
        assert (tail in m) != (rec["noise"]["omitted"].get(tail) == f"needs >= {need:,} samples, has {int(m['samples']):,}")
    assert m["samples"] >= (2 if case.pattern in ("stream", "fanin") else 2 * TINY.min_messages)   # one-way: every 8th stamped
    assert 0 < m["latency_p50"] <= m.get("latency_p90", m["latency_max"]) <= m["latency_max"] < 30
    if "throughput_msgs" in m:
        assert m["throughput_msgs"] > 0
        assert m["throughput_bytes"] == pytest.approx(m["throughput_msgs"] * rec["rounds"][0]["bytes_per_op"])
        assert m["cpu_per_msg"] > 0
    assert len(rec["rounds"]) == 2 and all(r["ok"] for r in rec["rounds"])
    assert all(len(r["samples_ns"]) <= r["samples_total"] for r in rec["rounds"])
    assert rec["stop_reason"] in ("target met", "max rounds") and isinstance(rec["target_met"], bool)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_peers_from_forked_rounds(method, no_leftovers):
    rec = run_case(Case("pipe_duplex", "roundtrip", "bytes", 8, 1, method), OPTS)
    assert rec["status"] == "ok", rec["error"]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_fresh_interpreter_rounds_still_work(method, no_leftovers):
    rec = run_case(Case("queue", "roundtrip", "bytes", 8, 1, method),
                   RunOptions(spec=TINY, rounds=2, round_timeout_s=30, fresh_rounds=True))
    assert rec["status"] == "ok", rec["error"]


def test_hanging_peer_in_a_fresh_interpreter_is_killed_at_the_deadline(plugin_env, no_leftovers):
    opts = RunOptions(spec=TINY, rounds=2, round_timeout_s=3, fresh_rounds=True)
    rec = run_case(Case("test_hang", "roundtrip", "bytes", 8, 1, "fork"), opts)
    assert rec["status"] == "failed" and rec["stop_reason"] == "failed"
    assert rec["error"].startswith("timed out after 3 s in ")


def test_crashing_peer_fails_the_case_with_its_reason(plugin_env, no_leftovers):
    rec = run_case(Case("test_crash", "roundtrip", "bytes", 8, 1, "fork"), OPTS)
    assert rec["status"] == "failed"
    assert "peer process 'echo' exited with status 3" in rec["error"]
    assert rec["metrics"] == {} and len(rec["rounds"]) == 1      # stops at the first failed round
    assert (rec["stop_reason"], rec["target_met"]) == ("failed", False)


def test_peer_exception_is_named_in_the_reason(plugin_env, no_leftovers):
    rec = run_case(Case("test_raise", "roundtrip", "bytes", 8, 1, "fork"), OPTS)
    assert rec["status"] == "failed"
    assert rec["error"] == ("peer process 'echo' exited with status 1 during the round "
                            "(last error in the round: ValueError: bad peer on purpose)")


def test_stored_samples_keep_the_same_fraction_of_every_round(no_leftovers):
    opts = RunOptions(spec=TINY, rounds=2, round_timeout_s=30, max_stored_samples=20)
    rec = run_case(Case("pipe_duplex", "roundtrip", "bytes", 8, 1, "fork"), opts)
    stored = [len(r["samples_ns"]) for r in rec["rounds"]]
    total = [r["samples_total"] for r in rec["rounds"]]
    assert sum(stored) <= 20
    for s, t in zip(stored, total):
        assert s == max(1, int(t * min(1.0, 20 / sum(total))))     # all of them when a loaded machine got few


def test_hanging_peer_is_killed_at_the_deadline(plugin_env, no_leftovers):
    opts = RunOptions(spec=TINY, rounds=2, round_timeout_s=3)
    rec = run_case(Case("test_hang", "roundtrip", "bytes", 8, 1, "fork"), opts)
    assert rec["status"] == "failed"
    assert rec["error"].startswith("timed out after 3 s in ")
    assert "all its processes were killed" in rec["error"]


def test_pattern_error_is_recorded(plugin_env, no_leftovers):
    rec = run_case(Case("test_refuse", "roundtrip", "bytes", 8, 1, "spawn"), OPTS)
    assert (rec["status"], rec["error"]) == ("failed", "refused on purpose")


def test_interleaved_run_writes_a_valid_file_with_order_steal_and_load(tmp_path, no_leftovers):
    cases = [Case("pipe_duplex", "roundtrip", "bytes", 8, 1, "fork"),
             Case("process_start", "startup", "bytes", 0, 1, "fork"),
             Case("queue", "stream", "bytes", 8, 1, "fork")]
    opts = RunOptions(spec=TINY, rounds=2, max_rounds=4, target_ci=0.5, round_timeout_s=30, seed=2024)
    writer = ResultWriter(tmp_path / "r.json", "e2e", {"rounds": 2})
    run_cases(cases, opts, writer, QuietProgress())
    data = load_result(tmp_path / "r.json")
    assert data["run"]["status"] == "complete"
    assert data["run"]["order"]["seed"] == 2024 and data["run"]["order"]["rule"] == "shuffled-blocks-adaptive-v1"
    assert data["run"]["launcher"] == "warm-fork" and data["run"]["launcher_starts"] == 1
    assert data["run"]["adaptive"] == {"rounds_min": 2, "rounds_max": 4, "target_ci": 0.5, "case_budget_s": None,
                                       "run_budget_s": None, "reach_factor": None, "rounds_floor": None}
    assert [c["case"]["mechanism"] for c in data["cases"]] == ["pipe_duplex", "process_start", "queue"]
    got = [len(c["rounds"]) for c in data["cases"]]
    order = run_order(3, 2, 2024, data["run"]["order"]["block_cases"], 4, more=lambda c, d: d < got[c])
    linux = Path("/proc/stat").exists()
    for i, rec in enumerate(data["cases"]):
        assert rec["status"] == "ok", rec["error"]
        assert rec["rounds_planned"] == 2 and 2 <= len(rec["rounds"]) <= 4
        assert rec["target_met"] == (rec["stop_reason"] == "target met")
        assert rec["target_met"] == (rec["ci_reached"] <= 0.5)
        assert rec["stop_reason"] == "target met" or len(rec["rounds"]) == 4
        assert [r["order"] for r in rec["rounds"]] == [k for k, (c, _) in enumerate(order) if c == i]
        for r in rec["rounds"]:
            assert r["start_s"] >= 0
            assert {"steal_s", "steal_span_s", "steal_cpus", "load1", "procs_running"} <= set(r)
            if linux:
                assert r["steal_s"] >= 0 and r["steal_span_s"] > 0 and r["steal_cpus"] >= 1
                assert r["load1"] >= 0 and r["procs_running"] >= 1
    starts = sorted(r["start_s"] for rec in data["cases"] for r in rec["rounds"])
    by_order = [r["start_s"] for _, r in sorted((r["order"], r) for rec in data["cases"] for r in rec["rounds"])]
    assert by_order == starts                                 # rounds ran in the recorded order


def test_run_case_rounds_carry_steal_and_load(no_leftovers):
    rec = run_case(Case("pipe_duplex", "roundtrip", "bytes", 8, 1, "fork"), OPTS)
    assert [r["order"] for r in rec["rounds"]] == [0, 1] and rec["rounds_planned"] == 2
    assert all("steal_s" in r and "load1" in r for r in rec["rounds"])


def test_one_way_queues_are_unbounded_and_filled_before_the_window(no_leftovers):
    """Queue() as users make it; its producers put everything first and the window times the drain
    (patterns._one_way); a Manager's queue stays bounded (its server copies every item)."""
    import fcntl
    import os
    import pickle

    from ipcbench.measure.channels import bounded_size

    r, w = os.pipe()
    capacity = fcntl.fcntl(r, fcntl.F_GETPIPE_SZ)
    os.close(r)
    os.close(w)
    in_pipe = -(-capacity // (len(pickle.dumps(b"x" * 1024, protocol=pickle.HIGHEST_PROTOCOL)) + 4))
    for mech, buffered in (("queue", in_pipe), ("joinable_queue", in_pipe), ("thread_queue", 0)):
        rec = run_case(Case(mech, "stream", "bytes", 1024, 1, "fork"), OPTS)
        assert rec["status"] == "ok", rec["error"]
        params = rec["rounds"][0]["params"]
        assert params["maxsize"] == 0 and params["steady_after_ms"] == 0
        assert params["window_starts"] == ("after the producers have put all their messages, the messages the "
                                           "queue's pipe held then were received, and the drain's first "
                                           "warmup_min_s")
        assert params["buffered_skipped"] == buffered, mech     # ~63 messages of 1 KiB in a 64 KiB pipe
        assert params["drain_warmup_skipped"] == 0              # TINY: warmup_min_s 0
        assert "unbounded queue, filled before the window" in params["latency_is"]
    # With a warm-up time the drain's first warmup_min_s is received untimed too (up to half of what is
    # left after the pipe's messages: the queue holds twice max_messages then), and the window follows.
    warm = RunOptions(spec=dataclasses.replace(TINY, warmup_min_s=0.01), rounds=1, round_timeout_s=30)
    rec = run_case(Case("queue", "stream", "bytes", 1024, 1, "fork"), warm)
    assert rec["status"] == "ok", rec["error"]
    params = rec["rounds"][0]["params"]
    assert 1 <= params["drain_warmup_skipped"] <= (2 * TINY.max_messages - params["buffered_skipped"]) // 2
    assert rec["rounds"][0]["ops"] >= 2
    rec = run_case(Case("manager_queue", "fanin", "bytes", 1024, 2, "fork"), OPTS)
    assert rec["status"] == "ok", rec["error"]
    params = rec["rounds"][0]["params"]
    assert params["maxsize"] == bounded_size(1024) and "window_starts" not in params
    assert params["latency_is"].startswith("time in the channel behind a full backlog")
