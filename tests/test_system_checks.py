"""System checks: pyperf's checks driven defensively, ipcbench's own, and where they are stored."""

from __future__ import annotations

import json
import os

import pytest

from ipcbench.measure import system_checks
from ipcbench.measure.environment import machine_metadata
from ipcbench.measure.system_checks import STATES, cpu_checks, pyperf_checks


def by_name(checks):
    return {c["check"]: c for c in checks}


# --------------------------------------------------------------------------------------------------
# ipcbench's own checks, from values
# --------------------------------------------------------------------------------------------------
def test_single_cpu_is_a_warning():
    c = by_name(cpu_checks(1, None, None, None))["Usable CPUs"]
    assert c["state"] == "warning"
    assert "only 1 usable CPU" in c["message"]
    assert c["source"] == "ipcbench"


def test_quota_below_usable_cpus_is_a_warning_naming_the_quota():
    checks = by_name(cpu_checks(4, 1.5, None, None))
    assert checks["Usable CPUs"]["state"] == "ok"
    assert checks["cgroup CPU quota"]["state"] == "warning"
    assert "1.5 CPUs is below the 4 usable CPUs" in checks["cgroup CPU quota"]["message"]
    assert "--workers up to 1" in checks["cgroup CPU quota"]["message"]


def test_quota_at_usable_cpus_is_ok_and_no_quota_gives_no_check():
    assert by_name(cpu_checks(2, 2.0, None, None))["cgroup CPU quota"]["state"] == "ok"
    assert "cgroup CPU quota" not in by_name(cpu_checks(2, None, None, None))


@pytest.mark.parametrize("load, state", [(0.2, "ok"), (1.0, "ok"), (1.01, "warning"), (3.0, "warning")])
def test_load_threshold_is_half_a_load_unit_per_usable_cpu(load, state):
    c = by_name(cpu_checks(2, None, load, None))["System load"]
    assert c["state"] == state
    assert f"{load:.2f}" in c["message"]


def test_virtualization_is_recorded_as_info_and_bare_metal_is_not():
    c = by_name(cpu_checks(2, None, None, "kvm"))["Virtualization"]
    assert c["state"] == "info"
    assert "running under kvm" in c["message"]
    assert "Virtualization" not in by_name(cpu_checks(2, None, None, "none"))


def test_cpu_idle_reads_driver_governor_and_the_guest_halt_poll_window(tmp_path):
    from ipcbench.measure.environment import cpu_idle

    idle, poll = tmp_path / "cpuidle", tmp_path / "haltpoll"
    idle.mkdir()
    poll.mkdir()
    (idle / "current_driver").write_text("haltpoll\n")
    (idle / "current_governor_ro").write_text("haltpoll\n")
    (poll / "guest_halt_poll_ns").write_text("0\n")
    assert cpu_idle(str(idle), str(poll)) == {"driver": "haltpoll", "governor": "haltpoll", "guest_halt_poll_ns": 0}
    (idle / "current_governor").write_text("menu\n")          # a writable governor file wins
    (poll / "guest_halt_poll_ns").write_text("200000\n")
    assert cpu_idle(str(idle), str(poll)) == {"driver": "haltpoll", "governor": "menu", "guest_halt_poll_ns": 200000}
    missing = str(tmp_path / "none")
    assert cpu_idle(missing, missing) == {"driver": None, "governor": None, "guest_halt_poll_ns": None}


def test_idle_vcpus_that_halt_without_polling_are_a_warning_that_says_what_it_means():
    idle = {"driver": "haltpoll", "governor": "haltpoll", "guest_halt_poll_ns": 0}
    c = by_name(cpu_checks(2, None, None, "kvm", idle))["CPU idle"]
    assert c["state"] == "warning"
    assert c["message"].startswith("cpuidle driver haltpoll, governor haltpoll, guest_halt_poll_ns 0: idle vCPUs "
                                   "halt without polling")
    assert "tools/wake_work.py" in c["message"]
    polling = by_name(cpu_checks(2, None, None, "kvm", dict(idle, guest_halt_poll_ns=200000)))["CPU idle"]
    assert (polling["state"], polling["message"]) == (
        "info", "cpuidle driver haltpoll, governor haltpoll, guest_halt_poll_ns 200000")
    metal = by_name(cpu_checks(2, None, None, "none", {"driver": "intel_idle", "governor": "menu",
                                                       "guest_halt_poll_ns": None}))["CPU idle"]
    assert (metal["state"], metal["message"]) == ("info", "cpuidle driver intel_idle, governor menu")
    assert "CPU idle" not in by_name(cpu_checks(2, None, None, None))
    assert "CPU idle" not in by_name(cpu_checks(2, None, None, None, {"driver": None}))


def test_checks_from_machine_metadata_do_not_read_again():
    machine = {"usable_cpus": 8, "cgroup_cpu_quota": 2.0, "load_average": [7.5, 1, 1], "virtualization": "none",
               "cpu_idle": {"driver": "haltpoll", "governor": "haltpoll", "guest_halt_poll_ns": 0}}
    checks = by_name(system_checks.ipcbench_checks(machine))
    assert checks["CPU idle"]["state"] == "warning"
    assert checks["cgroup CPU quota"]["state"] == "warning"
    assert checks["System load"]["state"] == "warning"
    assert "7.50 on 8 usable CPUs" in checks["System load"]["message"]


def test_a_broken_machine_dict_degrades_to_unavailable():
    checks = system_checks.ipcbench_checks({"usable_cpus": 2, "load_average": "not a list"})
    assert [c["state"] for c in checks] == ["unavailable"]


def test_unknown_state_is_refused():
    with pytest.raises(ValueError, match="unknown check state"):
        system_checks.check("x", "fine", "m")


