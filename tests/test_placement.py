"""Placement: the CPU order and topology from sysfs, and real rounds whose processes' affinity is read back."""

import os
import subprocess
import sys

import pytest

from ipcbench.measure.harness import Round
from ipcbench.measure.mechanisms import get
from ipcbench.measure.placement import Placer, cpu_order, parse_cpu_list, topology
from ipcbench.measure.runner import RunOptions, run_case
from ipcbench.plan.cases import Case, RoundSpec
from ipcbench.plan.presets import build_grid, check_placements

TINY = RoundSpec(budget_s=0.005, min_messages=3, max_window_s=2, max_messages=300, warmup=2, warmup_s=0.01,
                 timeout_s=10)
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="placement needs 2 usable CPUs to tell spread from shared")


def test_cpu_lists_parse_as_the_kernel_writes_them():
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("") == [] and parse_cpu_list(None) == [] and parse_cpu_list("x-1") == []


def test_spread_fills_one_cpu_per_physical_core_first():
    siblings = {0: (0, 2), 2: (0, 2), 1: (1, 3), 3: (1, 3)}        # cpu0 and cpu2 are one core
    assert cpu_order([0, 1, 2, 3], siblings) == [0, 1, 2, 3]
    siblings = {0: (0, 1), 1: (0, 1), 2: (2, 3), 3: (2, 3)}        # cpu0 and cpu1 are one core
    assert cpu_order([3, 2, 1, 0], siblings) == [0, 2, 1, 3]
    assert cpu_order([1, 3], siblings) == [1, 3]                  # only one sibling of each usable
    assert cpu_order([5, 4], {}) == [4, 5]                        # no topology known: by number


def test_topology_reads_smt_siblings_and_numa_nodes(tmp_path):
    cpu, node = tmp_path / "cpu", tmp_path / "node"
    for c, sib in ((0, "0,2"), (1, "1,3"), (2, "0,2"), (3, "1,3")):
        d = cpu / f"cpu{c}" / "topology"
        d.mkdir(parents=True)
        (d / "thread_siblings_list").write_text(sib + "\n")
    for n, cpus in ((0, "0-1"), (1, "2-3")):
        (node / f"node{n}").mkdir(parents=True)
        (node / f"node{n}" / "cpulist").write_text(cpus + "\n")
    (cpu / "cpufreq").mkdir()                                     # not a cpuN folder: ignored
    assert topology(str(cpu), str(node)) == {"cores": [[0, 2], [1, 3]], "threads_per_core": 2,
                                             "numa_nodes": {"0": [0, 1], "1": [2, 3]}}
    assert topology(str(tmp_path / "none"), str(tmp_path / "none")) == {
        "cores": None, "threads_per_core": None, "numa_nodes": None}


def test_placer_assigns_peers_round_robin_after_the_driver(monkeypatch):
    pinned = {}
    monkeypatch.setattr("ipcbench.measure.placement.pin_process", lambda pid, cpus: pinned.update({pid: cpus}))
    p = Placer("spread", cpus=[4, 5, 6], siblings={})
    for pid in (101, 102, 103):
        p.place(pid, "peer")
    assert pinned == {101: {5}, 102: {6}, 103: {4}}
    assert p.record([])["shares_cpu"] is False                     # driver not pinned here: 3 processes, 3 CPUs
    p.place(104, "peer")
    assert pinned[104] == {5} and p.record([])["shares_cpu"] is True
    shared = Placer("shared", cpus=[4, 5], siblings={})
    shared.place(7, "peer")
    assert pinned[7] == {4} and shared.round_cpus == [4]
    assert Placer("os", cpus=[4, 5]).pinned is False and Placer("os", cpus=[4, 5]).round_cpus == Placer("os").original
    with pytest.raises(ValueError, match="unknown placement 'nearby'"):
        Placer("nearby")


def _round(placement, mechanism="pipe_duplex", pattern="roundtrip", workers=1, method="fork"):
    case = Case(mechanism, pattern, "bytes", 8, workers, method, placement)
    rnd = Round(case, TINY)
    mech = get(mechanism)
    try:
        result = mech.patterns[pattern].run(rnd, mech)
    finally:
        rnd.close()
    return result.placement


