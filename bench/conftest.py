"""ipcbench's cases through pytest-benchmark: ``pytest bench/ --benchmark-json=b.json``.

The cases are the ones ``ipcbench run --preset P`` runs (``presets.build_grid``); the processes are
started by the engine (``ipcbench.measure.sessions``, built on ``harness.Round`` and the mechanisms' makers).
pytest-benchmark times ONE operation per round (``benchmark.pedantic(op, rounds=N, iterations=1)``), so
its min/median/mean are per operation. What one operation is, per pattern, is in
``ipcbench/sessions.py`` and in each benchmark's ``extra_info["op"]``.

Choosing cases: ``IPCBENCH_PRESET=smoke|quick|full`` (or ``--ipcbench-preset``; default smoke),
``IPCBENCH_START_METHOD=spawn`` (or ``--ipcbench-start-method``; default the preset's), then pytest's own
``-k`` (test ids are ``mechanism/pattern/size/wN/start_method``). Each module below is one
mechanism family (``FAMILY``); ``test_other_families.py`` picks up families no module claims.

Runs from a checkout without installing: ``src/`` is put on ``sys.path`` when ``ipcbench`` is not
importable (spawn and forkserver children inherit it).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
try:
    import ipcbench  # noqa: F401
except ImportError:
    sys.path.insert(0, str(HERE.parent / "src"))

from ipcbench import __version__  # noqa: E402
from ipcbench.measure.harness import RoundFailed  # noqa: E402
from ipcbench.measure.sessions import NoSessionForm, builder_for, open_session  # noqa: E402
from ipcbench.plan.cases import Case  # noqa: E402
from ipcbench.results.formats import pytest_benchmark as pb_format  # noqa: E402

_STATE = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("ipcbench")
    group.addoption("--ipcbench-preset", default=None,
                    help="smoke | quick | full: which cases of `ipcbench run` to run (default: $IPCBENCH_PRESET "
                         "or smoke)")
    group.addoption("--ipcbench-start-method", default=None,
                    help="fork | spawn | forkserver, or a comma list (default: $IPCBENCH_START_METHOD or the "
                         "preset's)")
    group.addoption("--ipcbench-timeout", type=float, default=60.0,
                    help="seconds one case may take before its processes are killed (default 60)")


def _preset(config):
    from ipcbench.plan.presets import get_preset

    name = config.getoption("--ipcbench-preset") or os.environ.get("IPCBENCH_PRESET") or "smoke"
    try:
        return get_preset(name)
    except Exception as exc:  # UserError: make it a usage error, not a crash
        raise pytest.UsageError(str(exc)) from None


def _start_methods(config, preset) -> list[str]:
    from ipcbench.plan.presets import check_start_methods, start_methods

    text = config.getoption("--ipcbench-start-method") or os.environ.get("IPCBENCH_START_METHOD")
    if not text:
        return start_methods(preset.start_methods)
    try:
        return check_start_methods([m.strip() for m in text.split(",") if m.strip()])
    except Exception as exc:  # UserError
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config):
    preset = _preset(config)
    config.stash[_STATE] = {"preset": preset, "start_methods": _start_methods(config, preset), "failed": [],
                            "machine": None, "cases": {}}


def pytest_sessionstart(session):
    """Machine metadata and system checks before any case runs, so the load average is not our own."""
    from ipcbench.measure.environment import machine_metadata, python_metadata

    state = session.config.stash[_STATE]
    state["machine"] = {"machine": machine_metadata(), "python": python_metadata(), "ipcbench_version": __version__}


_FAMILY_RE = re.compile(r"^FAMILY\s*=\s*[\"'](\w+)[\"']", re.M)


def _claimed_families() -> set[str]:
    return {m.group(1) for p in HERE.glob("test_*.py") for m in _FAMILY_RE.finditer(p.read_text())}


def _cases(config, family: str | None) -> list[Case]:
    from ipcbench.measure.mechanisms import all_mechanisms
    from ipcbench.plan.presets import build_grid, worker_counts

    state = config.stash[_STATE]
    preset = state["preset"]
    if family is None:
        claimed = _claimed_families()
        mechs = [m.name for m in all_mechanisms() if m.family not in claimed]
    else:
        mechs = [m.name for m in all_mechanisms() if m.family == family]
    if not mechs:
        return []
    return build_grid(mechs, None, list(preset.payload_sizes), worker_counts(preset.workers),
                      state["start_methods"])


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    family = getattr(metafunc.module, "FAMILY", None)
    cases = metafunc.config.stash[_STATE]["cases"]
    names = []
    for case in _cases(metafunc.config, family):
        cases[case.id] = case
        names.append(case.id)
    # Parametrized by name (indirect): pytest-benchmark stores params in its JSON, and a name serializes.
    metafunc.parametrize("case", names, indirect=True)


@pytest.fixture
def case(request) -> Case:
    """The Case whose name (``mechanism/pattern/size/wN/start_method``) parametrizes the test."""
    return request.config.stash[_STATE]["cases"][request.param]


def _case_of(item) -> Case | None:
    spec = getattr(item, "callspec", None)
    name = spec.params.get("case") if spec else None
    return item.config.stash[_STATE]["cases"].get(name) if isinstance(name, str) else None


def pytest_collection_modifyitems(config, items):
    # test_other_families.py has nothing to run while every family has its own module: deselect its
    # empty-parameter placeholder instead of reporting it as a skip.
    keep, drop = [], []
    for item in items:
        (drop if "case" in getattr(item, "fixturenames", ()) and _case_of(item) is None else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    case = _case_of(item)
    if case is not None and rep.failed and call.excinfo is not None:
        exc = call.excinfo.value
        msg = str(exc) if isinstance(exc, RoundFailed) else f"{type(exc).__name__}: {exc}"
        item.config.stash[_STATE]["failed"].append({"case": case.to_dict(), "error": msg})


def pytest_benchmark_update_machine_info(config, machine_info):
    state = config.stash.get(_STATE, None)
    if state and state["machine"]:
        machine_info["ipcbench"] = state["machine"]


def pytest_benchmark_update_json(config, benchmarks, output_json):
    state = config.stash.get(_STATE, None)
    if state:
        preset = state["preset"]
        output_json["ipcbench"] = {"format": pb_format.FORMAT, "preset": preset.name, "spec": preset.spec.to_dict(),
                                   "rounds": 1, "failed": state["failed"]}


@pytest.fixture
def ipcbench_case(benchmark, request):
    """``ipcbench_case(case)``: set the case up, time one operation per pytest-benchmark round, store
    the case identity and ipcbench's metrics in ``benchmark.extra_info``, tear everything down."""
    config = request.config
    preset = config.stash[_STATE]["preset"]
    timeout_s = config.getoption("--ipcbench-timeout")

    def run(case: Case) -> None:
        t_open = time.perf_counter()
        benchmark.group = f"{case.pattern} {case.id.split('/', 2)[2]}"
        try:
            builder_for(case)
        except NoSessionForm as exc:
            pytest.skip(str(exc))
        with open_session(case, preset.spec, timeout_s) as session:
            op = session.op
            per_op = session.warmup()
            # One session stands for all of `ipcbench run`'s rounds of this case: the same timed budget.
            calls = session.plan_calls(per_op, preset.spec.budget_s * preset.rounds)
            session.begin()
            result = benchmark.pedantic(op.call, setup=op.setup, rounds=calls, iterations=1, warmup_rounds=0)
            session.end()
            op.check(result)
            bench_stats = getattr(benchmark, "stats", None)
            if bench_stats is not None:           # None with --benchmark-disable: nothing was timed
                samples = pb_format.seconds_to_ns(bench_stats.stats.data)
                benchmark.extra_info.update(pb_format.extra_info(
                    case, session.measured(samples), op.definition, op.timed, preset.name,
                    time.perf_counter() - t_open))

    return run
