"""The warm round launcher: rounds forked into sessions of their own, exit statuses reported, deadlines and
kills through the process group, and no launcher or round outliving the runner, whichever way it ends."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from ipcbench.measure import runner
from ipcbench.measure.launcher import Launcher, LauncherDied
from ipcbench.plan.cases import Case, RoundSpec

ROOT = Path(__file__).resolve().parent.parent
TINY = RoundSpec(budget_s=0.005, min_messages=3, max_window_s=2, max_messages=300, warmup=2, warmup_s=0.01,
                 timeout_s=10)
PIPE = Case("pipe_duplex", "roundtrip", "bytes", 8, 1, "fork")
HANG = Case("test_hang", "roundtrip", "bytes", 8, 1, "fork")


def _job(tmp_path, case, spec=TINY):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"case": case.to_dict(), "spec": spec.to_dict()}))
    return str(job), str(tmp_path / "out.json"), str(tmp_path / "err.txt")


def _gone(pid, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_round_is_forked_into_its_own_session_and_its_status_comes_back(tmp_path, no_leftovers):
    with Launcher() as launcher:
        launcher.start()
        assert launcher.alive()
        job, out, err = _job(tmp_path, PIPE)
        handle = launcher.start_round(job, out, err)
        me = psutil.Process(handle.pid)
        assert me.ppid() == launcher.pid                          # the launcher's child, not ours
        assert os.getpgid(handle.pid) == handle.pid == os.getsid(handle.pid)   # session and group leader
        assert handle.wait(30) == 0 and handle.poll() == 0
        got = json.loads(Path(out).read_text())
        assert got["ok"], got
        assert got["result"]["ops"] >= TINY.min_messages
        # the next round is another process
        second = launcher.start_round(job, out, err)
        assert second.pid != handle.pid and second.wait(30) == 0
        lpid = launcher.pid
        trackers = [p for p in psutil.Process(lpid).children()
                    if "resource_tracker" in " ".join(p.cmdline())]
        assert len(trackers) == 1                                    # started once, in the launcher
    assert _gone(lpid, 1)                                            # closed with the block
    # ... and its resource tracker reaped by then, not left to notice the end of its pipe on its own
    assert not psutil.pid_exists(trackers[0].pid)


def test_the_exit_status_of_a_round_that_cannot_run_is_reported(tmp_path, no_leftovers):
    job = tmp_path / "job.json"
    job.write_text("{not json")
    with Launcher() as launcher:
        handle = launcher.start_round(str(job), str(tmp_path / "out.json"), str(tmp_path / "err.txt"))
        assert handle.wait(30) == 1
    assert "JSONDecodeError" in (tmp_path / "err.txt").read_text()
    with Launcher() as launcher:
        got = runner.run_round(PIPE, TINY, 30, str(tmp_path), launcher=launcher)
        assert got["ok"]
        (tmp_path / "job.json").write_text("{}")      # run_round writes its job afresh: break the next one
        handle = launcher.start_round(str(tmp_path / "job.json"), str(tmp_path / "o2.json"),
                                      str(tmp_path / "e2.txt"))
        assert handle.wait(30) == 1 and "KeyError" in (tmp_path / "e2.txt").read_text()


def test_a_killed_round_reports_the_signal_and_the_launcher_serves_on(tmp_path, plugin_env, no_leftovers):
    with Launcher() as launcher:
        job, out, err = _job(tmp_path, HANG)
        handle = launcher.start_round(job, out, err)
        with pytest.raises(subprocess.TimeoutExpired):
            handle.wait(0.5)
        os.killpg(handle.pid, signal.SIGKILL)
        assert handle.wait(10) == -signal.SIGKILL
        got = runner.run_round(PIPE, TINY, 30, str(tmp_path), launcher=launcher)
        assert got["ok"] and launcher.starts == 1


def test_deadline_through_the_launcher_gets_the_stack_and_kills_the_group(tmp_path, plugin_env, no_leftovers):
    with Launcher() as launcher:
        got = runner.run_round(HANG, TINY, 2, str(tmp_path), launcher=launcher)
        assert not got["ok"]
        assert got["error"].startswith("timed out after 2 s in ")     # faulthandler's stack was read
        assert "all its processes were killed" in got["error"]
        assert runner.run_round(PIPE, TINY, 30, str(tmp_path), launcher=launcher)["ok"]
        assert launcher.starts == 1


def test_a_dead_launcher_is_seen_even_while_another_process_holds_its_pipe_open():
    """The launcher's stdout can outlive it (its resource tracker, a round child before it took over its
    fds, inherit the pipe): its death is seen by reaping it, not only at the end of the pipe."""
    launcher = Launcher()
    # a stand-in launcher: it says one line, leaves a child holding its stdout for 30 s, and exits
    launcher._proc = subprocess.Popen(["sh", "-c", "echo ready; sleep 30 & exit 0"], stdout=subprocess.PIPE,
                                      start_new_session=True, bufsize=0)
    try:
        assert launcher._read_line(time.monotonic() + 10) == "ready"
        t0 = time.monotonic()
        with pytest.raises(LauncherDied, match=r"the round launcher died \(status 0\)"):
            launcher._read_line(time.monotonic() + 20)
        assert time.monotonic() - t0 < 5          # not the 20 s deadline, nor the 30 s of the child
    finally:
        os.killpg(launcher._proc.pid, signal.SIGKILL)
        launcher._proc.wait()
        launcher._proc.stdout.close()


def test_a_launcher_that_dies_fails_the_round_and_a_new_one_takes_over(tmp_path, plugin_env, no_leftovers):
    with Launcher() as launcher:
        launcher.start()
        first = launcher.pid
        job, out, err = _job(tmp_path, HANG)
        handle = launcher.start_round(job, out, err)
        round_pid = handle.pid
        os.kill(first, signal.SIGKILL)
        with pytest.raises(LauncherDied):
            handle.wait(10)
        launcher.dead_round()
        os.killpg(round_pid, signal.SIGKILL)
        # run_round says so, and the next round starts a fresh launcher. Whether the death is visible to
        # the next start() depends on timing, so the first check is made to miss it, as a race would.
        os.kill(_start_and_get_pid(launcher), signal.SIGKILL)
        real_alive, missed = launcher.alive, []

        def alive_once() -> bool:
            if not missed:
                missed.append(True)
                return True
            return real_alive()

        launcher.alive = alive_once
        got = runner.run_round(PIPE, TINY, 30, str(tmp_path), launcher=launcher)
        assert not got["ok"] and "the round launcher" in got["error"]
        got = runner.run_round(PIPE, TINY, 30, str(tmp_path), launcher=launcher)
        assert got["ok"], got
        assert launcher.starts == 3 and launcher.pid != first


def _start_and_get_pid(launcher):
    launcher.start()
    return launcher.pid


def test_sigterm_to_the_launcher_takes_its_round_down(tmp_path, plugin_env, no_leftovers):
    launcher = Launcher()
    try:
        job, out, err = _job(tmp_path, HANG)
        handle = launcher.start_round(job, out, err)
        time.sleep(0.5)                                   # the round's echo peer is up and hanging
        peers = psutil.Process(handle.pid).children(recursive=True)
        assert peers
        os.kill(launcher.pid, signal.SIGTERM)
        assert _gone(launcher.pid) and _gone(handle.pid)
        assert all(_gone(p.pid) for p in peers)
    finally:
        launcher.close()


def test_close_with_a_round_in_flight_kills_it(tmp_path, plugin_env, no_leftovers):
    launcher = Launcher()
    job, out, err = _job(tmp_path, HANG)
    handle = launcher.start_round(job, out, err)
    lpid = launcher.pid
    t = time.monotonic()
    launcher.close()
    assert time.monotonic() - t < 10
    assert _gone(lpid, 1) and _gone(handle.pid, 1)
    launcher.close()                                      # twice is fine


RUNNER_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from ipcbench.measure.launcher import Launcher
    launcher = Launcher()
    handle = launcher.start_round(*sys.argv[1:4])
    print(json.dumps([launcher.pid, handle.pid]), flush=True)
    time.sleep(120)
""")