@two_cpus
def test_spread_puts_the_echo_peer_on_its_own_cpu_read_back(no_leftovers):
    before = os.sched_getaffinity(0)
    rec = _round("spread")
    order = rec["cpu_order"]
    roles = {a["role"]: (int(pid), a["cpus"]) for pid, a in rec["assigned"].items()}
    assert set(roles) == {"driver", "echo"}
    assert roles["driver"][1] == [order[0]] and roles["echo"][1] == [order[1]]
    for pid, cpus in roles.values():                            # what the kernel reported, per process
        assert rec["affinity_of"][str(pid)] == cpus
    assert rec["placement"] == "spread" and rec["shares_cpu"] is False
    assert os.sched_getaffinity(0) == before                    # the caller's affinity is given back


@two_cpus
def test_overlapping_placers_in_one_thread_see_and_give_back_the_first_affinity():
    before = os.sched_getaffinity(0)
    outer = Placer("shared")
    outer.pin_self()
    inner = Placer("spread")                               # made while the thread is pinned
    inner.pin_self()
    assert sorted(inner.order) == sorted(before) and inner.original == outer.original
    outer.restore()                                        # closed first: the inner one still holds
    assert len(os.sched_getaffinity(0)) == 1
    inner.restore()
    inner.restore()                                        # a second restore changes nothing
    assert os.sched_getaffinity(0) == before


@two_cpus
def test_shared_puts_every_process_on_one_cpu(no_leftovers):
    rec = _round("shared", "pool_apply", "dispatch", workers=2)
    cpu = rec["cpu_order"][0]
    assert sorted(a["role"] for a in rec["assigned"].values()) == ["driver", "pool-worker", "pool-worker"]
    assert all(v == [cpu] for v in rec["affinity_of"].values()) and len(rec["affinity_of"]) == 3
    assert rec["shares_cpu"] is True


@two_cpus
def test_spread_with_more_processes_than_cpus_goes_round_robin_and_says_so(no_leftovers):
    rec = _round("spread", "manager_dict", "rpc", workers=len(CPUS))
    order = rec["cpu_order"]
    assigned = sorted(rec["assigned"].values(), key=lambda a: a["role"] != "driver")
    assert [a["role"] for a in assigned][:2] == ["driver", "manager"]
    assert [a["cpus"][0] for a in assigned] == [order[i % len(order)] for i in range(len(assigned))]
    assert rec["shares_cpu"] is True                           # driver + server + N clients > N CPUs


def test_os_pins_nothing(no_leftovers):
    rec = _round("os")
    assert rec["assigned"] == {} and rec["shares_cpu"] is False
    assert all(v == CPUS for v in rec["affinity_of"].values())


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_case_run_by_the_runner_records_its_placement_per_round(method, no_leftovers):
    case = Case("queue", "roundtrip", "bytes", 8, 1, method, "shared")
    rec = run_case(case, RunOptions(spec=TINY, rounds=2, round_timeout_s=30))
    assert rec["status"] == "ok", rec["error"]
    assert rec["case"]["placement"] == "shared"
    for r in rec["rounds"]:
        assert r["placement"]["placement"] == "shared"
        assert len(set(map(tuple, r["placement"]["affinity_of"].values()))) == 1     # one CPU for all


@two_cpus
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spread_reaches_peers_started_through_spawn_and_the_forkserver(method, no_leftovers):
    rec = run_case(Case("pipe_duplex", "roundtrip", "bytes", 8, 1, method, "spread"),
                   RunOptions(spec=TINY, rounds=1, round_timeout_s=30))
    assert rec["status"] == "ok", rec["error"]
    got = rec["rounds"][0]["placement"]
    roles = {a["role"]: (pid, a["cpus"]) for pid, a in got["assigned"].items()}
    assert set(roles) == {"driver", "echo"} and roles["driver"][1] != roles["echo"][1]
    assert all(got["affinity_of"][pid] == cpus for pid, cpus in roles.values())


def test_placements_are_a_grid_dimension_and_checked():
    class M:
        name, patterns = "pipe_duplex", ("roundtrip",)

    grid = build_grid(None, None, [8], [1], ["fork"], catalogue=[M()], placements=["spread", "os"])
    assert [c.id for c in grid] == ["pipe_duplex/roundtrip/8B/w1/fork/spread", "pipe_duplex/roundtrip/8B/w1/fork/os"]
    assert check_placements([]) == ["spread"] and check_placements(["os", "os"]) == ["os"]


def test_unknown_placement_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ipcbench", "run", "--placement", "near", "-o",
                           str(tmp_path / "r.json")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("unknown placement 'near'; choose from spread, shared, os")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "r.json").exists()
