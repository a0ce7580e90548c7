"""Runs cases: each round of each case in a fresh orchestrator process, with a deadline, full reaping,
the rounds of all cases interleaved in a seeded random order, and the result file rewritten
(atomically) after every finished case.

Order (``run_order``, rule ``shuffled-blocks-v1``): so that a drift of the machine (another tenant, heat,
a noisy neighbour on a VM) lines up with no mechanism and the rounds of one case meet different moments
of the machine's life, ``random.Random(seed)`` shuffles the cases into blocks of about ``block_cases``
(8) cases; a block runs as ``rounds`` passes over its cases, every pass in a fresh random order, and no
case runs two rounds back to back. Cases finish block by block, so a run writes finished cases all along
and an interruption leaves only the current block's cases (fewer than 2 x block_cases) short. The seed (``--seed``, else a fresh
one) and the rule are recorded in ``run.order``; every round record has its ``order`` position and its
``start_s`` offset, and the load when it started (``load1``, ``procs_running``) next to the steal time
its orchestrator measured (``steal_s`` over ``steal_span_s`` on ``steal_cpus`` CPUs, see orchestrator.py).

Isolation: ``python -m ipcbench.measure.orchestrator`` in a new session (process group). Normal end: it reaps its
own peers. Deadline passed or Ctrl-C: SIGTERM (it reaps and exits), then SIGKILL to the whole group,
then any POSIX semaphore or shared-memory name the killed round left in /dev/shm is unlinked.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import re
import secrets
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
from .harness import load_now

# The round process imports the very ipcbench this process runs (a checkout, an install, a tox env),
# without touching PYTHONPATH (which every grandchild would inherit): its sys.path gets this package's
# parent folder in front, then it runs the orchestrator as ``python -m`` would.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
ORCHESTRATOR = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
                "runpy.run_module('ipcbench.measure.orchestrator', run_name='__main__', alter_sys=True)")
SHM_DIR = Path("/dev/shm")
SHM_PREFIXES = ("sem.mp-", "psm_", "mp-")
ORDER_RULE = "shuffled-blocks-v1"
BLOCK_CASES = 8


@dataclass(frozen=True)
class RunOptions:
    spec: RoundSpec
    rounds: int = 3
    round_timeout_s: float = 60.0
    max_stored_samples: int = 2000     # per case, across rounds
    seed: int | None = None            # of the run order (run_cases); None: a fresh one
    block_cases: int = BLOCK_CASES     # cases per block of the run order


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


class _CaseRun:
    """The rounds one case has had so far in a run, and its record."""

    def __init__(self, case: Case, planned: int):
        self.case, self.planned = case, planned
        self.results: list[dict] = []      # what the orchestrator returned for each successful round
        self.meta: list[dict] = []         # the runner's notes on each of them (order, start, load)
        self.failure: dict | None = None   # the failed round, which ends the case
        self.wall_s = 0.0

    @property
    def finished(self) -> bool:
        return self.failure is not None or len(self.results) >= self.planned

    def run_round(self, k: int, opts: RunOptions, workdir: str, t0: float) -> None:
        """Round number ``len(self.results)`` of this case, at position ``k`` of the run order."""
        meta = {"order": k, "start_s": round(time.monotonic() - t0, 3), **load_now()}
        t = time.monotonic()
        got = run_round(self.case, opts.spec, opts.round_timeout_s, workdir)
        self.wall_s += time.monotonic() - t
        if got.get("ok"):
            self.results.append(got["result"])
            self.meta.append(meta)
        else:
            self.failure = {"ok": False, "error": got.get("error") or "unknown error", **meta}

    def record(self, max_stored_samples: int) -> dict:
        """The case record of the result file, from the rounds run so far (all of them, normally)."""
        full = self.results
        # Stored samples: the same fraction of every round (so pooled stored samples weigh rounds as the
        # measurement did), at most max_stored_samples in all.
        total = sum(len(r["samples_ns"]) for r in full)
        fraction = min(1.0, max_stored_samples / total) if total else 1.0
        rounds = []
        for res, meta in zip(full, self.meta):
            n = len(res["samples_ns"])
            rounds.append({
                "ok": True, "error": None, "order": meta["order"], "start_s": meta["start_s"],
                "samples_ns": stats.bounded(res["samples_ns"], max(1, int(n * fraction))),
                "samples_total": n,
                **{k: res.get(k) for k in ROUND_RESULT_KEYS},
                "load1": meta["load1"], "procs_running": meta["procs_running"],
            })
        error = self.failure["error"] if self.failure else None
        if self.failure:
            rounds.append(self.failure)
        record = {"case": self.case.to_dict(), "status": "failed" if error else "ok", "error": error,
                  "metrics": {}, "noise": None, "rounds": rounds, "rounds_planned": self.planned,
                  "wall_s": round(self.wall_s, 3)}
        if not error and full:
            # summarize sees each round whole, with the runner's notes (load at its start, its order)
            metrics, noise = stats.summarize([{**res, **meta} for res, meta in zip(full, self.meta)])
            record["metrics"] = {k: {"value": v, "unit": unit(k)} for k, v in metrics.items()}
            record["noise"] = noise
        return record


# What the runner copies from a round's result into its round record (samples are thinned apart).
ROUND_RESULT_KEYS = ("ops", "window_ns", "bytes_per_op", "cpu_s", "placement", "steal_s", "steal_span_s",
                     "steal_cpus")


def run_case(case: Case, opts: RunOptions) -> dict:
    """All rounds of one case, back to back -> the case record of the result file. Stops at the first
    failed round. (``run_cases`` interleaves the rounds of many cases instead.)"""
    state = _CaseRun(case, opts.rounds)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ipcbench-") as workdir:
        for k in range(opts.rounds):
            state.run_round(k, opts, workdir, t0)
            if state.failure:
                break
    return state.record(opts.max_stored_samples)


def new_seed() -> int:
    """A fresh seed for the run order (recorded in the result file, so the order can be rebuilt)."""
    return secrets.randbelow(2**32)


def run_order(n_cases: int, rounds: int, seed: int, block_cases: int = BLOCK_CASES) -> list[tuple[int, int]]:
    """The order of a run: ``(case index, round index)`` pairs, every case's rounds in round order.

    Rule ``shuffled-blocks-v1``, from ``random.Random(seed)``: shuffle the cases; cut them into
    ``max(1, n_cases // block_cases)`` consecutive blocks of near-equal size (each has ``block_cases`` to
    ``2 * block_cases - 1`` cases, or all of them in a smaller run); run the blocks one after another, each
    as ``rounds`` passes over its cases, every pass in a fresh random order. Where a pass would start with
    the case that ended the previous pass, that case swaps places with a random other case of the pass,
    so in a block of two or more cases no case ever runs two rounds back to back.
    """
    if n_cases < 0 or rounds < 0 or block_cases < 1:
        raise ValueError("n_cases and rounds must be >= 0, block_cases >= 1")
    rng = random.Random(seed)
    cases = list(range(n_cases))
    rng.shuffle(cases)
    n_blocks = max(1, n_cases // block_cases)
    order: list[tuple[int, int]] = []
    for b in range(n_blocks):
        block = cases[b * n_cases // n_blocks:(b + 1) * n_cases // n_blocks]
        last = None
        for r in range(rounds):
            rng.shuffle(block)
            if len(block) > 1 and block[0] == last:
                j = rng.randrange(1, len(block))
                block[0], block[j] = block[j], block[0]
            order.extend((c, r) for c in block)
            last = block[-1] if block else None
    return order


def order_info(seed: int, block_cases: int = BLOCK_CASES) -> dict:
    """What the result file's ``run.order`` says: enough to rebuild the order with ``run_order``."""
    return {"rule": ORDER_RULE, "seed": seed, "block_cases": block_cases,
            "about": "cases shuffled into blocks; each block's cases' rounds run in passes, each pass in "
                     "a fresh random order (ipcbench.measure.runner.run_order(n_cases, rounds, seed, "
                     "block_cases), case indices in grid order)"}


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
        self._keys: list[int] = []      # grid position of each case record, sorted
        self._write()

    def add(self, record: dict, position: int | None = None) -> None:
        """Add a case record; with ``position`` (its index in the grid) cases stay in grid order
        whatever order they finish in."""
        self.add_many([(record, position)])

    def add_many(self, items) -> None:
        for record, position in items:
            key = len(self._keys) + 2**62 if position is None else position
            i = bisect.bisect_right(self._keys, key)
            self._keys.insert(i, key)
            self.data["cases"].insert(i, record)
        self._write()

    def has(self, position: int) -> bool:
        return position in self._keys

    def update_run(self, **info) -> None:
        self.data["run"].update(info)
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
    """Run every round of every case in the seeded run order (``run_order``), each in a fresh process.

    The order and its seed go to the file's ``run.order``; each round record gets its ``order`` (position
    in the run order) and ``start_s`` (seconds since the run's first round started). A case's record is
    written, in grid position, as soon as its last round has run, or its first failed round (a failed
    case gets no more rounds). On Ctrl-C the file keeps every finished case, and every case with some
    rounds done, with those rounds (``len(rounds) < rounds_planned`` shows it is short; its metrics come
    from the rounds it has); the round in flight is discarded, and the run says "interrupted".
    """
    seed = new_seed() if opts.seed is None else opts.seed
    order = run_order(len(cases), opts.rounds, seed, opts.block_cases)
    writer.update_run(order=order_info(seed, opts.block_cases))
    states = [_CaseRun(c, opts.rounds) for c in cases]
    weights = [estimate_case_s(c, opts) for c in cases]
    progress.start(cases, weights, opts.rounds)
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="ipcbench-") as workdir:
            for k, (i, r) in enumerate(order):
                state = states[i]
                if state.failure:
                    continue
                progress.round_started(state.case, r)
                state.run_round(k, opts, workdir, t0)
                skipped = opts.rounds - r - 1 if state.failure else 0    # rounds it will not get now
                progress.round_done(state.case, weights[i] / opts.rounds * (1 + skipped), 1 + skipped)
                if state.finished:
                    record = state.record(opts.max_stored_samples)
                    writer.add(record, position=i)
                    progress.case_done(state.case, record)
    except KeyboardInterrupt:
        writer.add_many([(st.record(opts.max_stored_samples), i) for i, st in enumerate(states)
                         if st.results and not writer.has(i)])
        writer.finish("interrupted")
        progress.stop()
        raise
    writer.finish("complete")
    progress.stop()
    return writer.data
