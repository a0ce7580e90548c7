"""Where a round's processes run: the ``placement`` dimension of a case, applied, and the CPU topology.

The names and their meaning are in ``plan.cases.PLACEMENTS``:

``spread``  the driver (the orchestrator process that holds the clock) on one CPU and each peer process,
            in the order the round starts them, on the next CPU of the usable set; one logical CPU per
            physical core first (SMT siblings last, ``cpu_order``), round-robin once every CPU has one.
``shared``  every process of the round on one CPU (the first of the usable set).
``os``      nothing pinned: the scheduler places the processes, as in a user's program by default.

How it is applied (``Placer``). Before the round starts anything, the driver pins its own thread
(``os.sched_setaffinity(0, ...)``), so every process and thread it starts inherits that CPU (``fork``
keeps the mask, and so does the ``exec`` behind spawn and forkserver). Under ``spread`` each peer process
is moved to its own CPU right after it starts, before any warm-up (``Round.start_peer``, ``Round.pool``,
``Round.manager`` call ``Placer.place``): every thread of it, by thread id, since the kernel call sets
one thread's mask. Helpers of multiprocessing (the forkserver, the resource tracker) stay on the
driver's CPU; they are idle while the clock runs. The children of ``startup`` are started inside the
timed operation, so they run where the driver runs.

Every round records what was asked and what the kernel reports afterwards (``Placer.record``): the
CPU order, the role and CPU assigned to each process, and each process's affinity read back, so a
reader can check that a case ran where its name says.

Why ``spread`` is the default: a Pipe round trip of 8 B, 12 fresh rounds per placement, interleaved, on
the project's 2-vCPU VM, gave a between-round CV of 11 % pinned to different CPUs, 14 % on one CPU and
23 % unpinned (issue 10); unpinned, two processes share a CPU in some rounds and not in others, which
makes cases bimodal. docs/measurement.md has the figures with the engine itself.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

SPREAD, SHARED, OS = "spread", "shared", "os"
CPU_ROOT = "/sys/devices/system/cpu"
NODE_ROOT = "/sys/devices/system/node"


def parse_cpu_list(text: str | None) -> list[int]:
    """``"0-3,8,10-11"`` (the kernel's CPU list format) -> ``[0, 1, 2, 3, 8, 10, 11]``; [] for None/""."""
    out: list[int] = []
    for part in (text or "").strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            return []
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def smt_siblings(root: str = CPU_ROOT) -> dict[int, tuple[int, ...]]:
    """CPU -> the logical CPUs of its physical core (itself included), from sysfs; {} where unknown."""
    out = {}
    base = Path(root)
    try:
        entries = list(base.iterdir())
    except OSError:
        return {}
    for d in entries:
        name = d.name
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        text = _read(d / "topology" / "thread_siblings_list") or _read(d / "topology" / "core_cpus_list")
        sib = parse_cpu_list(text)
        if sib:
            out[int(name[3:])] = tuple(sorted(sib))
    return out


def numa_nodes(root: str = NODE_ROOT) -> dict[int, list[int]]:
    """NUMA node -> its CPUs, from sysfs; {} where unknown (no NUMA, or not Linux)."""
    out = {}
    try:
        entries = list(Path(root).iterdir())
    except OSError:
        return {}
    for d in entries:
        if d.name.startswith("node") and d.name[4:].isdigit():
            cpus = parse_cpu_list(_read(d / "cpulist"))
            if cpus:
                out[int(d.name[4:])] = cpus
    return dict(sorted(out.items()))


def cpu_order(cpus, siblings: dict[int, tuple[int, ...]] | None = None) -> list[int]:
    """The usable ``cpus`` in the order ``spread`` fills them: one logical CPU of each physical core
    (lowest number first), then the cores' other SMT siblings."""
    siblings = smt_siblings() if siblings is None else siblings
    first, rest, cores = [], [], set()
    for c in sorted(set(cpus)):
        core = siblings.get(c, (c,))
        if core in cores:
            rest.append(c)
        else:
            cores.add(core)
            first.append(c)
    return first + rest


def topology(cpu_root: str = CPU_ROOT, node_root: str = NODE_ROOT) -> dict:
    """What a reader needs to judge placement: the physical cores (groups of SMT siblings), the number of
    logical CPUs per core, and the NUMA nodes with their CPUs."""
    sib = smt_siblings(cpu_root)
    cores = sorted({s for s in sib.values()})
    return {
        "cores": [list(c) for c in cores] or None,
        "threads_per_core": max((len(c) for c in cores), default=None),
        "numa_nodes": {str(k): v for k, v in numa_nodes(node_root).items()} or None,
    }


def allowed() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def pin_process(pid: int, cpus) -> None:
    """Set the affinity of every thread of process ``pid`` (the main thread first, so threads it starts
    from now on inherit the mask)."""
    cpus = set(cpus)
    os.sched_setaffinity(pid, cpus)
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return
    for tid in tids:
        if tid == pid:
            continue
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass            # a thread that just ended


def affinity_of(pid: int) -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(pid))
    except (AttributeError, OSError):
        return None


