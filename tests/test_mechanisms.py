"""Mechanisms are declarations: adding one is one module of makers + pattern names; a declaration that
cannot work fails when it is made, with a clear error; both front ends read the same declaration."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import sys
import textwrap
import uuid

import pytest

from ipcbench.measure import mechanisms, patterns, session_ops
from ipcbench.measure.mechanisms import DeclarationError, Mechanism, all_mechanisms
from ipcbench.measure.patterns import Pattern
from ipcbench.measure.runner import RunOptions, run_case
from ipcbench.measure.sessions import NoSessionForm, builder_for, open_session
from ipcbench.plan.cases import PATTERNS as PATTERN_HELP
from ipcbench.plan.cases import Case, RoundSpec
from ipcbench.plan.presets import build_grid

TINY = RoundSpec(budget_s=0.005, min_messages=3, max_window_s=2, max_messages=300, warmup=2, warmup_s=0.01,
                 timeout_s=10)
OPTS = RunOptions(spec=TINY, rounds=2, round_timeout_s=30)

# A whole new mechanism: this module, put on IPCBENCH_PLUGINS (or saved under ipcbench/measure/mechanisms/),
# is all it takes for `ipcbench run`, `ipcbench list`, the presets and `pytest bench/` to measure it.
NEW_MECHANISM = '''
    """``test_simple_queue``: multiprocessing.SimpleQueue (a pipe and a lock; put pickles in the caller)."""

    from ipcbench.measure.channels import queue_pair, shared_queue
    from ipcbench.measure.mechanisms import Mechanism


    def _channel(rnd, bounded):
        if bounded:
            q = rnd.ctx.SimpleQueue()
            rnd.stack.callback(q.close)
            return shared_queue(q)
        parent, child = queue_pair(rnd.ctx.SimpleQueue)
        rnd.stack.callback(parent.rx.close)
        rnd.stack.callback(parent.tx.close)
        return parent, child


    MECHANISMS = [
        Mechanism("test_simple_queue", "test", "multiprocessing.SimpleQueue: put/get, pickled in the caller",
                  patterns=("roundtrip", "stream"), make_channel=_channel),
    ]
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """``plugin(source)``: save a module, name it in IPCBENCH_PLUGINS (seen by orchestrator processes too),
    and reload the registry; everything is undone after the test."""
    loaded = []

    def load(source: str) -> str:
        name = f"ipcbench_test_plugin_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        loaded.append(name)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setenv("IPCBENCH_PLUGINS", name)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
        monkeypatch.setattr(mechanisms, "_REGISTRY", None)
        return name

    yield load
    mechanisms._REGISTRY = None
    for name in loaded:
        sys.modules.pop(name, None)


# --------------------------------------------------------------------------------------------------
# adding a mechanism is one declaration
# --------------------------------------------------------------------------------------------------
def test_a_new_mechanism_is_registered_with_its_patterns(plugin):
    plugin(NEW_MECHANISM)
    mech = mechanisms.get("test_simple_queue")
    assert mech in all_mechanisms() and (mech.family, list(mech.patterns)) == ("test", ["roundtrip", "stream"])
    assert mech.supports("roundtrip") and not mech.supports("rpc")
    assert list(mech.makers) == ["make_channel"]
    grid = build_grid(["test_simple_queue"], None, [8], [1, 2], ["fork"], catalogue=all_mechanisms())
    assert [c.id for c in grid] == ["test_simple_queue/roundtrip/8B/w1/fork/spread", "test_simple_queue/stream/8B/w1/fork/spread"]


@pytest.mark.parametrize("pattern, method", [("roundtrip", "fork"), ("stream", "fork"), ("roundtrip", "spawn")])
def test_a_new_mechanism_runs_end_to_end(plugin, no_leftovers, pattern, method):
    plugin(NEW_MECHANISM)
    rec = run_case(Case("test_simple_queue", pattern, "bytes", 64, 1, method), OPTS)
    assert rec["status"] == "ok", rec["error"]
    m = {k: v["value"] for k, v in rec["metrics"].items()}
    assert 0 < m["latency_p50"] <= m["latency_max"] < 30 and m["throughput_msgs"] > 0
    assert rec["rounds"][0]["bytes_per_op"] == (128 if pattern == "roundtrip" else 64)


def test_a_new_mechanism_has_a_session_for_the_pytest_front_end(plugin, no_leftovers):
    plugin(NEW_MECHANISM)
    case = Case("test_simple_queue", "roundtrip", "bytes", 32, 1, "fork")
    with open_session(case, TINY) as s:
        assert s.op.timed == "latency" and s.op.bytes_per_op == 64
        s.warmup()
        replies = [s.op.call() for _ in range(5)]
    assert replies == [patterns.make_payload("bytes", 32)] * 5


# --------------------------------------------------------------------------------------------------
# declarations that cannot work fail when made
# --------------------------------------------------------------------------------------------------
def test_a_pattern_whose_maker_is_missing_cannot_be_declared():
    with pytest.raises(DeclarationError, match=r"^mechanism 'half' declares pattern 'rpc', which needs make_proxy; "
                                               r"give Mechanism\(\.\.\., make_proxy=\.\.\.\) or drop 'rpc'$"):
        Mechanism("half", "test", "s", patterns=("roundtrip", "rpc"), make_channel=lambda rnd, bounded: None)
    with pytest.raises(DeclarationError, match="declares pattern 'dispatch', which needs dispatch"):
        Mechanism("pool_x", "test", "s", patterns=("dispatch",))
    with pytest.raises(DeclarationError, match="declares pattern 'contention', which needs make_lock"):
        Mechanism("lock_x", "test", "s", patterns=("contention",), make_proxy=dict)


def test_a_plugin_with_such_a_declaration_fails_to_load_and_is_named(plugin):
    name = plugin('''
        from ipcbench.measure.mechanisms import Mechanism

        MECHANISMS = [Mechanism("no_channel", "test", "forgot its channel", patterns=("stream",))]
    ''')
    with pytest.raises(DeclarationError, match=rf"^{name}: mechanism 'no_channel' declares pattern 'stream', "
                                               r"which needs make_channel"):
        all_mechanisms()


def test_other_declarations_that_cannot_work():
    with pytest.raises(DeclarationError, match=r"declares unknown pattern 'pingpong'; known: roundtrip, stream, "
                                               r"fanin, rpc, dispatch, startup, contention"):
        Mechanism("x", "test", "s", patterns=("pingpong",))
    with pytest.raises(DeclarationError, match="dispatch='mapp' is not a dispatch style; known: apply, apply_async, apply_async_callback, "):
        Mechanism("x", "test", "s", patterns=("dispatch",), dispatch="mapp")
    with pytest.raises(DeclarationError, match="patterns= takes pattern names .*not a mapping to functions"):
        Mechanism("x", "test", "s", {"startup": patterns.startup})        # the old form
    with pytest.raises(DeclarationError, match="declares pattern 'startup' twice"):
        Mechanism("x", "test", "s", patterns=("startup", "startup"))
    own = Pattern("roundtrip", lambda rnd, mech: None, needs=("make_lock",))
    with pytest.raises(DeclarationError, match="declares pattern 'roundtrip', which needs make_lock"):
        Mechanism("x", "test", "s", patterns=(own,))


# --------------------------------------------------------------------------------------------------
# one table of patterns, read by both front ends
# --------------------------------------------------------------------------------------------------
def test_every_pattern_has_help_a_driver_and_a_session_form():
    assert list(patterns.PATTERNS) == list(PATTERN_HELP)
    assert set(session_ops.SESSION_FORMS) == set(patterns.PATTERNS)
    assert set(session_ops.DISPATCH_FORMS) == set(patterns.DISPATCH_STYLES)
    for p in patterns.PATTERNS.values():
        assert p.builtin and callable(p.run)
        assert set(p.needs) <= set(mechanisms.MAKERS)


def test_builtin_mechanisms_are_declarations_of_builtin_patterns():
    for mech in all_mechanisms():
        if mech.name == "celery":         # brings its own dispatch driver (measure/celery_support/driver.py)
            assert not mech.patterns["dispatch"].builtin
            continue
        for name, pattern in mech.patterns.items():
            assert pattern is patterns.PATTERNS[name], (mech.name, name)
            assert all(getattr(mech, need) is not None for need in pattern.needs)


def test_a_plugins_own_driver_runs_in_ipcbench_run_only(monkeypatch):
    own = Pattern("roundtrip", lambda rnd, mech: None)
    monkeypatch.setattr(mechanisms, "_REGISTRY", {"own": Mechanism("own", "test", "s", patterns=(own,))})
    assert not own.builtin
    with pytest.raises(NoSessionForm, match=r"own/roundtrip uses .*<lambda>, which has no session form"):
        builder_for(Case("own", "roundtrip", "bytes", 8, 1, "fork"))


def test_session_forms_use_only_public_names_of_patterns():
    assert "patterns._" not in inspect.getsource(session_ops)


def test_mechanism_modules_hold_declarations_not_bound_pattern_functions():
    for info in pkgutil.iter_modules(mechanisms.__path__):
        src = inspect.getsource(importlib.import_module(f"{mechanisms.__name__}.{info.name}"))
        assert "partial" not in src and "import patterns" not in src, info.name
