"""Runs cases: each round of each case in a fresh orchestrator process, with a deadline, full reaping,
and the result file rewritten (atomically) after every case.

Isolation: ``python -m ipcbench.measure.orchestrator`` in a new session (process group). Normal end: it reaps its
own peers. Deadline passed or Ctrl-C: SIGTERM (it reaps and exits), then SIGKILL to the whole group,
then any POSIX semaphore or shared-memory name the killed round left in /dev/shm is unlinked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from ..plan.cases import Case, RoundSpec
from ..plan.metrics import unit
from ..results import summary as stats
from ..results.io import write_json_atomic
from ..results.schema import SCHEMA, SCHEMA_VERSION
from .environment import machine_metadata, python_metadata

# The round process imports the very ipcbench this process runs (a checkout, an install, a tox env),
# without touching PYTHONPATH (which every grandchild would inherit): its sys.path gets this package's
# parent folder in front, then it runs the orchestrator as ``python -m`` would.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
ORCHESTRATOR = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
                "runpy.run_module('ipcbench.measure.orchestrator', run_name='__main__', alter_sys=True)")
SHM_DIR = Path("/dev/shm")
SHM_PREFIXES = ("sem.mp-", "psm_", "mp-")


@dataclass(frozen=True)
class RunOptions:
    spec: RoundSpec
    rounds: int = 3
    round_timeout_s: float = 60.0
    max_stored_samples: int = 2000     # per case, across rounds


def _shm_names() -> set[str]:
    try:
        return {n for n in os.listdir(SHM_DIR) if n.startswith(SHM_PREFIXES)}
    except OSError:
        return set()


def _stop_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM the orchestrator (it reaps its peers), then SIGKILL whatever is left of its group."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def run_round(case: Case, spec: RoundSpec, timeout_s: float, workdir: str) -> dict:
    """One round in a fresh orchestrator process: ``{"ok": True, "result": {...}}`` or ``{"ok": False, "error"}``."""
    job, out, err = (os.path.join(workdir, n) for n in ("job.json", "out.json", "stderr.txt"))
    for p in (out,):
        if os.path.exists(p):
            os.unlink(p)
    with open(job, "w") as f:
        json.dump({"case": case.to_dict(), "spec": spec.to_dict()}, f)
    shm_before = _shm_names()
    with open(err, "w") as errf:
        proc = subprocess.Popen([sys.executable, "-c", ORCHESTRATOR, PACKAGE_PARENT, job, out],
                                stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                                start_new_session=True)
        forced = False
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            forced = True
            where = _where_stuck(proc, err)
            _stop_group(proc)
            _clean_shm(shm_before)
            return {"ok": False, "error": f"timed out after {timeout_s:g} s{where} (a peer hung or "
                                          f"deadlocked); all its processes were killed"}
        except BaseException:          # Ctrl-C while waiting: take the round down with us
            forced = True
            _stop_group(proc)
            _clean_shm(shm_before)
            raise
        finally:
            if not forced and _group_alive(proc.pid):
                _stop_group(proc, grace=0)
    try:
        with open(out) as f:
            got = json.load(f)
        if not got.get("ok"):
            last = _last_exception(err)
            if last and last not in got["error"]:
                got["error"] = f"{got['error']} (last error in the round: {last})"
        return got
    except (OSError, json.JSONDecodeError):
        tail = _tail(err)
        return {"ok": False, "error": f"orchestrator exited with status {proc.returncode} and no result"
                                      + (f": {tail}" if tail else "")}


def _where_stuck(proc: subprocess.Popen, err_path: str) -> str:
    """Ask the orchestrator for its stacks (faulthandler on SIGUSR1); return ' in FUNC (FILE:LINE)'."""
    try:
        proc.send_signal(signal.SIGUSR1)
    except ProcessLookupError:
        return ""
    time.sleep(0.3)
    try:
        text = Path(err_path).read_text(errors="replace")
    except OSError:
        return ""
    # faulthandler prints the current (main) thread as "Current thread ..." / "Thread ... (most recent
    # call first)"; the first frame line after the main thread's header is where it is blocked.
    blocks = re.split(r"\n(?=(?:Current thread|Thread) 0x)", text)
    main = next((b for b in blocks if "orchestrator.py" in b and "<module>" in b), "")
    m = re.search(r'File "([^"]+)", line (\d+) in (\S+)', main)
    return f" in {m.group(3)} ({Path(m.group(1)).name}:{m.group(2)})" if m else ""


def _clean_shm(before: set[str]) -> None:
    for name in _shm_names() - before:
        try:
            os.unlink(SHM_DIR / name)
        except OSError:
            pass


def _last_exception(path: str) -> str:
    """The last 'SomeError: message' line a process of the round printed (peers share the stderr file)."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*", line):
            return line.strip()[:300]
    return ""


