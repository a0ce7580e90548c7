"""The allocator state as a run setting (``--allocator``): the environment each state gives the round
processes, that it reaches them (their page faults per message), and that results record and show it."""

import json

import pytest

from ipcbench.analysis.setups import setup_label
from ipcbench.measure import allocator
from ipcbench.measure.harness import process_minor_faults
from ipcbench.measure.runner import RunOptions, run_case
from ipcbench.plan.cases import Case, RoundSpec
from ipcbench.results.schema import allocator_of
from tests import factories


def test_every_state_removes_the_callers_malloc_settings_and_cold_and_warm_set_the_thresholds():
    base = {"PATH": "/bin", "MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "1", "MALLOC_TOP_PAD_": "9",
            "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0:glibc.cpu.hwcaps=-AVX2"}
    fresh = allocator.environment("fresh", base)
    assert fresh == {"PATH": "/bin", "MALLOC_ARENA_MAX": "2", "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}
    warm = allocator.environment("warm", base)
    assert warm["MALLOC_MMAP_THRESHOLD_"] == str(64 * 1024**2)
    assert warm["MALLOC_TRIM_THRESHOLD_"] == str(256 * 1024**2)
    assert "MALLOC_TOP_PAD_" not in warm and warm["PATH"] == "/bin"
    assert "GLIBC_TUNABLES" not in allocator.environment("fresh", {"GLIBC_TUNABLES": "glibc.malloc.check=3"})
    cold = allocator.environment("cold", base)
    assert cold == {**fresh, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
    with pytest.raises(ValueError, match="unknown allocator state 'hot'; known: cold, warm, fresh"):
        allocator.environment("hot", base)
    assert allocator.describe("warm")["env"] == allocator.WARM_ENV and allocator.describe("fresh")["env"] == {}
    assert allocator.describe("cold")["env"] == allocator.COLD_ENV and allocator.DEFAULT == "cold"


def test_minor_faults_are_read_per_process():
    import os

    before = process_minor_faults(os.getpid())
    junk = bytearray(8 * 1024**2)           # 2048 pages, touched by the zero fill
    after = process_minor_faults(os.getpid())
    assert junk[-1] == 0 and after - before >= 1000
    assert process_minor_faults(2**22 + 12345) is None


@pytest.mark.slow
def test_the_state_reaches_the_round_processes(no_leftovers):
    """1 MiB round trips: in the cold state glibc maps and faults in every large buffer (hundreds of page
    faults per message), in the warm state it reuses heap memory; the fresh state's count depends on the
    process's history (it is only recorded). The counts are the evidence, not speed."""
    spec = RoundSpec(budget_s=0.02, min_messages=20, max_window_s=5, max_messages=200, warmup=5, warmup_s=0.05,
                     timeout_s=20)
    got = {}
    for state in allocator.STATES:
        rec = run_case(Case("pipe_duplex", "roundtrip", "bytes", 1024**2, 1, "fork", "spread"),
                       RunOptions(spec=spec, rounds=2, allocator=state))
        assert rec["status"] == "ok", rec["error"]
        assert all(r["minor_faults"] is not None for r in rec["rounds"])
        got[state] = rec["metrics"]["faults_per_msg"]["value"]
    assert got["cold"] > 100 and got["warm"] < got["cold"] / 5, got      # seen: ~400-600 against 3-30
    assert got["fresh"] >= 0


def test_results_record_and_show_the_state(tmp_path):
    rs = factories.result_set([factories.case_record()])
    assert allocator_of(rs) == "cold"
    del rs["run"]["allocator"]
    assert allocator_of(rs) == "fresh"                      # files from before the setting
    rs["run"] = {**rs.get("run", {}), "allocator": "warm"}
    p = tmp_path / "warm.json"
    p.write_text(json.dumps(rs))
    import ipcbench

    tidy = ipcbench.load(p)
    assert set(tidy["allocator"]) == {"warm"}
    assert setup_label("vm", "3.11", "fork", "spread", "bytes", "warm") == "vm · Python 3.11 · fork · spread · warm malloc"
    assert setup_label("vm", "3.11", "fork", "spread", "bytes", "cold") == "vm · Python 3.11 · fork · spread"
    assert setup_label("vm", "3.11", "fork", "spread", "bytes", "fresh") == "vm · Python 3.11 · fork · spread · fresh malloc"


def test_run_defaults_to_the_cold_state_and_takes_each_state_by_name():
    from ipcbench.cli import build_parser
    from ipcbench.commands.run import _settings

    settings, _ = _settings(build_parser().parse_args(["run", "--preset", "smoke"]))
    assert settings["allocator"] == "cold"
    for state in allocator.STATES:
        settings, _ = _settings(build_parser().parse_args(["run", "--preset", "smoke", "--allocator", state]))
        assert settings["allocator"] == state
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--allocator", "hot"])
