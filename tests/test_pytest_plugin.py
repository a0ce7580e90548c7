"""ipcbench's pytest plugin (``ipcbench.pytest_plugin``, a ``pytest11`` entry point) in users' own suites,
run with pytest's ``pytester``: its fixtures and marker work, and a suite that uses none of them is untouched."""

import json

import pytest

# scipy.stats and pandas (load_sets) are imported here, not inside a test: ``pytester`` restores sys.modules
# after each test, and a numpy extension first imported inside one is dropped with it and cannot load again
# in this process ("cannot load module more than once per process" in every later test that imports it).
import scipy.stats  # noqa: F401

from ipcbench import pytest_plugin
from ipcbench.results.frame import load_sets

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow

USER_BENCH = """
import pytest

def test_pipe_roundtrip(ipcbench_case):
    metrics = ipcbench_case("pipe_duplex", "roundtrip", 1024)
    assert metrics["latency_p50"] > 0 and metrics["samples"] >= 3

def test_own_loop(benchmark, ipcbench_session):
    s = ipcbench_session("queue", "roundtrip", 64)
    assert s.op.timed == "latency" and "round trip" in s.op.definition
    benchmark.pedantic(s.op.call, rounds=20, iterations=1)
    assert benchmark.stats.stats.rounds == 20

@pytest.mark.ipcbench_cases(mechanisms=["pipe_duplex", "queue"], patterns="roundtrip")
def test_preset_cases(ipcbench_case, case):
    ipcbench_case(case)

@pytest.mark.ipcbench_cases(families="no-such-family")
def test_nothing_to_run(ipcbench_case, case):
    raise AssertionError("deselected: no case")

def test_unknown_mechanism(ipcbench_case):
    ipcbench_case("carrier_pigeon", "roundtrip")
"""

PLAIN_SUITE = """
import sys
import pytest

@pytest.fixture
def case():                      # a fixture named like ipcbench's parameter
    return "mine"

def test_own_case_fixture(case):
    assert case == "mine"

@pytest.mark.parametrize("case", [1, 2])
def test_own_parametrize(case):
    assert case in (1, 2)

def test_plain_benchmark(benchmark):
    assert benchmark(sum, [1, 2, 3]) == 6

def test_plugin_loaded_but_idle():
    assert "ipcbench.pytest_plugin" in sys.modules            # loaded through the pytest11 entry point
    heavy = [m for m in ("ipcbench.plan.presets", "ipcbench.measure.sessions", "ipcbench.measure.environment",
                         "numpy", "pandas") if m in sys.modules]
    assert heavy == []
"""


def test_entry_point_is_registered():
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="pytest11") if ep.name == "ipcbench"]
    assert [ep.value for ep in eps] == ["ipcbench.pytest_plugin"]
    assert eps[0].load() is pytest_plugin