def _tail(path: str) -> str:
    try:
        lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def run_case(case: Case, opts: RunOptions) -> dict:
    """All rounds of one case -> the case record of the result file. Stops at the first failed round."""
    t0 = time.perf_counter()
    rounds: list[dict] = []
    full: list[dict] = []
    error = None
    with tempfile.TemporaryDirectory(prefix="ipcbench-") as workdir:
        for _ in range(opts.rounds):
            got = run_round(case, opts.spec, opts.round_timeout_s, workdir)
            if not got.get("ok"):
                error = got.get("error") or "unknown error"
                break
            full.append(got["result"])
    # Stored samples: the same fraction of every round (so pooled stored samples weigh rounds as the
    # measurement did), at most max_stored_samples in all.
    total = sum(len(r["samples_ns"]) for r in full)
    fraction = min(1.0, opts.max_stored_samples / total) if total else 1.0
    for res in full:
        n = len(res["samples_ns"])
        rounds.append({
            "ok": True, "error": None,
            "samples_ns": stats.bounded(res["samples_ns"], max(1, int(n * fraction))),
            "samples_total": n,
            **{k: res.get(k) for k in ("ops", "window_ns", "bytes_per_op", "cpu_s", "placement")},
        })
    if error:
        rounds.append({"ok": False, "error": error})
    record = {"case": case.to_dict(), "status": "failed" if error else "ok", "error": error,
              "metrics": {}, "noise": None, "rounds": rounds, "wall_s": round(time.perf_counter() - t0, 3)}
    if not error:
        metrics, noise = stats.summarize(full)
        record["metrics"] = {k: {"value": v, "unit": unit(k)} for k, v in metrics.items()}
        record["noise"] = noise
    return record


class ResultWriter:
    """Keeps the result set in memory and rewrites the file atomically after every case."""

    def __init__(self, path: str | os.PathLike, machine_id: str | None, run_info: dict):
        self.path = Path(path)
        machine = machine_metadata(machine_id)
        self.data = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "ipcbench_version": __version__,
            "machine_id": machine["machine_id"],
            "machine": machine,
            "python": python_metadata(),
            "run": {"started": _now(), "finished": None, "status": "running", **run_info},
            "cases": [],
        }
        self._write()

    def add(self, record: dict) -> None:
        self.data["cases"].append(record)
        self._write()

    def finish(self, status: str) -> None:
        self.data["run"]["finished"] = _now()
        self.data["run"]["status"] = status
        try:
            self.data["run"]["load_average_end"] = list(os.getloadavg())
        except (AttributeError, OSError):
            pass
        self._write()

    def _write(self) -> None:
        write_json_atomic(self.path, self.data)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def estimate_case_s(case: Case, opts: RunOptions) -> float:
    """Rough seconds for a case, used only to weight the progress bar so its ETA is sensible early."""
    start_cost = {"fork": 0.01, "forkserver": 0.05, "spawn": 0.12}.get(case.start_method, 0.1)
    procs = case.workers + (1 if case.mechanism.startswith("manager") else 0)
    transfer = case.payload_bytes / 2e9 * (opts.spec.warmup + opts.spec.min_messages) * 2
    per_round = 0.12 + start_cost * procs + opts.spec.budget_s + opts.spec.warmup_s + transfer
    if case.pattern == "startup":
        per_round += start_cost * opts.spec.min_messages
    return per_round * opts.rounds


def run_cases(cases: list[Case], opts: RunOptions, writer: ResultWriter, progress) -> dict:
    """Run every case in order; on Ctrl-C the file keeps every finished case and says "interrupted"."""
    weights = [estimate_case_s(c, opts) for c in cases]
    progress.start(cases, weights)
    try:
        for case, weight in zip(cases, weights):
            progress.case_started(case)
            record = run_case(case, opts)
            writer.add(record)
            progress.case_done(case, record, weight)
    except KeyboardInterrupt:
        writer.finish("interrupted")
        progress.stop()
        raise
    writer.finish("complete")
    progress.stop()
    return writer.data