# The affinity a thread had before the first of its live Placers pinned it, and how many are live: rounds
# (or sessions) that overlap in one thread must all see, and give back, that affinity, in whatever order
# they close.
_pins = threading.local()


class Placer:
    """Applies one placement to one round's processes (see the module docstring) and records it.

    ``cpus``: the CPUs the round may use (default: this thread's affinity, i.e. what the runner was
    given); ``siblings``: the SMT map (default: read from sysfs).
    """

    def __init__(self, placement: str, cpus=None, siblings=None):
        if placement not in (SPREAD, SHARED, OS):
            raise ValueError(f"unknown placement {placement!r}")
        self.placement = placement
        self.original = _pins.original if getattr(_pins, "depth", 0) else allowed()
        usable = list(cpus) if cpus is not None else (self.original or [])
        self.order = cpu_order(usable, siblings) if usable else []
        self.pinned = placement != OS and bool(self.order) and hasattr(os, "sched_setaffinity")
        self.assigned: dict[int, dict] = {}
        self._next = 1
        self._self_pinned = False

    @property
    def round_cpus(self) -> list[int] | None:
        """The CPUs this round's processes may run on (for steal accounting)."""
        if not self.pinned:
            return self.original
        return [self.order[0]] if self.placement == SHARED else sorted(self.order)

    def pin_self(self) -> None:
        """Pin the calling thread to the driver's CPU; processes and threads it starts inherit it."""
        if not self.pinned:
            return
        if not getattr(_pins, "depth", 0):
            _pins.original = self.original
        _pins.depth = getattr(_pins, "depth", 0) + 1
        self._self_pinned = True
        os.sched_setaffinity(0, {self.order[0]})
        self.assigned[os.getpid()] = {"role": "driver", "cpus": [self.order[0]]}

    def next_cpu(self) -> int | None:
        """The CPU the next peer gets (``place`` takes it for a process; a thread peer pins itself to it,
        ``place_thread``); None when nothing is pinned."""
        if not self.pinned:
            return None
        if self.placement == SPREAD:
            cpu = self.order[self._next % len(self.order)]
            self._next += 1
            return cpu
        return self.order[0]

    def number_from(self, peers_before: int) -> None:
        """The next peer is the ``peers_before + 1``-th of the round (``next_cpu`` counts from there): for
        a program that starts peers again and again, numbering the live ones (the selfcheck's hand loops)."""
        self._next = 1 + peers_before

    def place_thread(self, tid: int, role: str, cpu: int | None) -> None:
        """Record a thread peer (of the driver's own process) that pinned itself to ``cpu``."""
        if cpu is not None:
            self.assigned[tid] = {"role": role, "cpus": [cpu], "thread": True}

    def place(self, pid: int, role: str) -> None:
        """A peer process has started: move it to the next CPU in ``order`` (``spread``) or to the driver's
        (``shared``: it inherited that already, unless a helper that started it was placed before)."""
        if not self.pinned or pid in self.assigned:
            return
        cpu = self.next_cpu()
        try:
            pin_process(pid, {cpu})
        except OSError:
            return      # it has already exited; the round will say why
        self.assigned[pid] = {"role": role, "cpus": [cpu]}

    def restore(self) -> None:
        """Give the calling thread back the affinity it had (a session runs in the caller's process), once
        the last of its live Placers is done."""
        if not self._self_pinned:
            return
        self._self_pinned = False
        _pins.depth -= 1
        if _pins.depth == 0 and self.original:
            try:
                os.sched_setaffinity(0, set(self.original))
            except OSError:
                pass

    def record(self, pids) -> dict:
        """What was asked and what the kernel reports now, for the round's result."""
        n = len(self.assigned)
        return {
            "placement": self.placement,
            "cpu_order": self.order,
            "assigned": {str(pid): a for pid, a in self.assigned.items()},
            "affinity_of": {str(pid): affinity_of(pid) for pid in pids},
            # two of the round's placed processes were given the same CPU
            "shares_cpu": n > 1 and (self.placement == SHARED or n > len(self.order)),
        }
