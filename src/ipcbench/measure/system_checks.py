"""Is this machine in a state to benchmark? pyperf's system checks plus a few of ipcbench's own.

pyperf already knows how to read the settings that make timings unstable (``python -m pyperf system
show``): CPU scaling governor, Turbo Boost, isolated CPUs (``isolcpus``/``rcu_nocbs``), ASLR, the perf
sampling rate, the power supply. We call those checks rather than copy them. pyperf has no public API
for them, so ``pyperf_checks`` drives ``pyperf._system`` defensively: anything it cannot find or run
becomes one check with state ``"unavailable"``, never an exception, so a pyperf upgrade degrades a
result file's metadata instead of breaking a run.

ipcbench adds what matters for IPC in particular: how many CPUs the peers can spread over, a cgroup quota
below that, a machine already busy, and a hypervisor (placement makes round trips bimodal there).

Each check is a dict ``{"check", "state", "message", "source"}``; ``state`` is one of ``STATES``:

* ``ok``          tuned as benchmarks want;
* ``warning``     likely to make results noisy or not comparable; the message says what to do;
* ``info``        worth recording, no verdict (e.g. "no CPU is isolated" where nothing can be done);
* ``unavailable`` the check could not run here (not Linux, no permission, pyperf changed).

``run_checks(machine)`` is what ``environment.machine_metadata`` stores as ``machine["system_checks"]``.
"""

from __future__ import annotations

from collections.abc import Callable

STATES = ("ok", "warning", "info", "unavailable")

# pyperf operations we do not run: IRQ affinity spawns `systemctl`/`service` (slow, noisy on stderr in
# containers) and gives no verdict; the others only matter when *tuning*, which ipcbench never does.
SKIPPED_PYPERF_OPERATIONS = frozenset({"IRQAffinity"})

BUSY_LOAD_PER_CPU = 0.5     # 1-minute load average per usable CPU above which the machine is "busy"


def check(name: str, state: str, message: str, source: str = "ipcbench") -> dict:
    if state not in STATES:
        raise ValueError(f"unknown check state {state!r}")
    return {"check": name, "state": state, "message": message, "source": source}


# --------------------------------------------------------------------------------------------------
# pyperf
# --------------------------------------------------------------------------------------------------
def _pyperf_system():
    """pyperf's ``System`` with its CPU list set the way ``pyperf system show`` sets it (no argv)."""
    from pyperf import _cpu_utils, _system

    system = _system.System()
    system.logical_cpu_count = _cpu_utils.get_logical_cpu_count()
    if not system.logical_cpu_count:
        raise RuntimeError("pyperf could not count the logical CPUs")
    isolated = _cpu_utils.get_isolated_cpus()
    system.cpus = tuple(isolated) if isolated else tuple(range(system.logical_cpu_count))
    return system


def _strip(name: str, msg: str) -> str:
    prefix = f"{name}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


def _run_operation(system, operation) -> dict | None:
    """Run one pyperf operation's ``show()`` and turn the messages it logged into one check (None when
    it had nothing to say, e.g. no mains power supply listed)."""
    lists = ("states", "advices", "warnings", "errors")
    before = {k: len(getattr(system, k)) for k in lists}
    operation.show()
    new = {k: [_strip(operation.name, m) for m in getattr(system, k)[before[k]:]] for k in lists}
    tuned = getattr(operation, "tuned_for_benchmarks", None)
    if not any(new.values()) and tuned is None:
        return None
    if new["errors"] or getattr(operation, "permission_error", False):
        state = "unavailable"
        message = "; ".join(new["errors"] + new["warnings"]) or "permission denied (run as root to read it)"
    elif new["warnings"] and not new["states"]:
        # e.g. Turbo Boost (MSR) without /dev/cpu/N/msr: pyperf warns and then reports "tuned" by default
        state, message = "unavailable", "; ".join(new["warnings"])
    elif tuned is False:
        state, message = "warning", "; ".join(new["states"] + new["advices"] + new["warnings"])
    elif tuned is True:
        state, message = "ok", "; ".join(new["states"] + new["warnings"])
    else:
        state, message = "info", "; ".join(new["states"] + new["advices"] + new["warnings"])
    return check(operation.name, state, message or "no details reported", source="pyperf")


def pyperf_checks(system_factory: Callable | None = None) -> list[dict]:
    """pyperf's ``system show`` checks, one dict per operation; never raises."""
    try:
        system = (system_factory or _pyperf_system)()
        operations = list(system.operations)
    except Exception as exc:  # noqa: BLE001 - any pyperf change must degrade, not crash a run
        return [check("pyperf system checks", "unavailable",
                      f"pyperf's system checks could not run ({type(exc).__name__}: {exc}); "
                      f"`python -m pyperf system show` may still work", source="pyperf")]
    out = []
    for operation in operations:
        if type(operation).__name__ in SKIPPED_PYPERF_OPERATIONS:
            continue
        name = getattr(operation, "name", type(operation).__name__)
        try:
            got = _run_operation(system, operation)
        except Exception as exc:  # noqa: BLE001
            got = check(name, "unavailable", f"check failed: {type(exc).__name__}: {exc}", source="pyperf")
        if got is not None:
            out.append(got)
    return out


