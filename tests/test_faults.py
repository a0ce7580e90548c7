"""Fault injection (issue 14): a peer SIGKILLed mid-round in every pattern that has peers, a peer that
hangs, a Manager server that dies, a Pool worker that is killed or whose task raises. Each fault must give
a failed case with its reason, within the round's deadline; the run goes on (a healthy case in the same
run still gets its rounds, after the failure, from the same launcher); and afterwards no process, POSIX
semaphore or /dev/shm segment of ours is left.

The faults live in tests/faulty_mechanisms.py (``test_kill_*``, ``test_hang*``, ``test_raise_*``): real
patterns and real peers, with a mechanism whose maker wraps what a peer uses so that the fault happens in
the peer process at a known call of the round. The assertions say what each fault really gives (the
reason names the process that died: a peer, the Manager's server, a Pool worker); the table of
docs/reliability.md sums them up.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import replace

import psutil
import pytest

from ipcbench.measure.mechanisms import all_mechanisms
from ipcbench.measure.patterns import PATTERNS
from ipcbench.measure.progress import QuietProgress
from ipcbench.measure.runner import ResultWriter, RunOptions, run_cases
from ipcbench.plan.cases import Case, RoundSpec

TINY = RoundSpec(budget_s=0.005, min_messages=3, max_window_s=2, max_messages=300, warmup=2, warmup_s=0.01,
                 timeout_s=10)
# Faults the round notices itself (the peer monitor, an exception): a deadline they must stay well below.
NOTICED = RunOptions(spec=TINY, rounds=2, round_timeout_s=15, seed=14)
# A failed Pool round can spend up to RoundSpec.timeout_s in its teardown (Pool.terminate now and then
# loses a worker's SIGTERM, mostly on a loaded machine); a short one keeps these tests short regardless.
POOL = replace(NOTICED, spec=replace(TINY, timeout_s=2))
# Faults only the round deadline ends: a short one.
HUNG = RunOptions(spec=TINY, rounds=2, round_timeout_s=3, seed=14)
KILL_SLACK_S = 8   # past a deadline: faulthandler's stacks (0.3 s), SIGTERM grace (3 s), SIGKILL, reaping

KILLED = "peer process {!r} was killed by signal 9 during the round"


def case(mechanism: str, pattern: str, method: str = "fork") -> Case:
    size = 0 if pattern == "contention" else 8
    workers = 2 if pattern in ("fanin", "rpc", "dispatch", "contention") else 1
    return Case(mechanism, pattern, "bytes", size, workers, method)


HEALTHY = {"roundtrip": "pipe_duplex", "stream": "pipe_simplex", "fanin": "queue", "rpc": "manager_dict",
           "contention": "lock", "dispatch": "pool_apply"}


def healthy(faulty: Case) -> Case:
    """A healthy case of the same pattern (and dispatch style), start method and sizes."""
    name = next((f"pool{s}" for s in ("_apply_async_window", "_apply_async") if faulty.mechanism.endswith(s)),
                HEALTHY[faulty.pattern])
    return replace(faulty, mechanism=name)


# -- what must be left afterwards: nothing ---------------------------------------------------------------
def _shm() -> set[str]:
    """Our entries in /dev/shm: shared memory segments and named POSIX semaphores (``sem.*`` on Linux)."""
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return set()
    mine = set()
    for n in names:
        try:
            if os.stat(os.path.join("/dev/shm", n)).st_uid == os.getuid():
                mine.add(n)
        except OSError:
            pass
    return mine


def _children() -> set[int]:
    """Every process below this one, zombies included (an unreaped child is left over too)."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture
