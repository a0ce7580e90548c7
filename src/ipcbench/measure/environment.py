"""Machine and run metadata: what makes two result sets comparable (or not).

Everything here is read, never guessed; a value that cannot be read is ``None``.
"""

from __future__ import annotations

import importlib.metadata
import multiprocessing as mp
import os
import pickle
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path

from ..plan.presets import usable_cpus
from . import machine_file
from .placement import topology
from .system_checks import pyperf_metadata, run_checks

PACKAGES = ("ipcbench", "numpy", "scipy", "pandas", "matplotlib", "psutil", "pyperf", "pytest-benchmark",
            "rich", "Jinja2")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str | None:
    text = _read("/proc/cpuinfo") or ""
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    if m:
        return m.group(1).strip()
    return platform.processor() or None


def cgroup_cpu_quota() -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` (or v1 cfs quota); None where unlimited or unknown."""
    text = _read("/sys/fs/cgroup/cpu.max")
    if text:
        quota, _, period = text.partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    quota, period = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if quota and period and int(quota) > 0:
        return int(quota) / int(period)
    return None


def virtualization() -> str | None:
    """systemd-detect-virt when present, else the CPU's hypervisor flag and the DMI vendor."""
    try:
        out = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True, timeout=5)
        if out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    flags = re.search(r"^flags\s*:(.*)$", _read("/proc/cpuinfo") or "", re.M)
    hyper = bool(flags and " hypervisor" in flags.group(1))
    vendor = _read("/sys/class/dmi/id/sys_vendor")
    if hyper:
        return f"hypervisor ({vendor})" if vendor else "hypervisor"
    return "none" if flags else None


def cpu_governor() -> str | None:
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


CPUIDLE_ROOT = "/sys/devices/system/cpu/cpuidle"
HALTPOLL_ROOT = "/sys/module/haltpoll/parameters"


def cpu_idle(cpuidle_root: str = CPUIDLE_ROOT, haltpoll_root: str = HALTPOLL_ROOT) -> dict:
    """How an idle CPU waits: the ``cpuidle`` driver and governor, and the guest halt-polling window of the
    ``haltpoll`` driver (a VM's; 0: an idle vCPU halts at once and the host must wake it). Where idle CPUs
    do not poll, a cross-CPU round trip is mostly a wake-up, and it moves with the work either side does
    per message (``tools/wake_work.py``; docs/measurement.md)."""
    root = Path(cpuidle_root)
    poll = _read(f"{haltpoll_root}/guest_halt_poll_ns")
    return {
        "driver": _read(str(root / "current_driver")),
        "governor": _read(str(root / "current_governor")) or _read(str(root / "current_governor_ro")),
        "guest_halt_poll_ns": int(poll) if poll and poll.isdigit() else None,
    }


def git_commit(cwd: str | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=cwd or Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_metadata(machine_id: str | None = None, with_checks: bool = True) -> dict:
    """What the machine is; with ``with_checks``, also ``system_checks`` and pyperf's view of the machine
    (``pyperf``), see ``system_checks.py``."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    try:
        load = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    try:
        import psutil

        mem = psutil.virtual_memory().total
    except Exception:  # noqa: BLE001 - metadata is best effort
        mem = None
    identity = machine_file.load()
    machine = {
        "machine_id": machine_id or identity["machine_id"],
        "description": identity.get("description") if machine_id in (None, identity["machine_id"]) else None,
        "identity": identity["machine_id"],     # the machine file's id, even under --machine-id
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "affinity": affinity,
        "cgroup_cpu_quota": cgroup_cpu_quota(),
        "topology": topology(),
        "virtualization": virtualization(),
        "cpu_governor": cpu_governor(),
        "cpu_idle": cpu_idle(),
        "memory_bytes": mem,
        "os": platform.system(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "arch": platform.machine(),
        "load_average": load,
    }
    if with_checks:
        machine["system_checks"] = run_checks(machine)
        machine["pyperf"] = pyperf_metadata()
    return machine


def python_metadata() -> dict:
    return {
        "python_version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "build": list(platform.python_build()),
        "compiler": platform.python_compiler(),
        "executable": sys.executable,
        "gil_disabled": bool(getattr(sys, "_is_gil_enabled", lambda: True)() is False),
        "default_start_method": mp.get_start_method(allow_none=True) or mp.get_context().get_start_method(),
        "start_methods": mp.get_all_start_methods(),
        "pickle_default_protocol": pickle.DEFAULT_PROTOCOL,
        "pickle_highest_protocol": pickle.HIGHEST_PROTOCOL,
        "packages": package_versions(),
        "git_commit": git_commit(),
    }