# --------------------------------------------------------------------------------------------------
# ipcbench's own
# --------------------------------------------------------------------------------------------------
def cpu_checks(usable: int, quota: float | None, load1: float | None, virtualization: str | None,
               idle: dict | None = None) -> list[dict]:
    """Checks from values already read (so they are testable without touching the machine); ``idle``:
    ``environment.cpu_idle()``."""
    out = []
    if usable < 2:
        out.append(check("Usable CPUs", "warning",
                         f"only {usable} usable CPU: every peer shares it with the parent, so round trips "
                         f"measure context switches; run on 2 or more CPUs"))
    else:
        out.append(check("Usable CPUs", "ok", f"{usable} usable CPUs"))
    if quota is not None:
        if quota < usable:
            out.append(check("cgroup CPU quota", "warning",
                             f"a cgroup quota of {quota:g} CPUs is below the {usable} usable CPUs: multi-worker "
                             f"cases will be throttled; raise the quota or run with --workers up to {max(1, int(quota))}"))
        else:
            out.append(check("cgroup CPU quota", "ok", f"{quota:g} CPUs (not below the usable CPUs)"))
    if load1 is not None:
        if load1 > BUSY_LOAD_PER_CPU * usable:
            out.append(check("System load", "warning",
                             f"1-minute load average {load1:.2f} on {usable} usable CPUs: other work is running "
                             f"and will show up as noise; benchmark on an idle machine"))
        else:
            out.append(check("System load", "ok", f"1-minute load average {load1:.2f}"))
    if virtualization and virtualization != "none":
        out.append(check("Virtualization", "info",
                         f"running under {virtualization}: where two vCPUs land on the host decides round-trip "
                         f"latency, so results can be bimodal; compare rounds (each in fresh processes) and watch for the bimodal flag"))
    out += idle_checks(idle)
    return out


def idle_checks(idle: dict | None) -> list[dict]:
    """A VM whose idle vCPUs halt without polling (``haltpoll`` with ``guest_halt_poll_ns`` 0): a round
    trip there is mostly the host waking a halted vCPU, and it is not even monotonic in the work done
    per message (on the 2-vCPU reference VM 2-5 µs of busy work per receipt made a Pipe round trip
    25-70 % faster: ``tools/wake_work.py``)."""
    if not idle or not idle.get("driver"):
        return []
    driver, governor, poll = idle["driver"], idle.get("governor"), idle.get("guest_halt_poll_ns")
    where = f"cpuidle driver {driver}" + (f", governor {governor}" if governor else "")
    if driver == "haltpoll" and poll == 0:
        return [check("CPU idle", "warning",
                      f"{where}, guest_halt_poll_ns 0: idle vCPUs halt without polling, so a cross-CPU round "
                      f"trip is mostly the host waking a vCPU, and its time moves with the work each side does "
                      f"per message (tools/wake_work.py); compare round trips between mechanisms of this machine "
                      f"with care, and across machines not at all")]
    return [check("CPU idle", "info", where + (f", guest_halt_poll_ns {poll}" if poll is not None else ""))]


def ipcbench_checks(machine: dict) -> list[dict]:
    """ipcbench's checks, judged from ``machine`` metadata (``environment.machine_metadata``; no second read)."""
    try:
        load = machine.get("load_average")
        return cpu_checks(machine.get("usable_cpus") or 1, machine.get("cgroup_cpu_quota"),
                          load[0] if load else None, machine.get("virtualization"), machine.get("cpu_idle"))
    except Exception as exc:  # noqa: BLE001 - metadata is best effort
        return [check("ipcbench checks", "unavailable", f"{type(exc).__name__}: {exc}")]


def run_checks(machine: dict) -> list[dict]:
    """All checks, pyperf's first; what a result file stores as ``machine["system_checks"]``."""
    return pyperf_checks() + ipcbench_checks(machine)


def warnings(checks: list[dict]) -> list[dict]:
    return [c for c in checks if c.get("state") == "warning"]


def pyperf_metadata() -> dict:
    """The machine as pyperf describes it (``pyperf._collect_metadata.collect_metadata(process=False)``:
    CPU frequency and driver/governor per CPU, isolated and nohz_full CPUs, boot time, runnable threads).
    Stored beside ipcbench's own metadata and reused as pyperf run metadata on export; ``{}`` if pyperf
    cannot provide it."""
    try:
        from pyperf._collect_metadata import collect_metadata

        raw = collect_metadata(process=False)
    except Exception:  # noqa: BLE001 - private pyperf API: degrade to nothing
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, (str, int, float))}