def nothing_left(plugin_env, no_leftovers):
    """On top of ``no_leftovers`` (no process carrying this test's mark outlives it; no multiprocessing
    name in /dev/shm): no new child of ours, not even a zombie; no new /dev/shm entry of ours whatever its
    name, POSIX semaphores named apart."""
    shm, kids = _shm(), _children()
    yield
    deadline = time.monotonic() + 3          # a resource tracker may still be unlinking
    while (_shm() - shm or _children() - kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    new = sorted(_shm() - shm)
    assert not [n for n in new if n.startswith("sem.")], f"POSIX semaphores left: {new}"
    assert not new, f"left in /dev/shm: {new}"
    left = []
    for pid in _children() - kids:
        try:
            p = psutil.Process(pid)
            left.append((pid, p.status(), " ".join(p.cmdline()[:4])))
        except psutil.Error:
            pass
    assert not left, f"children left: {left}"


# -- one run: the faulty case, then a healthy one --------------------------------------------------------
def run_with_healthy(faulty: Case, opts: RunOptions, tmp_path) -> tuple[dict, dict]:
    """Run ``faulty`` and a healthy case of the same pattern and start method in one run (two rounds
    each at least); check that the run went on past the failure; return both case records."""
    writer = ResultWriter(tmp_path / "faults.json", "faults", {"rounds": opts.rounds})
    data = run_cases([faulty, healthy(faulty)], opts, writer, QuietProgress())
    bad, good = data["cases"]
    assert data["run"]["status"] == "complete"
    assert data["run"]["launcher_starts"] == 1            # the round launcher survived the fault
    # the faulty case: its first round failed, and nothing else was run or measured for it
    assert (bad["status"], bad["stop_reason"], bad["target_met"]) == ("failed", "failed", False)
    assert bad["metrics"] == {} and len(bad["rounds"]) == 1
    failed = bad["rounds"][0]
    assert failed["ok"] is False and failed["error"] == bad["error"]
    # the run went on: the healthy case got all its rounds, at least one after the failure
    assert good["status"] == "ok", good["error"]
    assert len(good["rounds"]) == opts.rounds and all(r["ok"] for r in good["rounds"])
    assert max(r["order"] for r in good["rounds"]) > failed["order"]
    return bad, good


def noticed_in_time(rec: dict, opts: RunOptions = NOTICED) -> None:
    """The round noticed the fault itself, well inside its deadline (the runner did not have to kill it)."""
    assert not rec["error"].startswith("timed out"), rec["error"]
    assert rec["wall_s"] < opts.round_timeout_s


def killed_at_the_deadline(rec: dict, opts: RunOptions = HUNG) -> None:
    deadline = opts.round_timeout_s
    assert rec["error"].startswith(f"timed out after {deadline:g} s in "), rec["error"]
    assert rec["error"].endswith("(a peer hung or deadlocked); all its processes were killed")
    assert deadline <= rec["wall_s"] < deadline + KILL_SLACK_S


# -- a peer SIGKILLed mid-round, for each pattern with peers ------------------------------------------------
def test_every_pattern_with_peers_has_a_sigkill_fault(plugin_env):
    killed = {p for m in all_mechanisms() if m.name.startswith("test_kill_") and m.name != "test_kill_manager"
              for p in m.patterns}
    assert killed == set(PATTERNS) - {"startup"}          # startup's children are not peers of a round


SIGKILL_REASONS = {
    "roundtrip": ("test_kill_roundtrip", {KILLED.format("echo")}),
    "stream": ("test_kill_stream", {KILLED.format("producer-0")}),
    "fanin": ("test_kill_fanin", {KILLED.format("producer-1")}),
    "rpc": ("test_kill_rpc", {KILLED.format("client-1")}),
    "contention": ("test_kill_contention", {KILLED.format("client-1")}),
}


@pytest.mark.parametrize("pattern", list(SIGKILL_REASONS))
def test_a_peer_sigkilled_mid_round_fails_the_case_with_its_reason(pattern, tmp_path, nothing_left):
    mechanism, reasons = SIGKILL_REASONS[pattern]
    bad, _ = run_with_healthy(case(mechanism, pattern), NOTICED, tmp_path)
    assert bad["error"] in reasons
    noticed_in_time(bad)


@pytest.mark.parametrize("pattern", ["roundtrip", "contention"])
def test_a_spawned_peer_sigkilled_mid_round(pattern, tmp_path, nothing_left):
    """The same with spawn: peers are fresh interpreters, and multiprocessing's semaphores have names
    (/dev/shm/sem.mp-*) that only an orderly exit, or the resource tracker, unlinks."""
    mechanism, reasons = SIGKILL_REASONS[pattern]
    before = _shm()
    try:
        bad, _ = run_with_healthy(case(mechanism, pattern, "spawn"), NOTICED, tmp_path)
        assert bad["error"] in reasons
        noticed_in_time(bad)
        time.sleep(0.5)                                       # a resource tracker may still be unlinking
        left = sorted(_shm() - before)
    finally:
        for name in _shm() - before:                          # leave /dev/shm as it was, whatever happened
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except OSError:
                pass
    assert not left, f"left in /dev/shm: {left}"


# -- a Pool worker SIGKILLed: the Pool would replace it and lose its task; the peer monitor watches workers --
@pytest.mark.parametrize("mechanism", ["test_kill_apply", "test_kill_apply_async", "test_kill_apply_async_window"])
def test_a_pool_worker_sigkilled_mid_round_fails_the_case(mechanism, tmp_path, nothing_left):
    bad, _ = run_with_healthy(case(mechanism, "dispatch"), POOL, tmp_path)
    assert re.fullmatch(r"peer process 'ForkPoolWorker-\d+' was killed by signal 9 during the round", bad["error"])
    noticed_in_time(bad, POOL)


# -- a peer that hangs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism, pattern, where", [
    pytest.param("test_hang", "roundtrip", r"_recv \(connection\.py:\d+\)", id="roundtrip"),  # no echo
    pytest.param("test_hang_stream", "stream", r"_recv \(connection\.py:\d+\)", id="stream"),  # no message
])
def test_a_hanging_peer_is_killed_at_the_round_deadline(mechanism, pattern, where, tmp_path, nothing_left):
    bad, _ = run_with_healthy(case(mechanism, pattern), HUNG, tmp_path)
    killed_at_the_deadline(bad)
    assert re.search(f" in {where} ", bad["error"]), bad["error"]


