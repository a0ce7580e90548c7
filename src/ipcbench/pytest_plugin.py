"""ipcbench's pytest plugin: its cases in your own pytest-benchmark suite.

Installed with ipcbench as a ``pytest11`` entry point (``ipcbench``), so pytest loads it in every run
where ipcbench is installed. It does nothing to a run that does not use it: its hooks act only on tests
that request its fixtures or carry its marker, and it imports none of ipcbench's engine until one does
(or until a preset or start method is asked for, below). Disable it with ``-p no:ipcbench``. ``bench/``
(``pytest bench/ --benchmark-json=b.json``) is built on it.

Fixtures (each needs pytest-benchmark's ``benchmark`` only where it times):

``ipcbench_case(case)`` / ``ipcbench_case("queue", "roundtrip", 64 * 1024, workers=1, start_method=None,
placement="spread")``
    Start the case's processes in this process (``ipcbench.measure.sessions``: the engine's own peers and
    the mechanism's maker), warm up, time ONE operation per pytest-benchmark round
    (``benchmark.pedantic(op, rounds=N, iterations=1)``, N from the preset's budget), store the case and
    ipcbench's metrics in ``benchmark.extra_info`` (what ``ipcbench export``/``report`` read back), and
    reap every process. Returns the metrics as ``{name: value}`` (empty with ``--benchmark-disable``).
    Call it once per test (pytest-benchmark times one function per test). A case whose pattern has no
    session form is skipped.
``ipcbench_session(case)`` / ``ipcbench_session("pipe_duplex", "roundtrip", 8)``
    A ready session for your own timing: the processes started and warmed up; ``s.op.call()`` is one
    operation (``s.op.setup``, when not None, must run untimed before each call; ``s.op.definition`` says
    what a call is). Closed, and every process reaped, when the test ends. No ``benchmark`` needed.

Marker ``@pytest.mark.ipcbench_cases(mechanisms=None, patterns=None, families=None, exclude_families=())``
    Parametrize the test's ``case`` argument with the cases of ``ipcbench run --preset P`` (limited to
    those mechanisms, patterns and mechanism families). The values are case ids
    (``mechanism/pattern/size/wN/start_method/placement``, also the test ids); ``ipcbench_case`` accepts them.
    A test left with no case is deselected.

Options (also environment variables): ``--ipcbench-preset`` (``IPCBENCH_PRESET``; smoke, quick or full,
default smoke) chooses the cases of the marker and the timing budget of ``ipcbench_case``;
``--ipcbench-start-method`` (``IPCBENCH_START_METHOD``, a comma list) the start methods of the marker's
cases (default: the preset's); ``--ipcbench-placement`` (``IPCBENCH_PLACEMENT``, a comma list) their
placements (default: spread); ``--ipcbench-timeout`` (60 s) how long one session may take before its
processes are killed and the test fails. A preset or start method given either way is checked when pytest
starts: a bad one is a usage error of the run.

When ipcbench's fixtures are used, the ``--benchmark-json`` file also holds ipcbench's machine metadata
(``machine_info["ipcbench"]``) and the run's preset and failed cases (top-level ``"ipcbench"``).
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest

from ._version import __version__

MARKER = "ipcbench_cases"
FIXTURES = frozenset({"ipcbench_case", "ipcbench_session"})
DEFAULT_PRESET = "smoke"

_STATE = pytest.StashKey["_State"]()
_ITEM_CASE = pytest.StashKey[object]()      # the Case an ipcbench fixture ran in this test


@dataclass
class _State:
    """Per pytest run; everything that imports ipcbench's engine is computed on first use."""

    config: pytest.Config
    cases: dict = field(default_factory=dict)       # case id -> Case, for every case the marker produced
    failed: list = field(default_factory=list)      # {"case", "error"} of failed tests with a case
    machine: dict | None = None
    used: bool = False                              # an ipcbench fixture or the marker is in this run
    _preset: object = None
    _start_methods: list | None = None
    _placements: list | None = None

    @property
    def preset(self):
        if self._preset is None:
            from .plan.presets import get_preset

            name = (self.config.getoption("--ipcbench-preset") or os.environ.get("IPCBENCH_PRESET")
                    or DEFAULT_PRESET)
            self._preset = _usage(get_preset, name)
        return self._preset

    @property
    def start_methods(self) -> list[str]:
        if self._start_methods is None:
            from .plan.presets import check_start_methods, start_methods
            from .units import split_list

            text = self.config.getoption("--ipcbench-start-method") or os.environ.get("IPCBENCH_START_METHOD")
            if text:
                self._start_methods = _usage(check_start_methods, split_list(text))
            else:
                self._start_methods = start_methods(self.preset.start_methods)
        return self._start_methods

    @property
    def placements(self) -> list[str]:
        if self._placements is None:
            from .plan.presets import check_placements
            from .units import split_list

            text = self.config.getoption("--ipcbench-placement") or os.environ.get("IPCBENCH_PLACEMENT") or ""
            self._placements = _usage(check_placements, split_list(text))
        return self._placements


