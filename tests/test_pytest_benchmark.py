"""pytest-benchmark front end: sessions, the extra_info format and its reader, and a real ``pytest bench/``
run read back by ``pytest-benchmark compare`` and by ``ipcbench export``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ipcbench.cli import main as cli_main
from ipcbench.errors import UserError
from ipcbench.measure import mechanisms, patterns
from ipcbench.measure.harness import RoundFailed
from ipcbench.measure.mechanisms import Mechanism, all_mechanisms
from ipcbench.measure.patterns import Pattern
from ipcbench.measure.sessions import NoSessionForm, Session, builder_for, open_session
from ipcbench.plan.cases import Case, RoundSpec
from ipcbench.plan.presets import PRESETS, build_grid, start_methods, worker_counts
from ipcbench.results.formats import pytest_benchmark as pb
from ipcbench.results.frame import load_sets, read_set

ROOT = Path(__file__).resolve().parent.parent
SPEC = RoundSpec(budget_s=0.02, min_messages=3, max_window_s=1.0, max_messages=500, warmup=3, warmup_s=0.01,
                 timeout_s=10.0)


def case(mechanism="pipe_duplex", pattern="roundtrip", size=8, workers=1, method="fork") -> Case:
    return Case(mechanism, pattern, "bytes", size, workers, method)


# --------------------------------------------------------------------------------------------------
# sessions
# --------------------------------------------------------------------------------------------------
def test_case_id_names_every_dimension():
    assert case().id == "pipe_duplex/roundtrip/8B/w1/fork/spread"
    assert case("queue", "fanin", 65536, 2, "spawn").id == "queue/fanin/64KiB/w2/spawn/spread"
    assert case("queue", "stream", 1536).id == "queue/stream/1.5KiB/w1/fork/spread"


def test_every_registered_pattern_has_a_session_form():
    # so no built-in case is skipped by the pytest-benchmark front end
    for mech in all_mechanisms():
        for pattern in mech.patterns:
            if mech.name == "celery":     # its own driver, measured by `ipcbench run` only (docs/celery.md)
                with pytest.raises(NoSessionForm, match="celery/dispatch .*has no session form"):
                    builder_for(case(mech.name, pattern))
                continue
            assert callable(builder_for(case(mech.name, pattern))), (mech.name, pattern)


def test_a_pattern_function_without_session_form_is_named(monkeypatch):
    def my_roundtrip(rnd, mech):
        raise AssertionError("not called")

    mine = Mechanism("mine", "x", "s", patterns=(Pattern("roundtrip", my_roundtrip),))
    monkeypatch.setattr(mechanisms, "_REGISTRY", {"mine": mine})
    with pytest.raises(NoSessionForm, match=r"mine/roundtrip uses .*my_roundtrip, which has no session form"):
        builder_for(case("mine"))
    with pytest.raises(NoSessionForm, match="mine has no stream pattern"):
        builder_for(case("mine", "stream"))


@pytest.mark.parametrize("per_op, budget, expected", [
    (1e-3, 0.02, 20),          # budget / per-op
    (1e-6, 0.02, 500),         # capped by max_messages
    (0.5, 0.02, 3),            # at least min_messages
    (0.01, 10.0, 100),         # max_window_s / per-op
    (0.0, 0.02, 500),          # no estimate: max_messages
])
def test_plan_calls_respects_the_round_limits(per_op, budget, expected):
    assert Session.plan_calls(SimpleNamespace(spec=SPEC), per_op, budget) == expected


def test_roundtrip_session_times_real_echoes_and_reaps(no_leftovers):
    with open_session(case(size=64), SPEC) as s:
        peers = list(s.rnd.peers)
        assert [p.name for p in peers] == ["echo"] and peers[0].is_alive()
        assert s.op.timed == "latency" and s.op.bytes_per_op == 128
        s.warmup()
        s.begin()
        replies = [s.op.call() for _ in range(20)]
        s.end()
        assert all(r == patterns.make_payload("bytes", 64) for r in replies)
        m = s.measured([30_000] * 20)
    assert all(p.exitcode == 0 for p in peers)            # told to stop, exited by itself
    assert m["samples_ns"] == [30_000] * 20
    assert (m["ops"], m["window_ns"]) == (20, 600_000)     # back-to-back: calls / sum of call times
    assert m["cpu_s"] is None and m["window_cpu_s"] >= 0
    assert m["calls"] == 20 and m["wall_window_ns"] > 0


def test_check_rejects_a_wrong_echo(no_leftovers):
    with open_session(case(size=16), SPEC) as s, pytest.raises(RoundFailed, match="echo returned 3 bytes"):
        s.op.check(b"abc")


def test_stream_session_is_an_interval_op_with_wall_clock_throughput(no_leftovers):
    with open_session(case(pattern="stream"), SPEC) as s:
        assert s.op.timed == "interval"
        s.warmup()
        s.begin()
        msgs = [s.op.call() for _ in range(50)]
        s.end()
        s.op.check(msgs[-1])
        m = s.measured([1000] * 50)
    assert msgs == [patterns.make_payload("bytes", 8)] * 50
    assert m["samples_ns"] == []                            # no one-way latency is claimed
    assert m["ops"] == 50 and m["window_ns"] == m["wall_window_ns"] > 50 * 1000


def test_contention_with_other_processes_reports_no_throughput(no_leftovers):
    with open_session(case("lock", "contention", 0, workers=2), SPEC) as s:
        s.warmup()
        s.begin()
        n, t_end = 0, time.perf_counter() + 0.05
        while time.perf_counter() < t_end:
            s.op.call()
            n += 1
        s.end()
        m = s.measured([200] * n)
    assert m["ops"] is None and m["window_ns"] is None
    assert m["other_clients"] == 1 and m["other_ops"] > 0 and m["other_clients_stopped_early"] == 0
    assert len(m["samples_ns"]) == n


def test_a_peer_that_dies_interrupts_a_blocked_call(no_leftovers):
    with pytest.raises(RoundFailed, match="peer process 'echo' was killed by signal 9"):
        with open_session(case(), SPEC) as s:
            os.kill(s.rnd.peers[0].pid, signal.SIGKILL)
            s.op.call()                                    # would block forever in recv without the monitor
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL   # handler restored


def test_a_hung_session_times_out(no_leftovers):
    with pytest.raises(RoundFailed, match=r"timed out after 0.5 s"):
        with open_session(case(), SPEC, timeout_s=0.5) as s:
            s.op.finish()                                  # the echo peer stops; nobody will answer
            s.op.call()


def test_startup_session_starts_one_process_per_call(no_leftovers):
    with open_session(case("process_start", "startup"), SPEC) as s:
        assert s.op.setup is not None and not s.op.throughput
        for _ in range(3):
            s.op.setup()
            s.op.call()
        m = s.measured([2_000_000] * 3)
    assert m["ops"] is None and m["cpu_s"] is None and m["samples_ns"] == [2_000_000] * 3


# --------------------------------------------------------------------------------------------------
# extra_info <-> ipcbench result set
# --------------------------------------------------------------------------------------------------
DATA_S = [1e-6, 2e-6, 3e-6, 4e-6, 100e-6]


def bench_entry(c: Case, data_s=DATA_S, timed="latency", with_data=True, measured=None, timer="perf_counter"):
    samples = pb.seconds_to_ns(data_s)
    if measured is None:
        measured = {"samples_ns": samples if timed == "latency" else [], "ops": len(samples),
                    "window_ns": sum(samples), "bytes_per_op": 16, "cpu_s": None, "placement": {},
                    "calls": len(samples)}
    stats = {"min": min(data_s), "max": max(data_s), "mean": float(np.mean(data_s)), "rounds": len(data_s)}
    if with_data:
        stats["data"] = list(data_s)
    return {"group": c.pattern, "name": f"test_x[{c.id}]", "fullname": f"bench/test_x.py::test_x[{c.id}]",
            "params": {"case": c.id}, "param": c.id, "options": {"timer": timer},
            "extra_info": pb.extra_info(c, measured, "what one call is", timed, "smoke", 0.5), "stats": stats}


def pb_file(benchmarks, machine_info=None, top=None) -> dict:
    d = {"machine_info": machine_info if machine_info is not None else
         {"node": "box", "cpu": {"brand_raw": "CPU X", "count": 4}, "python_version": "3.12.1",
          "python_implementation": "CPython", "system": "Linux", "release": "6.1", "machine": "x86_64"},
         "commit_info": {"id": "abc"}, "benchmarks": benchmarks, "datetime": "2026-11-26T10:00:00+00:00",
         "version": "5.2.3"}
    if top is not None:
        d["ipcbench"] = top
    return d


def the_case(rs, i=0):
    rec = rs["cases"][i]
    return rec, {k: v["value"] for k, v in rec["metrics"].items()}


def test_metrics_come_from_every_per_call_duration():
    rs = pb.from_pytest_benchmark(pb_file([bench_entry(case())]), "f.json")
    rec, m = the_case(rs)
    assert rec["status"] == "ok" and rec["case"] == case().to_dict()
    assert m["latency_p50"] == pytest.approx(3e-6)
    assert m["latency_max"] == pytest.approx(100e-6)
    assert "latency_p90" not in m            # 5 durations cannot support a p90 (ipcbench needs 100)
    assert rec["noise"]["omitted"]["latency_p90"] == "needs >= 100 samples, has 5"
    assert m["samples"] == 5
    assert m["throughput_msgs"] == pytest.approx(5 / 110e-6)
    assert m["throughput_bytes"] == pytest.approx(16 * 5 / 110e-6)
    assert rec["rounds"][0]["samples_ns"] == [1000, 2000, 3000, 4000, 100000]
    assert rec["rounds"][0]["pytest_benchmark"]["name"] == "bench/test_x.py::test_x[pipe_duplex/roundtrip/8B/w1/fork/spread]"
    assert rs["run"]["front_end"] == "pytest-benchmark" and rs["run"]["preset"] == "smoke"


def test_stats_data_wins_over_stored_metrics():
    entry = bench_entry(case())
    entry["extra_info"]["ipcbench"]["metrics"]["latency_p50"]["value"] = 999.0
    _, m = the_case(pb.from_pytest_benchmark(pb_file([entry]), "f.json"))
    assert m["latency_p50"] == pytest.approx(3e-6)


def test_without_data_complete_extra_info_samples_are_used():
    entry = bench_entry(case(), with_data=False)
    entry["extra_info"]["ipcbench"]["metrics"]["latency_p50"]["value"] = 999.0
    _, m = the_case(pb.from_pytest_benchmark(pb_file([entry]), "f.json"))
    assert m["latency_p50"] == pytest.approx(3e-6)


def test_without_data_bounded_samples_fall_back_to_metrics_of_all_samples():
    rng = np.random.default_rng(1)
    data = list(rng.lognormal(np.log(30e-6), 0.3, pb.SAMPLE_CAP + 1000))
    rec, m = the_case(pb.from_pytest_benchmark(pb_file([bench_entry(case(), data, with_data=False)]), "f.json"))
    full_ns = np.asarray(pb.seconds_to_ns(data)) / 1e9
    assert m["latency_p50"] == pytest.approx(np.percentile(full_ns, 50), rel=1e-12)
    assert m["latency_p99"] == pytest.approx(np.percentile(full_ns, 99), rel=1e-12)
    assert len(rec["rounds"][0]["samples_ns"]) == pb.SAMPLE_CAP
    assert rec["rounds"][0]["samples_total"] == pb.SAMPLE_CAP + 1000


def test_interval_ops_give_throughput_and_no_latency():
    measured = {"samples_ns": [], "ops": 5, "window_ns": 200_000, "bytes_per_op": 8, "cpu_s": None, "placement": {}}
    entry = bench_entry(case(pattern="stream"), timed="interval", measured=measured)
    rec, m = the_case(pb.from_pytest_benchmark(pb_file([entry]), "f.json"))
    assert set(m) == {"throughput_msgs", "throughput_bytes"}      # stats.data is recv time, not latency
    assert m["throughput_msgs"] == pytest.approx(5 / 200e-6)
    assert rec["rounds"][0]["samples_ns"] == []


def test_a_benchmark_timed_with_another_clock_is_a_failed_case():
    rec, _ = the_case(pb.from_pytest_benchmark(pb_file([bench_entry(case(), timer="process_time")]), "f.json"))
    assert rec["status"] == "failed"
    assert rec["error"] == "timed with process_time, not perf_counter: not a wall-clock latency"


def test_no_samples_at_all_is_a_failed_case_with_the_reason():
    entry = bench_entry(case(), with_data=False)
    del entry["extra_info"]["ipcbench"]["samples_ns"], entry["extra_info"]["ipcbench"]["metrics"]
    rec, _ = the_case(pb.from_pytest_benchmark(pb_file([entry]), "f.json"))
    assert rec["status"] == "failed" and "no per-operation samples stored" in rec["error"]


def test_foreign_and_newer_files_are_refused_with_a_way_forward():
    foreign = pb_file([{"name": "test_sort", "extra_info": {}, "stats": {"data": [1e-6]}}])
    with pytest.raises(UserError, match=r"none of its 1 benchmark\(s\) came from ipcbench's bench/ suite.*"
                                        r"pytest bench/ --benchmark-json=FILE"):
        pb.from_pytest_benchmark(foreign, "f.json")
    newer = bench_entry(case())
    newer["extra_info"]["ipcbench"]["format"] = pb.FORMAT + 1
    with pytest.raises(UserError, match="newer ipcbench"):
        pb.from_pytest_benchmark(pb_file([newer]), "f.json")


def test_failed_cases_and_machine_metadata(tmp_path):
    ours = {"machine": {"machine_id": "box-1a2b3c", "cpu_model": "CPU X", "system_checks": [
        {"check": "System load", "state": "warning", "message": "busy", "source": "ipcbench"}]},
        "python": {"python_version": "3.12.1"}, "ipcbench_version": "0.1.0"}
    top = {"format": 1, "preset": "quick", "failed": [{"case": case("queue").to_dict(), "error": "peer died"}]}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(pb_file([bench_entry(case())], machine_info={"node": "box", "ipcbench": ours},
                                       top=top)))
    rs = read_set(path)                                       # frame's reader: converted, then schema-checked
    assert rs["machine_id"] == "box-1a2b3c" and rs["machine"]["system_checks"][0]["message"] == "busy"
    assert rs["run"]["preset"] == "quick"
    loaded = load_sets([path])
    assert loaded.failures[["mechanism", "error"]].values.tolist() == [["queue", "peer died"]]
    p50 = loaded.tidy.query("metric == 'latency_p50'")
    assert p50[["machine_id", "python_version", "mechanism"]].values.tolist() == [["box-1a2b3c", "3.12.1",
                                                                                  "pipe_duplex"]]
    # without ipcbench's metadata, pytest-benchmark's machine_info is used
    rs2 = pb.from_pytest_benchmark(pb_file([bench_entry(case())]), "f.json")
    assert rs2["machine_id"] == "box" and rs2["machine"]["cpu_model"] == "CPU X"
    assert rs2["python"]["python_version"] == "3.12.1"


# --------------------------------------------------------------------------------------------------
# the real thing: pytest bench/ in a subprocess
# --------------------------------------------------------------------------------------------------
FAULTY_PLUGIN = """
    import os

    from ipcbench.measure.channels import Endpoint
    from ipcbench.measure.mechanisms import Mechanism
    from ipcbench.measure.patterns import Pattern


    class Dies:
        def recv(self):
            os._exit(7)

        def send(self, obj):
            pass


    def channel(rnd, bounded):
        a, b = rnd.ctx.Pipe()
        rnd.stack.callback(a.close)
        rnd.stack.callback(b.close)
        return Endpoint(a, a), Endpoint(Dies(), b)


    def own_roundtrip(rnd, mech):
        raise AssertionError("never called by the pytest front end")


    MECHANISMS = [
        Mechanism("dies_echo", "faulty", "echo peer exits at once", patterns=("roundtrip",), make_channel=channel),
        Mechanism("own_fn", "faulty", "a pattern function of its own",
                  patterns=(Pattern("roundtrip", own_roundtrip),)),
    ]