def test_nothing_outlives_a_runner_killed_with_sigkill(tmp_path, plugin_env, no_leftovers):
    """No finally runs in a SIGKILLed runner: the launcher dies with it (PR_SET_PDEATHSIG), takes its
    round's group down, and the round's peers are reaped."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    job, out, err = _job(tmp_path, HANG)
    proc = subprocess.Popen([sys.executable, "-c", RUNNER_SCRIPT, job, out, err], stdout=subprocess.PIPE,
                            text=True)
    try:
        lpid, rpid = json.loads(proc.stdout.readline())
        time.sleep(0.5)
        peers = psutil.Process(rpid).children(recursive=True)
        proc.kill()
        proc.wait(10)
        assert _gone(lpid) and _gone(rpid)
        assert all(_gone(p.pid) for p in peers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_info_records_the_launcher(tmp_path, monkeypatch, no_leftovers):
    from ipcbench.measure.progress import QuietProgress

    for fresh, kind in ((False, "warm-fork"), (True, "fresh-interpreter")):
        writer = runner.ResultWriter(tmp_path / f"{kind}.json", "m", {})
        opts = runner.RunOptions(spec=TINY, rounds=1, round_timeout_s=30, fresh_rounds=fresh, seed=1)
        data = runner.run_cases([PIPE], opts, writer, QuietProgress())
        assert data["run"]["launcher"] == kind
        assert data["cases"][0]["status"] == "ok"
    monkeypatch.setattr(runner, "warm_available", lambda: False)       # no fork here: the fallback
    writer = runner.ResultWriter(tmp_path / "nofork.json", "m", {})
    data = runner.run_cases([PIPE], runner.RunOptions(spec=TINY, rounds=1, seed=1), writer, QuietProgress())
    assert data["run"]["launcher"] == "fresh-interpreter"


def test_a_launcher_that_does_not_start_falls_back_to_fresh_interpreters(monkeypatch, no_leftovers):
    from ipcbench.measure import launcher as launcher_mod

    monkeypatch.setattr(launcher_mod, "LAUNCHER", "import sys; print('not ready', flush=True)")
    with runner.open_launcher() as launcher:
        assert launcher is None