def _usage(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, with ipcbench's UserError (a bad preset, start method, mechanism) as pytest's
    UsageError: one line, no traceback."""
    from .errors import UserError

    try:
        return fn(*args, **kwargs)
    except UserError as exc:
        raise pytest.UsageError(str(exc)) from None


def _state(config: pytest.Config) -> _State:
    return config.stash[_STATE]


# --------------------------------------------------------------------------------------------------
# options, marker, configuration
# --------------------------------------------------------------------------------------------------
def pytest_addoption(parser):
    group = parser.getgroup("ipcbench", "ipcbench (multiprocessing IPC benchmarks)")
    group.addoption("--ipcbench-preset", default=None,
                    help="smoke | quick | full: the cases of @pytest.mark.ipcbench_cases and the timing budget "
                         "of the ipcbench_case fixture (default: $IPCBENCH_PRESET or smoke)")
    group.addoption("--ipcbench-start-method", default=None,
                    help="fork | spawn | forkserver, or a comma list: start methods of "
                         "@pytest.mark.ipcbench_cases (default: $IPCBENCH_START_METHOD or the preset's)")
    group.addoption("--ipcbench-placement", default=None,
                    help="spread | shared | os, or a comma list: placements of @pytest.mark.ipcbench_cases "
                         "(default: $IPCBENCH_PLACEMENT or spread)")
    group.addoption("--ipcbench-timeout", type=float, default=60.0,
                    help="seconds one ipcbench session may take before its processes are killed (default 60)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"{MARKER}(mechanisms=None, patterns=None, families=None, exclude_families=()): "
        "parametrize the test's `case` argument with the ids of ipcbench's preset cases (ipcbench plugin)")
    state = config.stash[_STATE] = _State(config)
    # A preset or start method that was asked for is checked at once (one usage error, not one per module).
    if config.getoption("--ipcbench-preset") or os.environ.get("IPCBENCH_PRESET"):
        state.preset  # noqa: B018
    if config.getoption("--ipcbench-start-method") or os.environ.get("IPCBENCH_START_METHOD"):
        state.start_methods  # noqa: B018
    if config.getoption("--ipcbench-placement") or os.environ.get("IPCBENCH_PLACEMENT"):
        state.placements  # noqa: B018


# --------------------------------------------------------------------------------------------------
# cases: building them, the marker's parametrization
# --------------------------------------------------------------------------------------------------
def make_case(mechanism, pattern: str | None = None, payload_bytes: int = 8, *, workers: int = 1,
              start_method: str | None = None, payload_kind: str = "bytes", placement: str | None = None):
    """A ``Case`` from its parts, checked against the mechanism's declaration (a ``Case`` is returned
    as is; a bad name raises ``ipcbench.errors.UserError``). ``start_method`` defaults to
    multiprocessing's default start method, ``placement`` to ``spread``."""
    import multiprocessing as mp

    from .plan.cases import Case

    if isinstance(mechanism, Case):
        return mechanism
    if pattern is None:
        raise TypeError("give a Case, a case id from @pytest.mark.ipcbench_cases, or mechanism and pattern")
    from .errors import UserError
    from .measure.mechanisms import get as get_mechanism
    from .plan.presets import check_payload_kinds, check_placements, check_start_methods

    mech = get_mechanism(mechanism)
    if pattern not in mech.patterns:
        raise UserError(f"{mechanism} has no {pattern!r} pattern; it has {', '.join(mech.patterns)}")
    check_payload_kinds([payload_kind])
    if not mech.carries(payload_kind):
        raise UserError(f"{mechanism} carries no {payload_kind!r} payload; it carries {', '.join(mech.payload_kinds)}")
    method = start_method or mp.get_context().get_start_method()
    check_start_methods([method])
    (where,) = check_placements([placement] if placement else [])
    return Case(mech.name, pattern, payload_kind, int(payload_bytes), int(workers), method, where)