# -- a Manager server that dies -------------------------------------------------------------------------
def test_a_manager_server_that_dies_fails_the_case(tmp_path, nothing_left):
    """The clients SIGKILL the Manager's server at their first timed call, then call it: the peer monitor
    names the server, with the last exception a process of the round printed (a client's broken call)."""
    bad, _ = run_with_healthy(case("test_kill_manager", "rpc"), NOTICED, tmp_path)
    assert re.fullmatch(r"peer process 'manager' was killed by signal 9 during the round"
                        r"( \(last error in the round: (BrokenPipeError|ConnectionResetError|EOFError)\b.*\))?",
                        bad["error"]), bad["error"]
    noticed_in_time(bad)


# -- a Pool task that raises --------------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism, reason", [
    pytest.param("test_raise_apply", "ValueError: pool task failed on purpose", id="apply"),
    pytest.param("test_raise_apply_async", "ValueError: pool task failed on purpose", id="apply_async"),
    pytest.param("test_raise_apply_async_window", "a pool task failed: ValueError('pool task failed on purpose')",
                 id="apply_async_window"),
])
def test_a_pool_task_that_raises_is_named_in_the_reason(mechanism, reason, tmp_path, nothing_left):
    bad, _ = run_with_healthy(case(mechanism, "dispatch"), POOL, tmp_path)
    assert bad["error"] == reason
    noticed_in_time(bad, POOL)


