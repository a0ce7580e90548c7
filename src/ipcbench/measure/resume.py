"""``ipcbench run --resume FILE``: go on with a run that was interrupted (Ctrl-C, SIGTERM, SIGHUP) or
killed (status still "running"), without repeating its finished cases.

What is checked before anything runs (each refusal is one line, exit status 2):

* the file is an ipcbench result whose run did not complete, and no live process is still writing it
  (the run records its ``pid``; a pid that exists but started after the run is another process);
* it was measured here: the same machine (the machine file's id, ``machine.identity``; for files before
  that, the machine id or hostname), the same Python (version, implementation, free-threading) and the
  same ipcbench version, because the rest of its cases would otherwise be measured by something else;
* its settings are complete (the run records every resolved choice: ``mechanisms``, ``patterns``,
  sizes, workers, payload kinds with their own sizes and workers (a file from before them: ``bytes``
  only), start methods, placements, ``spec``, ``adaptive``, timeout, ``fresh_rounds``), the preset's
  round spec is still the one recorded, and every case in the file is a case of the grid those settings
  make. The grid is rebuilt from the recorded settings, never from new flags: ``--resume`` takes no
  measurement flags (``--seed`` and ``-q`` only).

What happens: every *finished* case (stop reason other than "interrupted": target met, max rounds, ...,
and "failed") is kept as it is. A case that was *interrupted* part-way is run again from its first round:
its record keeps samples thinned across rounds, from which its rounds cannot be summarised exactly, and
its rounds were interleaved with those of its block, which no longer runs. Its partial record is not
thrown away: it moves to ``run.resumed[-1].superseded`` (nothing measured is lost), and the case's new
record replaces it in ``cases``. The remaining cases run in a fresh seeded order (``run.resumed[-1].order``)
with their grid positions, so the file ends in grid order as an uninterrupted run would; their rounds
continue the run's ``order`` numbers and its ``start_s`` clock (the wall-clock time between the run's start
and the resume is part of ``start_s``: a gap the reader can see). A run budget is shared out again: the
resumed part gets the run's budget times the share of cases it still has to run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .._version import __version__
from ..errors import UserError
from ..plan.cases import Case

RESUMABLE = ("interrupted", "running")
# what a run records that --resume needs to rebuild its grid and options
SETTINGS = ("preset", "mechanisms", "patterns", "payload_sizes", "workers", "start_methods", "placements",
            "spec", "round_timeout_s", "fresh_rounds", "adaptive")
# settings recorded since payload kinds, and what a file written before them ran: bytes payloads only
DEFAULTS = {"payload_kinds": ["bytes"], "kind_sizes": {}, "kind_workers": {}, "allocator": "fresh"}
ADAPTIVE = ("rounds_min", "rounds_max", "target_ci", "case_budget_s", "run_budget_s", "reach_factor")


@dataclass
class Plan:
    kept: list[tuple[dict, int]] = field(default_factory=list)   # finished case records, grid position
    todo: list[int] = field(default_factory=list)                # grid positions still to run
    superseded: list[dict] = field(default_factory=list)         # partial records of interrupted cases


def settings_of(data: dict, source: str) -> dict:
    """The recorded settings of the run in ``data`` (see ``SETTINGS``; those of ``DEFAULTS`` that a file
    does not record take their default); a file without them cannot be resumed."""
    run = data.get("run")
    missing = [k for k in SETTINGS if not isinstance(run, dict) or k not in run]
    if not missing:
        missing = [f"adaptive.{k}" for k in ADAPTIVE
                   if not isinstance(run["adaptive"], dict) or k not in run["adaptive"]]
    if missing:
        raise UserError(f"{source}: cannot be resumed: its run does not record {', '.join(missing)} (written "
                        f"by an ipcbench before --resume, or not by `ipcbench run`); run it again")
    return {**DEFAULTS, **run}


def check_resumable(data: dict, source: str, *, identity: str, hostname: str, python: dict) -> None:
    """Refuse a complete run, a run still being written, or one of another machine, Python or ipcbench."""
    run = data.get("run") or {}
    status = run.get("status")
    if status not in RESUMABLE:
        raise UserError(f"{source}: its run is {status!r}; only an interrupted run (or one that was killed, "
                        f"still marked \"running\") can be resumed")
    if status == "running" and _still_running(run):
        raise UserError(f"{source}: is still being written by process {run['pid']}; wait for it, or stop it "
                        f"(it then marks the file interrupted) and resume")
    machine = data.get("machine") or {}
    if machine.get("identity"):
        same, theirs, ours = machine["identity"] == identity, machine["identity"], identity
    else:
        same = machine.get("hostname") == hostname
        theirs, ours = machine.get("hostname"), hostname
    if not same:
        raise UserError(f"{source}: was measured on another machine ({theirs!r}; this one is {ours!r}, see "
                        f"`ipcbench machine`); resume it there, or start a new run here")
    theirs_py = data.get("python") or {}
    for key in ("python_version", "implementation", "gil_disabled"):
        if theirs_py.get(key) != python.get(key):
            raise UserError(f"{source}: was measured with {theirs_py.get('implementation')} "
                            f"{theirs_py.get('python_version')} and this is {python.get('implementation')} "
                            f"{python.get('python_version')}{' (free-threaded)' if python.get('gil_disabled') else ''}; "
                            f"resume it with the same Python")
    if data.get("ipcbench_version") != __version__:
        raise UserError(f"{source}: was measured with ipcbench {data.get('ipcbench_version')} and this is "
                        f"{__version__}; resume it with the same version, or start a new run")


def _still_running(run: dict) -> bool:
    """Whether the process that started the run (``run.pid``) still exists: a pid that started after the
    run began is another process."""
    pid = run.get("pid")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        import psutil

        proc = psutil.Process(pid)
        started = datetime.fromisoformat(run["started"]).timestamp()
        return proc.create_time() <= started + 1
    except (ImportError, KeyError, ValueError, TypeError):
        return False
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied: not ours, or gone
        return False


def plan(data: dict, grid: Sequence[Case], source: str) -> Plan:
    """Which of the run's grid ``grid`` is done (kept), which is to run, and which partial records are
    superseded. Refuses a file with a case outside the grid, or a case twice."""
    position = {case.id: i for i, case in enumerate(grid)}
    out = Plan()
    seen: set[int] = set()
    for rec in data.get("cases") or ():
        case = Case.from_dict(rec["case"])
        if case.id not in position:
            raise UserError(f"{source}: has case {case.id}, which its recorded settings do not make (the file "
                            f"was edited, or the mechanisms changed since); it cannot be resumed")
        i = position[case.id]
        if i in seen:
            raise UserError(f"{source}: has case {case.id} twice; it cannot be resumed")
        seen.add(i)
        if rec.get("stop_reason") == "interrupted":
            out.superseded.append(rec)
        else:
            out.kept.append((rec, i))
    done = {i for _, i in out.kept}
    out.todo = [i for i in range(len(grid)) if i not in done]
    return out


def next_order(data: dict) -> int:
    """The first ``order`` number after every round recorded in the file (superseded ones included)."""
    orders = [r.get("order") for rec in data.get("cases") or () for r in rec.get("rounds") or ()]
    orders += [r.get("order") for entry in (data.get("run") or {}).get("resumed", ())
               for rec in entry.get("superseded", ()) for r in rec.get("rounds") or ()]
    return max((o for o in orders if isinstance(o, int)), default=-1) + 1


def seconds_since_start(data: dict, now: datetime | None = None) -> float:
    """Wall-clock seconds from the run's start to ``now``: the ``start_s`` of the resumed part's first
    round (0 when the start is not recorded)."""
    try:
        started = datetime.fromisoformat(data["run"]["started"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    now = now or datetime.now(timezone.utc)
    return max(0.0, (now - started).total_seconds())


def entry(p: Plan, grid_size: int, git_commit: str | None) -> dict:
    """The ``run.resumed`` entry of one resume (``run_cases`` adds the order, run budget and launcher)."""
    return {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "pid": os.getpid(),
            "git_commit": git_commit, "cases_kept": len(p.kept), "cases_to_run": len(p.todo),
            "grid_cases": grid_size, "superseded": p.superseded}