def test_user_benchmarks_through_the_fixtures(pytester, monkeypatch):
    monkeypatch.setenv("IPCBENCH_PRESET", "smoke")
    monkeypatch.setenv("IPCBENCH_START_METHOD", "fork")
    pytester.makepyfile(test_user_bench=USER_BENCH)
    out = pytester.path / "b.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", f"--benchmark-json={out}",
                                           "--ipcbench-timeout=30", timeout=240)
    result.assert_outcomes(passed=12, failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*UserError: unknown mechanism 'carrier_pigeon'*"])
    data = json.loads(out.read_text())
    benches = {b["name"]: b for b in data["benchmarks"]}
    preset_ids = {f"test_preset_cases[{m}/roundtrip/{size}/w1/fork/spread]"     # smoke's kinds and sizes
                  for m in ("pipe_duplex", "queue") for size in ("8B", "64KiB", "256KiB", "numpy:64KiB", "object:1KiB")}
    assert set(benches) == {"test_pipe_roundtrip", "test_own_loop", *preset_ids}
    rt = benches["test_pipe_roundtrip"]
    assert rt["extra_info"]["mechanism"] == "pipe_duplex" and rt["extra_info"]["payload_bytes"] == 1024
    assert rt["group"] == "roundtrip 1KiB/w1/fork/spread"
    assert rt["extra_info"]["ipcbench"]["calls"] == rt["stats"]["rounds"]
    assert benches["test_preset_cases[queue/roundtrip/8B/w1/fork/spread]"]["params"] == {"case": "queue/roundtrip/8B/w1/fork/spread"}
    assert benches["test_own_loop"]["extra_info"] == {}          # its own loop: nothing stored for it
    assert data["ipcbench"]["preset"] == "smoke"
    assert [f["case"]["mechanism"] for f in data["ipcbench"]["failed"]] == []   # no case was made for the pigeon
    assert "system_checks" in data["machine_info"]["ipcbench"]["machine"]

    loaded = load_sets([out])                                    # ipcbench reads the user's file back
    assert set(loaded.tidy.mechanism) == {"pipe_duplex", "queue"}
    assert sorted(loaded.tidy.payload_bytes.unique()) == [8, 1024, 65536, 262144]


def test_benchmark_disable_runs_each_case_once(pytester):
    pytester.makepyfile(test_user_bench="""
        def test_it(ipcbench_case):
            assert ipcbench_case("pipe_simplex", "roundtrip", 8) == {}

        def test_session(ipcbench_session):
            s = ipcbench_session("lock", "contention", 0)
            for _ in range(10):
                s.op.call()
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-disable", timeout=120)
    result.assert_outcomes(passed=2)


def test_a_failing_case_is_recorded(pytester):
    pytester.makepyfile(test_user_bench="""
        import pytest

        @pytest.mark.ipcbench_cases(mechanisms="pipe_duplex", patterns="roundtrip")
        def test_it(ipcbench_case, case):
            ipcbench_case(case)
            raise RuntimeError("after the case")
    """)
    out = pytester.path / "b.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "8B", f"--benchmark-json={out}",
                                           "--ipcbench-start-method=fork", timeout=120)
    result.assert_outcomes(failed=1, deselected=4)          # smoke: 64KiB, 256KiB, numpy:64KiB, object:1KiB
    failed = json.loads(out.read_text())["ipcbench"]["failed"]
    assert failed == [{"case": {"mechanism": "pipe_duplex", "pattern": "roundtrip", "payload_kind": "bytes",
                                "payload_bytes": 8, "workers": 1, "start_method": "fork",
                                "placement": "spread"},
                       "error": "RuntimeError: after the case"}]


def test_bad_preset_is_a_usage_error(pytester):
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ipcbench-preset=huge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown preset 'huge'; choose from smoke, quick, full*"])


def test_a_plain_suite_is_unaffected(pytester, monkeypatch):
    monkeypatch.delenv("IPCBENCH_PRESET", raising=False)
    monkeypatch.delenv("IPCBENCH_START_METHOD", raising=False)
    pytester.makepyfile(test_plain=PLAIN_SUITE)
    out = pytester.path / "b.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", f"--benchmark-json={out}", timeout=120)
    result.assert_outcomes(passed=5)
    data = json.loads(out.read_text())
    assert "ipcbench" not in data and "ipcbench" not in data["machine_info"]
    assert [b["name"] for b in data["benchmarks"]] == ["test_plain_benchmark"]

    # ... and gives the same outcomes with the plugin switched off
    off = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-p", "no:ipcbench", timeout=120)
    off.assert_outcomes(passed=4, failed=1)                       # only the "plugin loaded" check differs
    off.stdout.fnmatch_lines(["*assert 'ipcbench.pytest_plugin' in *"])


def test_plain_suite_collects_the_same(pytester):
    pytester.makepyfile(test_plain=PLAIN_SUITE)
    on = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    off = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:ipcbench")
    ids = [line for line in on.outlines if "::" in line]
    assert ids == [line for line in off.outlines if "::" in line] and len(ids) == 5


def test_make_case_checks_the_declaration():
    from ipcbench.errors import UserError
    from ipcbench.plan.cases import Case

    c = pytest_plugin.make_case("queue", "fanin", 1024, workers=2, start_method="spawn")
    assert c == Case("queue", "fanin", "bytes", 1024, 2, "spawn") and pytest_plugin.make_case(c) is c
    with pytest.raises(UserError, match="pipe_duplex has no 'rpc' pattern"):
        pytest_plugin.make_case("pipe_duplex", "rpc")
    with pytest.raises(UserError, match="start method 'teleport'"):
        pytest_plugin.make_case("queue", "roundtrip", start_method="teleport")
    with pytest.raises(TypeError):
        pytest_plugin.make_case("queue")