def test_cleanup_after_a_failed_round_spares_names_another_process_still_uses():
    """After a failed round the runner unlinks the /dev/shm names that appeared meanwhile, but not those
    a live process maps: another run's (or program's) semaphores and segments made at the same moment."""
    import multiprocessing as mp
    from multiprocessing import shared_memory

    from ipcbench.measure import shm_cleanup

    before = shm_cleanup.shm_names()
    theirs = mp.get_context("spawn").Lock()            # a named semaphore, open (mapped) in this process
    segment = shared_memory.SharedMemory(create=True, size=4096)
    orphan = shared_memory.SharedMemory(create=True, size=4096)
    orphan_name = orphan.name.lstrip("/")
    orphan.close()                                    # nobody maps it any more: a killed round's leftover
    try:
        shm_cleanup.clean_shm(before)
        left = shm_cleanup.shm_names() - before
        assert f"sem.{theirs._semlock.name.lstrip('/')}" in left and segment.name.lstrip("/") in left
        assert orphan_name not in left
    finally:
        segment.close()
        segment.unlink()
        from multiprocessing import resource_tracker

        resource_tracker.unregister(f"/{orphan_name}", "shared_memory")


def _sleeper(seconds: float, code: int) -> None:
    time.sleep(seconds)
    os._exit(code)


def test_the_peer_monitor_never_waits_on_a_timer_and_still_sees_exits_and_close(monkeypatch):
    """PeerMonitor sleeps until a peer exits or watch()/close() wake it: every wait it makes has no timeout
    (a timed wait in the timing process sped round trips up by 6-10 % on the reference VM,
    tools/timer_wakeups.py). It still reports a peer that dies, picks up a peer watched after it started,
    leaves on close() and closes its wake-up pipe."""
    import multiprocessing as mp
    from multiprocessing import connection

    from ipcbench.measure.harness import PeerMonitor

    timeouts = []
    real_wait = connection.wait

    def recording_wait(objects, timeout=None):
        timeouts.append(timeout)
        return real_wait(objects, timeout)
    monkeypatch.setattr(connection, "wait", recording_wait)
    failures = []
    mon = PeerMonitor(failures.append)
    fds = (mon._wake_r, mon._wake_w)
    mon.start()
    ctx = mp.get_context("fork")
    healthy = ctx.Process(target=_sleeper, args=(30, 0), name="healthy", daemon=True)
    dying = ctx.Process(target=_sleeper, args=(0.3, 3), name="dying", daemon=True)
    try:
        healthy.start()
        mon.watch(healthy)
        time.sleep(0.1)                         # the monitor now blocks on the healthy peer alone
        dying.start()
        mon.watch(dying)                        # must be picked up without a timer
        deadline = time.monotonic() + 10
        while not failures and time.monotonic() < deadline:
            time.sleep(0.01)
        assert failures == ["peer process 'dying' exited with status 3 during the round"]
        mon.join(5)                             # it returns after reporting
        assert not mon.is_alive()
    finally:
        for p in (healthy, dying):
            p.kill()
            p.join()
    assert timeouts and set(timeouts) == {None}
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)

    quiet = PeerMonitor(failures.append)
    quiet.start()
    time.sleep(0.05)
    quiet.close()                               # nothing watched: close() alone ends it
    quiet.join(5)
    assert not quiet.is_alive() and len(failures) == 1


def test_the_peer_monitor_judges_a_peer_that_exits_between_two_readings_of_its_exit_code():
    """A peer that exits right after the monitor judged it alive must still wake it: the wait includes
    every peer judged alive in that pass (read again, the exit code would drop it from the wait while
    nobody had judged it: a round that then waited for ever on the peer's partner, as CI once did)."""
    from ipcbench.measure.harness import PeerMonitor

    class Flicker:                                 # alive at the first reading, killed at every later one
        name, readings = "client-1", 0

        def __init__(self):
            self.sentinel, w = os.pipe()
            os.close(w)                            # a dead process's sentinel: at end of file

        @property
        def exitcode(self):
            self.readings += 1
            return None if self.readings == 1 else -9

    failures = []
    peer = Flicker()
    mon = PeerMonitor(failures.append)
    try:
        mon.start()
        time.sleep(0.1)                            # the monitor blocks, nothing to watch yet
        mon.watch(peer)                            # its wake-up is read before the pass that judges it
        mon.join(5)
        assert failures == ["peer process 'client-1' was killed by signal 9 during the round"]
        assert not mon.is_alive()
    finally:
        mon.close()
        os.close(peer.sentinel)