# --------------------------------------------------------------------------------------------------
# pyperf's checks through a fake pyperf System (the shape of pyperf._system)
# --------------------------------------------------------------------------------------------------
class FakeSystem:
    def __init__(self, operations):
        self.states, self.advices, self.warnings, self.errors = [], [], [], []
        self.operations = [op(self) for op in operations]

    def log_state(self, m):
        self.states.append(m)

    def advice(self, m):
        self.advices.append(m)

    def warning(self, m):
        self.warnings.append(m)

    def error(self, m):
        self.errors.append(m)


def op_class(cls_name, name, *, states=(), advices=(), warnings=(), errors=(), tuned=None, raises=None):
    def show(self):
        if raises:
            raise raises
        for m in states:
            self.system.log_state(f"{name}: {m}")
        for m in advices:
            self.system.advice(f"{name}: {m}")
        for m in warnings:
            self.system.warning(f"{name}: {m}")
        for m in errors:
            self.system.error(f"{name}: {m}")
        self.tuned_for_benchmarks = tuned

    def init(self, system):
        self.system, self.name, self.tuned_for_benchmarks, self.permission_error = system, name, None, False

    return type(cls_name, (), {"__init__": init, "show": show})


def test_pyperf_operations_map_to_states_and_messages():
    ops = [
        op_class("CPUGovernor", "CPU scaling governor", states=["0-1=powersave"],
                 advices=["Use CPU scaling governor 'performance'"], tuned=False),
        op_class("ASLR", "ASLR", states=["Full randomization"], tuned=True),
        op_class("LinuxScheduler", "Linux scheduler", states=["No CPU is isolated"],
                 advices=["Use isolcpus=<cpu list> kernel parameter to isolate CPUs"]),
        op_class("TurboBoostMSR", "Turbo Boost (MSR)", warnings=["Failed to read MSR 0x1a0"], tuned=True),
        op_class("PerfEvent", "Perf event", errors=["Failed to read"]),
        op_class("PowerSupply", "Power supply"),                       # nothing to say: left out
        op_class("IRQAffinity", "IRQ affinity", states=["irqbalance service: active"]),   # skipped
        op_class("Broken", "Broken op", raises=OSError(13, "Permission denied")),
    ]
    checks = pyperf_checks(lambda: FakeSystem(ops))
    assert [c["check"] for c in checks] == ["CPU scaling governor", "ASLR", "Linux scheduler",
                                            "Turbo Boost (MSR)", "Perf event", "Broken op"]
    got = by_name(checks)
    assert got["CPU scaling governor"]["state"] == "warning"
    assert got["CPU scaling governor"]["message"] == "0-1=powersave; Use CPU scaling governor 'performance'"
    assert got["ASLR"] == {"check": "ASLR", "state": "ok", "message": "Full randomization", "source": "pyperf"}
    assert got["Linux scheduler"]["state"] == "info"
    assert got["Linux scheduler"]["message"].startswith("No CPU is isolated; Use isolcpus=")
    # pyperf says "tuned" when it could not read the MSR at all: that is "unavailable", not "ok"
    assert got["Turbo Boost (MSR)"]["state"] == "unavailable"
    assert got["Turbo Boost (MSR)"]["message"] == "Failed to read MSR 0x1a0"
    assert got["Perf event"]["state"] == "unavailable"
    assert got["Broken op"]["state"] == "unavailable"
    assert got["Broken op"]["message"] == "check failed: PermissionError: [Errno 13] Permission denied"


def test_a_pyperf_that_changed_its_private_api_degrades_to_one_unavailable_check():
    def gone():
        raise AttributeError("module 'pyperf._system' has no attribute 'System'")

    checks = pyperf_checks(gone)
    assert len(checks) == 1
    assert checks[0]["state"] == "unavailable"
    assert checks[0]["source"] == "pyperf"
    assert "AttributeError" in checks[0]["message"] and "pyperf system show" in checks[0]["message"]


# --------------------------------------------------------------------------------------------------
# the real pyperf on this machine, and where the checks land
# --------------------------------------------------------------------------------------------------
ASLR_PATH = "/proc/sys/kernel/randomize_va_space"


@pytest.mark.skipif(not os.path.exists(ASLR_PATH), reason="needs Linux's /proc/sys/kernel/randomize_va_space")
def test_real_pyperf_reports_aslr_as_the_kernel_says():
    checks = by_name(pyperf_checks())
    value = open(ASLR_PATH).read().strip()
    assert checks["ASLR"]["source"] == "pyperf"
    assert checks["ASLR"]["state"] == ("ok" if value == "2" else "warning")
    assert "IRQ affinity" not in checks
    assert all(c["state"] in STATES for c in checks.values())


def test_machine_metadata_carries_checks_and_pyperf_metadata():
    import pyperf

    m = machine_metadata("test-id")
    names = [c["check"] for c in m["system_checks"]]
    assert "Usable CPUs" in names
    assert all(set(c) == {"check", "state", "message", "source"} for c in m["system_checks"])
    assert m["pyperf"]["perf_version"] == pyperf.__version__
    assert m["pyperf"]["cpu_count"] == os.cpu_count()
    assert set(m["cpu_idle"]) == {"driver", "governor", "guest_halt_poll_ns"}
    assert "system_checks" not in machine_metadata("test-id", with_checks=False)


def test_result_file_stores_the_checks(tmp_path):
    from ipcbench.measure.runner import ResultWriter

    path = tmp_path / "r.json"
    ResultWriter(path, "m1", {"preset": "smoke"})
    data = json.loads(path.read_text())
    states = {c["check"]: c["state"] for c in data["machine"]["system_checks"]}
    assert states["Usable CPUs"] in ("ok", "warning")
    assert data["machine"]["pyperf"]["perf_version"]