"""


def _env(tmp_path) -> dict:
    (tmp_path / "faulty_bench_plugin.py").write_text(textwrap.dedent(FAULTY_PLUGIN))
    env = dict(os.environ, IPCBENCH_PRESET="smoke", IPCBENCH_PLUGINS="faulty_bench_plugin")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "b.json"
    k = ("pipe_duplex/roundtrip/8B or pipe_duplex/stream/8B or dies_echo/roundtrip/8B "
         "or own_fn/roundtrip/8B")
    proc = subprocess.run([sys.executable, "-m", "pytest", "bench/", "-k", k, "-p", "no:cacheprovider", "-q",
                           "-rs", f"--benchmark-json={out}"], cwd=ROOT, env=_env(tmp), capture_output=True,
                          text=True, timeout=120)
    return SimpleNamespace(proc=proc, out=out, data=json.loads(out.read_text()), tmp=tmp)


def by_param(data):
    return {b["param"]: b for b in data["benchmarks"]}


@pytest.mark.slow
def test_bench_run_outcomes(bench_run):
    out = bench_run.proc.stdout
    assert bench_run.proc.returncode == 1, out                       # the dying peer fails its test
    assert "2 passed" in out and "1 failed" in out and "1 skipped" in out, out
    assert "own_fn/roundtrip uses own_roundtrip, which has no session form" in out
    assert "peer process 'echo' exited with status 7 during the round" in out
    failed = bench_run.data["ipcbench"]["failed"]
    assert failed == [{"case": case("dies_echo").to_dict(),
                       "error": "peer process 'echo' exited with status 7 during the round"}]


@pytest.mark.slow
def test_bench_run_stores_per_call_times_and_metrics_from_them(bench_run):
    benches = by_param(bench_run.data)
    assert set(benches) == {"pipe_duplex/roundtrip/8B/w1/fork/spread", "pipe_duplex/stream/8B/w1/fork/spread"}
    rt = benches["pipe_duplex/roundtrip/8B/w1/fork/spread"]
    info, ib = rt["extra_info"], rt["extra_info"]["ipcbench"]
    assert {k: info[k] for k in (*pb.CASE_KEYS, "placement")} == case().to_dict()
    assert rt["stats"]["iterations"] == 1
    data = rt["stats"]["data"]
    assert len(data) == rt["stats"]["rounds"] == ib["samples_total"] == ib["calls"] >= 3
    assert ib["metrics"]["latency_p50"]["value"] == pytest.approx(np.percentile(pb.seconds_to_ns(data), 50) / 1e9)
    assert ib["samples_ns"] == pb.seconds_to_ns(data)[:pb.SAMPLE_CAP]
    assert rt["group"] == "roundtrip 8B/w1/fork/spread"
    st = benches["pipe_duplex/stream/8B/w1/fork/spread"]["extra_info"]["ipcbench"]
    assert st["timed"] == "interval" and st["samples_total"] == 0 and "latency_p50" not in st["metrics"]
    assert st["metrics"]["throughput_msgs"]["value"] == pytest.approx(st["calls"] / (st["wall_window_ns"] / 1e9))
    machine = bench_run.data["machine_info"]["ipcbench"]["machine"]
    assert any(c["check"] == "Usable CPUs" for c in machine["system_checks"])


@pytest.mark.slow
def test_bench_json_loads_in_pytest_benchmark_compare(bench_run):
    proc = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", str(bench_run.out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Failed to load" not in proc.stdout + proc.stderr
    assert "test_pipes[pipe_duplex/roundtrip/8B/w1/fork/spread]" in proc.stdout
    assert "benchmark 'stream 8B/w1/fork/spread'" in proc.stdout


@pytest.mark.slow
def test_bench_json_exports_to_csv_and_pyperf(bench_run, capsys):
    csv_path, pyperf_path = bench_run.tmp / "b.csv", bench_run.tmp / "p.json"
    assert cli_main(["export", str(bench_run.out), "--format", "csv", "-o", str(csv_path)]) == 0
    import pandas as pd

    df = pd.read_csv(csv_path)
    rt = bench_run.data["benchmarks"]
    p50 = by_param(bench_run.data)["pipe_duplex/roundtrip/8B/w1/fork/spread"]["extra_info"]["ipcbench"]["metrics"]
    row = df[(df.mechanism == "pipe_duplex") & (df.pattern == "roundtrip") & (df.metric == "latency_p50")]
    assert row.value.tolist() == [pytest.approx(p50["latency_p50"]["value"])]
    assert len(rt) == 2 and sorted(df.pattern.unique()) == ["roundtrip", "stream"]

    assert cli_main(["export", str(bench_run.out), "--format", "pyperf", "-o", str(pyperf_path)]) == 0
    assert "left out pipe_duplex/stream/8B/w1/fork/spread" in capsys.readouterr().err
    import pyperf

    suite = pyperf.BenchmarkSuite.load(str(pyperf_path))
    names = suite.get_benchmark_names()
    assert "pipe_duplex/roundtrip/8B/w1/fork/spread" in names and "dies_echo/roundtrip/8B/w1/fork/spread" not in names
    bench = suite.get_benchmark("pipe_duplex/roundtrip/8B/w1/fork/spread")
    assert bench.median() == pytest.approx(p50["latency_p50"]["value"], rel=1e-9)


@pytest.mark.slow
def test_collected_cases_are_the_presets_cases():
    proc = subprocess.run([sys.executable, "-m", "pytest", "bench/", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=dict(os.environ, IPCBENCH_PRESET="smoke", IPCBENCH_PLUGINS=""),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = sorted(line.split("[", 1)[1].rstrip("]") for line in proc.stdout.splitlines() if "::" in line)
    preset = PRESETS["smoke"]
    expected = build_grid(None, None, list(preset.payload_sizes), worker_counts(preset.workers),
                          start_methods(preset.start_methods), list(preset.payload_kinds),
                          catalogue=all_mechanisms(), kind_sizes=preset.kind_sizes, kind_workers=preset.kind_workers)
    assert {c.payload_kind for c in expected} == {"bytes", "numpy", "object"}    # one id per kind
    assert ids == sorted(c.id for c in expected)
    assert "1 deselected" in proc.stdout                              # test_other_families has nothing to run


def test_mechanisms_declare_makers_and_patterns():
    # a mechanism names its maker and ipcbench's patterns; `run` and sessions read the same declaration
    mech = mechanisms.get("pipe_duplex")
    assert mech.patterns["roundtrip"] is patterns.PATTERNS["roundtrip"] and mech.make_channel is not None