def _resolve(state: _State, case, args, kwargs):
    if isinstance(case, str) and not args and "pattern" not in kwargs:
        found = state.cases.get(case)
        if found is None:
            from .errors import UserError

            raise UserError(f"{case!r} is not a case of @pytest.mark.{MARKER}; give a mechanism and a pattern")
        return found
    return make_case(case, *args, **kwargs)


def _as_list(value) -> list | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _marked_cases(state: _State, marker) -> list:
    from .measure.mechanisms import all_mechanisms
    from .plan.presets import build_grid, worker_counts

    opts = dict(marker.kwargs)
    unknown = set(opts) - {"mechanisms", "patterns", "families", "exclude_families"}
    if unknown or marker.args:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes the keywords mechanisms, patterns, families, "
                                f"exclude_families; got {', '.join(sorted(unknown)) or marker.args}")
    mechanisms, families = _as_list(opts.get("mechanisms")), _as_list(opts.get("families"))
    exclude = set(_as_list(opts.get("exclude_families")) or ())
    mechs = [m.name for m in all_mechanisms()
             if (mechanisms is None or m.name in mechanisms)
             and (families is None or m.family in families) and m.family not in exclude]
    if mechanisms:
        known = {m.name for m in all_mechanisms()}
        missing = [m for m in mechanisms if m not in known]
        if missing:
            raise pytest.UsageError(f"@pytest.mark.{MARKER}: unknown mechanism(s) {', '.join(missing)}")
    if not mechs:
        return []
    preset = state.preset
    return _usage(build_grid, mechs, _as_list(opts.get("patterns")), list(preset.payload_sizes),
                  worker_counts(preset.workers), state.start_methods, list(preset.payload_kinds),
                  catalogue=all_mechanisms(), placements=state.placements, kind_sizes=preset.kind_sizes,
                  kind_workers=preset.kind_workers)


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    state = _state(metafunc.config)
    state.used = True
    ids = []
    for case in _marked_cases(state, marker):
        state.cases[case.id] = case
        ids.append(case.id)
    # Parametrized by id (a plain string): pytest-benchmark stores params in its JSON, and a string serializes.
    metafunc.parametrize("case", ids)


def _param_case(item):
    spec = getattr(item, "callspec", None)
    name = spec.params.get("case") if spec else None
    return _state(item.config).cases.get(name) if isinstance(name, str) else None


def _uses_ipcbench(item) -> bool:
    return bool(FIXTURES.intersection(getattr(item, "fixturenames", ()))) or item.get_closest_marker(MARKER) is not None


def pytest_collection_modifyitems(config, items):
    # A marked test left without cases (e.g. bench/test_other_families.py while every family has its own
    # module) is deselected instead of being reported as a skip with an empty parameter set.
    drop = [item for item in items if item.get_closest_marker(MARKER) is not None and _param_case(item) is None]
    if drop:
        dropped = set(map(id, drop))
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if id(item) not in dropped]


