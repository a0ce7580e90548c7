"""pyperf export: built with pyperf's classes, read back with pyperf's own loader and CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pyperf
import pytest

from ipcbench.cli import main as cli_main
from ipcbench.errors import UserError
from ipcbench.results.formats.pyperf import to_suite, write_pyperf
from tests.factories import case_record, result_set, write

SAMPLES = [30_000 + 97 * i for i in range(300)]          # ns, three rounds of 100


def hand_built(**machine_extra):
    cases = [
        case_record(samples_ns=SAMPLES, rounds=3, cpu_per_op=1e-5),
        case_record(samples_ns=[2 * s for s in SAMPLES], rounds=3, mechanism="queue", payload_bytes=1024),
        case_record(status="failed", error="peer died", mechanism="pipe_simplex"),
    ]
    rs = result_set(cases)
    rs["machine"].update(machine_extra)
    return rs


def metric(rs, i, name):
    return rs["cases"][i]["metrics"][name]["value"]


def test_suite_round_trips_through_pyperf_loader(tmp_path):
    rs = hand_built()
    path = tmp_path / "p.json"
    left_out = write_pyperf([rs], str(path))
    assert left_out == [("pipe_simplex/roundtrip/8B/w1/fork/spread", "failed: peer died")]

    suite = pyperf.BenchmarkSuite.load(str(path))
    assert suite.get_benchmark_names() == ["pipe_duplex/roundtrip/8B/w1/fork/spread", "queue/roundtrip/1KiB/w1/fork/spread"]
    bench = suite.get_benchmark("pipe_duplex/roundtrip/8B/w1/fork/spread")
    assert bench.get_unit() == "second"
    assert bench.get_nrun() == 3                                  # one pyperf run per ipcbench round
    assert [len(r.values) for r in bench.get_runs()] == [100, 100, 100]
    assert bench.get_nvalue() == 300
    # pyperf's median is of the pooled per-message values (same samples, no batching); ipcbench's p50 is
    # the rounds' geometric mean of medians (rounds weigh equally), so it lies among the round medians
    assert bench.median() == pytest.approx(np.median(SAMPLES) / 1e9, rel=1e-12)
    round_medians = [np.median(r.values) for r in bench.get_runs()]
    assert min(round_medians) <= metric(rs, 0, "latency_p50") <= max(round_medians)
    assert min(bench.get_values()) == pytest.approx(min(SAMPLES) / 1e9)
    assert max(bench.get_values()) == pytest.approx(metric(rs, 0, "latency_max"))
    queue = suite.get_benchmark("queue/roundtrip/1KiB/w1/fork/spread")
    assert queue.median() == pytest.approx(2 * np.median(SAMPLES) / 1e9, rel=1e-12)


def test_metadata_carries_case_metrics_and_machine(tmp_path):
    rs = hand_built(pyperf={"cpu_config": "0-1=driver:acpi-cpufreq, governor:powersave", "perf_version": "2.11.0",
                            "date": "2026-01-01 00:00:00"},
                    system_checks=[{"check": "System load", "state": "warning", "message": "load 3.00 on 2 CPUs",
                                    "source": "ipcbench"},
                                   {"check": "ASLR", "state": "ok", "message": "Full randomization",
                                    "source": "pyperf"}])
    suite, _ = to_suite(rs)
    md = suite.get_benchmark("pipe_duplex/roundtrip/8B/w1/fork/spread").get_metadata()
    assert md["mechanism"] == "pipe_duplex" and md["pattern"] == "roundtrip"
    assert md["payload_bytes"] == 8 and md["workers"] == 1 and md["start_method"] == "fork"
    assert md["loops"] == 1
    assert md["tags"] == ["roundtrip"]
    assert md["ipcbench_throughput_msgs"] == pytest.approx(metric(rs, 0, "throughput_msgs"))
    assert md["ipcbench_cpu_per_msg"] == pytest.approx(1e-5)
    assert md["cpu_config"] == "0-1=driver:acpi-cpufreq, governor:powersave"     # pyperf's own key, passed on
    assert "date" not in md                                                    # collection time, not run time
    assert md["ipcbench_system_warnings"] == "System load: load 3.00 on 2 CPUs"
    assert md["python_version"] == "3.11.7" and md["ipcbench_machine_id"] == "test-machine"
    runs = suite.get_benchmark("pipe_duplex/roundtrip/8B/w1/fork/spread").get_runs()
    assert [r.get_metadata()["ipcbench_round"] for r in runs] == [0, 1, 2]
    assert [r.get_metadata()["ipcbench_round_samples_total"] for r in runs] == [100, 100, 100]


def test_throughput_only_cases_are_left_out_with_the_reason():
    rec = case_record(samples_ns=SAMPLES, rounds=1)
    rec["rounds"][0]["samples_ns"] = []
    suite, left_out = to_suite(result_set([case_record(samples_ns=SAMPLES), rec]))
    # both records are pipe_duplex/roundtrip/8B: the empty one is left out, the other exported
    assert left_out == [("pipe_duplex/roundtrip/8B/w1/fork/spread",
                         "no per-operation latency samples (a throughput-only case)")]
    assert len(suite) == 1


def test_nothing_exportable_and_several_sets_are_user_errors():
    with pytest.raises(UserError, match="no case with latency samples"):
        to_suite(result_set([case_record(status="failed")]))
    with pytest.raises(UserError, match=r"one result set at a time \(got 2\).*compare_to A.json B.json"):
        write_pyperf([hand_built(), hand_built()], io.StringIO())


def test_stdout_gets_pyperf_json():
    out = io.StringIO()
    write_pyperf([hand_built()], out)
    data = json.loads(out.getvalue())
    assert [b["metadata"]["name"] for b in data["benchmarks"]] == ["pipe_duplex/roundtrip/8B/w1/fork/spread",
                                                                   "queue/roundtrip/1KiB/w1/fork/spread"]


def test_export_command_output_is_read_by_pyperf_cli(tmp_path, capsys):
    src = write(tmp_path / "r.json", hand_built())
    out, out2 = tmp_path / "p.json", tmp_path / "p2.json"
    assert cli_main(["export", str(src), "--format", "pyperf", "-o", str(out)]) == 0
    assert "left out pipe_simplex/roundtrip/8B/w1/fork/spread: failed: peer died" in capsys.readouterr().err
    slower = hand_built()
    for rnd in slower["cases"][0]["rounds"]:
        rnd["samples_ns"] = [3 * s for s in rnd["samples_ns"]]
    assert cli_main(["export", str(write(tmp_path / "r2.json", slower)), "--format", "pyperf", "-o", str(out2)]) == 0

    stats = subprocess.run([sys.executable, "-m", "pyperf", "stats", str(out)], capture_output=True, text=True)
    assert stats.returncode == 0, stats.stderr
    assert "Number of benchmarks: 2" in stats.stdout
    assert "pipe_duplex/roundtrip/8B/w1/fork/spread" in stats.stdout
    assert f"Median +- MAD:   {np.median(SAMPLES) / 1000:.1f} us" in stats.stdout

    hist = subprocess.run([sys.executable, "-m", "pyperf", "hist", str(out)], capture_output=True, text=True)
    assert hist.returncode == 0, hist.stderr
    assert "#" in hist.stdout

    cmp = subprocess.run([sys.executable, "-m", "pyperf", "compare_to", str(out), str(out2)],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stderr
    assert "pipe_duplex/roundtrip/8B/w1/fork/spread" in cmp.stdout
    assert "3.00x slower" in cmp.stdout


def test_unknown_format_names_the_formats(tmp_path, capsys):
    src = write(tmp_path / "r.json", hand_built())
    assert cli_main(["export", str(src), "--format", "xml"]) == 2
    assert "unknown export format 'xml'; choose from csv, pyperf" in capsys.readouterr().err
