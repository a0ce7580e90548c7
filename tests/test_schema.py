import json

import pytest

from ipcbench.errors import UserError
from ipcbench.results.io import write_json_atomic as write_atomic
from ipcbench.results.schema import SCHEMA_VERSION, load_result
from tests.factories import case_record, result_set, write


def test_write_atomic_roundtrip_and_no_temp_left(tmp_path):
    data = result_set([case_record()])
    path = tmp_path / "sub" / "r.json"
    write_atomic(path, data)
    assert load_result(path)["cases"][0]["case"]["mechanism"] == "pipe_duplex"
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]
    assert path.stat().st_mode & 0o044          # readable by others, not 0600


def test_write_atomic_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_atomic(tmp_path / "x.json", {"v": float("nan")})
    assert list(tmp_path.iterdir()) == []      # nothing half-written


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    ('{"schema": "ipcbench-result", "schema_ver', "not valid JSON"),
    ('{"benchmarks_not": []}', "not an ipcbench result file"),
    ('[1, 2]', "not an ipcbench result file"),
    ('{"schema": "ipcbench-result", "schema_version": 99, "cases": []}', "newer than this ipcbench"),
    ('{"schema": "ipcbench-result", "schema_version": 0, "cases": []}', "cannot be migrated"),
    ('{"schema": "ipcbench-result", "schema_version": "1", "cases": []}', "no integer schema_version"),
    ('', "not valid JSON"),
    ('{"schema": "ipcbench-result", "schema_version": 3, "cases": [{"case": {"mechanism": "queue"}}]}',
     "case 1 has no start_method, pattern, payload_kind, payload_bytes, workers, placement; the file is damaged"),
    ('{"schema": "ipcbench-result", "schema_version": 3, "cases": [7]}', "case 1 has no start_method, mechanism, "),
])
def test_bad_files_give_one_clear_error(tmp_path, content, message):
    p = tmp_path / "r.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(UserError, match=message) as exc:
        load_result(p)
    assert "\n" not in str(exc.value) and str(p) in str(exc.value)


def test_current_version_loads(tmp_path):
    p = write(tmp_path / "r.json", result_set([]))
    assert load_result(p)["schema_version"] == SCHEMA_VERSION
    assert json.loads(p.read_text())["schema"] == "ipcbench-result"


def test_version_1_files_migrate_to_round_level_estimates(tmp_path):
    import json
    import math

    rec = {"case": {"mechanism": "pipe_duplex", "pattern": "roundtrip", "payload_kind": "bytes", "payload_bytes": 8,
                    "workers": 1, "start_method": "fork"}, "status": "ok", "error": None,
           "metrics": {"latency_p50": {"value": 1.0e-6, "unit": "s"}, "latency_p99": {"value": 9e-6, "unit": "s"},
                       "throughput_msgs": {"value": 1000.0, "unit": "msg/s"},
                       "throughput_bytes": {"value": 8000.0, "unit": "B/s"}},
           "noise": {"rounds": 3, "round_p50_s": [1e-6, 2e-6, 4e-6], "round_throughput": [1000.0, 1000.0, 1000.0],
                     "median_ci_s": [0.9e-6, 1.1e-6], "flags": ["noisy"]},
           "rounds": [], "wall_s": 1.0}
    p = tmp_path / "v1.json"
    p.write_text(json.dumps({"schema": "ipcbench-result", "schema_version": 1, "cases": [rec]}))
    data = load_result(p)
    assert data["schema_version"] == SCHEMA_VERSION == 7
    got = data["cases"][0]
    assert got["case"]["placement"] == "os"             # version 3: rounds before it were not pinned
    assert got["metrics"]["latency_p50"]["value"] == pytest.approx(2e-6)          # geometric mean of rounds
    assert got["metrics"]["latency_p99"]["value"] == 9e-6                         # tails stay as recorded
    assert got["metrics"]["throughput_msgs"]["value"] == pytest.approx(1000.0)
    assert got["metrics"]["throughput_bytes"]["value"] == pytest.approx(8000.0)
    noise = got["noise"]
    lo, hi = noise["ci"]["latency_p50"]
    assert lo < 2e-6 < hi and noise["ci_rel"]["latency_p50"] > 1          # 3 rounds 2x apart: very wide
    assert noise["ci"]["throughput_msgs"] == pytest.approx([1000.0, 1000.0])
    assert noise["flags"] == ["wide_ci", "noisy"] and noise["migrated_from"] == 1
    assert "median_ci_s" not in noise and not math.isnan(noise["target_ci"])