def pytest_collection_finish(session):
    """Machine metadata and system checks once, before any case runs (so the load average is not our
    own), and only when a collected test uses ipcbench."""
    if session.config.option.collectonly or not any(_uses_ipcbench(item) for item in session.items):
        return
    from .measure.environment import machine_metadata, python_metadata

    state = _state(session.config)
    state.used = True
    state.machine = {"machine": machine_metadata(), "python": python_metadata(), "ipcbench_version": __version__}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed or call.excinfo is None:
        return
    case = item.stash.get(_ITEM_CASE, None) or _param_case(item)
    if case is None:
        return
    from .measure.harness import RoundFailed

    exc = call.excinfo.value
    msg = str(exc) if isinstance(exc, RoundFailed) else f"{type(exc).__name__}: {exc}"
    _state(item.config).failed.append({"case": case.to_dict(), "error": msg})


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config, machine_info):
    state = config.stash.get(_STATE, None)
    if state is not None and state.machine:
        machine_info["ipcbench"] = state.machine


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config, benchmarks, output_json):
    state = config.stash.get(_STATE, None)
    if state is not None and state.used:
        from .results.formats import pytest_benchmark as pb_format

        preset = state.preset
        output_json["ipcbench"] = {"format": pb_format.FORMAT, "preset": preset.name, "spec": preset.spec.to_dict(),
                                   "rounds": 1, "failed": state.failed}


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def ipcbench_case(benchmark, request):
    """``ipcbench_case(case)`` or ``ipcbench_case(mechanism, pattern, payload_bytes=8, *, workers=1,
    start_method=None, payload_kind="bytes", placement=None)``: set the case up, time one operation per pytest-benchmark
    round, store the case and ipcbench's metrics in ``benchmark.extra_info``, tear everything down.
    Returns ipcbench's metrics ``{name: value}`` ({} when pytest-benchmark timed nothing)."""
    config = request.config
    state = _state(config)
    state.used = True
    timeout_s = config.getoption("--ipcbench-timeout")

    def run(case, *args, **kwargs) -> dict:
        from .measure.sessions import NoSessionForm, builder_for, open_session
        from .results.formats import pytest_benchmark as pb_format

        case = _resolve(state, case, args, kwargs)
        preset = state.preset
        request.node.stash[_ITEM_CASE] = case
        t_open = time.perf_counter()
        if benchmark.group is None:
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
            if bench_stats is None:           # None with --benchmark-disable: nothing was timed
                return {}
            samples = pb_format.seconds_to_ns(bench_stats.stats.data)
            info = pb_format.extra_info(case, session.measured(samples), op.definition, op.timed, preset.name,
                                        time.perf_counter() - t_open)
            benchmark.extra_info.update(info)
            return {name: m["value"] for name, m in info["ipcbench"]["metrics"].items()}

    return run


@pytest.fixture
def ipcbench_session(request):
    """``ipcbench_session(case)`` or ``ipcbench_session(mechanism, pattern, payload_bytes=8, *, workers=1,
    start_method=None, payload_kind="bytes", placement=None)`` -> a started, warmed-up ``ipcbench.measure.sessions.Session``
    (timing budget of the preset's round spec); ``s.op.call()`` is one operation. Every session is closed
    and its processes reaped when the test ends."""
    from .measure.sessions import NoSessionForm, builder_for, open_session

    config = request.config
    state = _state(config)
    state.used = True
    timeout_s = config.getoption("--ipcbench-timeout")
    stack = ExitStack()
    sessions = []

    def start(case, *args, **kwargs):
        case = _resolve(state, case, args, kwargs)
        request.node.stash[_ITEM_CASE] = case
        try:
            builder_for(case)
        except NoSessionForm as exc:
            pytest.skip(str(exc))
        session = stack.enter_context(open_session(case, state.preset.spec, timeout_s))
        sessions.append(session)
        session.warmup()
        return session

    yield start
    if any(s.failure for s in sessions):   # a peer died or a session timed out: reap, no orderly stop
        from .measure.harness import RoundFailed

        failure = next(s.failure for s in sessions if s.failure)
        stack.__exit__(RoundFailed, RoundFailed(failure), None)
    else:
        stack.close()