def _old_record(mech: str, pattern: str = "dispatch", workers: int = 1) -> dict:
    """A case record of an older schema, as far as the renaming migrations look at it."""
    return {"case": {"mechanism": mech, "pattern": pattern, "payload_kind": "bytes", "payload_bytes": 8,
                     "workers": workers, "start_method": "fork", "placement": "spread"}, "status": "ok",
            "error": None, "metrics": {}, "noise": {}, "rounds": [], "wall_s": 1.0}


def _load_old(tmp_path, version: int, cases: list[dict]) -> dict:
    p = tmp_path / f"v{version}.json"
    p.write_text(json.dumps({"schema": "ipcbench-result", "schema_version": version, "cases": cases}))
    return load_result(p)


def test_version_3_windowed_apply_async_and_executor_cases_keep_a_name_of_their_own(tmp_path):
    """Until version 3 pool_apply_async kept 4 tasks per worker in flight; now that name submits a batch and
    collects it, so old cases must not be set beside new ones under the same name."""
    data = _load_old(tmp_path, 3, [_old_record("pool_apply_async"), _old_record("process_pool_executor"),
                                   _old_record("pool_apply")])
    assert [c["case"]["mechanism"] for c in data["cases"]] == [
        "pool_apply_async_window4", "process_pool_executor_window4", "pool_apply"]


def test_version_4_bounded_queue_streams_and_stamped_locks_keep_names_of_their_own(tmp_path):
    """Until version 4 the queues' one-way cases ran on Queue(maxsize) and lock clients stamped every cycle."""
    cases = [_old_record("queue", "stream"), _old_record("queue", "roundtrip"), _old_record("thread_queue", "fanin"),
             _old_record("joinable_queue", "stream"), _old_record("lock", "contention"),
             _old_record("pipe_simplex", "stream")]
    data = _load_old(tmp_path, 4, cases)
    assert data["schema_version"] == SCHEMA_VERSION
    assert [c["case"]["mechanism"] for c in data["cases"]] == [
        "queue_bounded", "queue", "thread_queue_bounded", "joinable_queue_bounded", "lock_stamped", "pipe_simplex"]


def test_version_5_locks_stamped_every_32_cycles_keep_a_name_of_their_own(tmp_path):
    """Until version 5 a lock client read the clock every 32 cycles (1.2-1.7x the plain loop's rate)."""
    cases = [_old_record("lock", "contention", 2), _old_record("queue", "stream", 2),
             _old_record("lock_stamped", "contention", 2)]
    data = _load_old(tmp_path, 5, cases)
    assert data["schema_version"] == SCHEMA_VERSION
    assert [c["case"]["mechanism"] for c in data["cases"]] == ["lock_batch32", "queue", "lock_stamped"]


def test_version_6_submit_all_jobs_of_256_keep_names_of_their_own(tmp_path):
    """Until version 6 the submit-all dispatch forms submitted jobs of 256 tasks (now 1,024)."""
    cases = [_old_record("pool_apply_async"), _old_record("pool_apply_async_callback"),
             _old_record("process_pool_executor"), _old_record("pool_apply_async_window"),
             _old_record("pool_map"), _old_record("lock", "contention")]
    data = _load_old(tmp_path, 6, cases)
    assert data["schema_version"] == 7
    assert [c["case"]["mechanism"] for c in data["cases"]] == [
        "pool_apply_async_batch256", "pool_apply_async_callback_batch256", "process_pool_executor_batch256",
        "pool_apply_async_window", "pool_map", "lock"]
