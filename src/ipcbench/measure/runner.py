"""Runs cases: every round of every case in a process of its own (forked from a warm launcher), with a
deadline and full reaping; the rounds of all cases interleaved in a seeded random order; each case given
rounds until its round-level CI is tight enough (or its rounds or time run out); the result file
rewritten (atomically) after every finished case.

**Cheap rounds: the warm launcher** (``launcher.py``). A round used to be a fresh interpreter that
imported ipcbench, multiprocessing and psutil before it measured anything: ~0.25 s of a ~0.27 s round of a
tiny case on the 2-core reference VM. Now one helper process per run (the *launcher*) imports all that
once, and forks a child per round; the child becomes a session of its own (so its pid is the process
group the runner kills), runs ``orchestrator.main`` and exits. The runner keeps every duty it had: the
deadline, SIGUSR1 for faulthandler stacks (``_where_stuck``), SIGTERM then SIGKILL to the whole group,
/dev/shm clean-up; the launcher reaps its children and reports each exit status on its stdout, since the
runner cannot wait for a process that is not its child. The launcher is closed at the end of the run and
on every way out (a failure, Ctrl-C, SIGTERM, which ``ipcbench run`` turns into ``Terminated``); it also
dies with the runner (PR_SET_PDEATHSIG) and exits when its stdin closes. ``--fresh-rounds`` (or a
platform without ``fork``) keeps the old way: a fresh ``python`` per round. ``run.launcher`` records which.

Fidelity of forked rounds. A forked round starts with the launcher's memory: the same imported modules a
fresh orchestrator would import (``orchestrator.preload`` imports every mechanism module, so the state is
*the same for every case*, whatever it measures; a run with ``numpy`` payloads has numpy imported in the
launcher too, for all its rounds, where a fresh interpreter imports it in the rounds that use it), shared
copy-on-write, and nothing else: the launcher allocates nothing beyond its imports, starts no thread
(numpy's OpenBLAS pool, in a run with numpy payloads, is shut down by OpenBLAS at every fork), no resource
tracker, no forkserver and no Manager (so each round starts its own, as before), and collects garbage once
before it serves, so every round starts from one identical, collected heap. What differs from a fresh
interpreter: pages are shared copy-on-write until first written (the first touches cost a page fault;
warm-up runs before the clock, and a fork-started peer inherits exactly what it would have inherited
before), ``random`` is reseeded in the child by Python's at-fork hook, multiprocessing's authentication
key is the launcher's (it was the runner's fresh key per round before; it is never part of a measurement).
The peers are started by the round with the case's start method exactly as before (``__main__`` is the
orchestrator module in the child, so spawn and forkserver peers prepare the same main module as under
``python -m``). Between rounds nothing carries over: each round is a new process, group and session, with
new peers.

**Order** (``iter_order``, rule ``shuffled-blocks-adaptive-v1``): so that a drift of the machine
(another tenant, heat, a noisy neighbour on a VM) lines up with no mechanism and the rounds of one case
meet different moments of the machine's life, ``random.Random(seed)`` shuffles the cases into blocks of
about ``block_cases`` (8) cases; a block runs in passes over its cases, every pass in a fresh random
order. The first ``rounds`` (minimum) passes take every case of the block; later passes only the cases
the stopping rule keeps going (``decide``), until none is left; a case left alone in its block joins the
next block's passes, so no case runs two rounds back to back unless it is the last one running. Cases
finish block by block, so a run writes finished cases all along and an interruption leaves only the
current blocks' cases short. The seed (``--seed``, else a fresh one) and the rule are recorded in
``run.order``; every round record has its ``order`` position and its ``start_s`` offset, and the load
when it started (``load1``, ``procs_running``) next to the steal time its orchestrator measured
(``steal_s`` over ``steal_span_s`` on ``steal_cpus`` CPUs, see orchestrator.py). The order is rebuilt
from the seed and the number of rounds each case got (``run_order(..., more=lambda c, done: done <
rounds_of[c])``).

**Stopping rule** (``decide``, a pure function of the case's round values so far, its elapsed round time
and the settings, ``StopRule``): below ``min_rounds`` a case goes on; then it stops with "target met" as
soon as the round-level 95 % CI of its p50 latency *and* of its throughput (``round_stats.round_estimate``
on the per-round median of ``samples_ns`` and on ``ops / window``: the values ``summary`` reports) are
within +-``target_ci``; else with "max rounds" at ``max_rounds``, or "time budget" when one more round
(at its mean length so far) would take the case's round time past ``budget_s``, or "out of reach" when its
rounds vary so much that the target would take more than ``reach_factor`` (presets: 2) x ``max_rounds`` rounds
(``rounds_needed``: a case whose rounds vary by 20 % would need ~60; its time goes to cases that can get
there, and its CI says how wide it is), or "run budget" when
that round would be longer than the case's share of what is left of the run's budget (``run_budget_s``
less the time the run has taken, shared equally by the cases still running: ``run_share``), so a run
keeps to its time whatever the machine's noise, and a quiet machine spends its time on the cases that
need it. Where the run budget cannot pay even every case's minimum rounds (a slow phase of the machine),
and the rule has a ``floor_rounds``, the minimum itself gives way: ``affordable_min`` finds the most rounds
(between the floor and the minimum) that every unfinished case can still get within the budget at its
mean round length, and a case that has that many stops with "run budget", below ``rounds_min`` (its
record shows how many it got); without a floor the minimum rounds always run. The decision is taken
right after each round of the case, so a finished case is written at once. A failed round ends its case
("failed"); Ctrl-C ends the unfinished ones ("interrupted"). Each case record says ``rounds_min``,
``rounds_max``, ``target_ci``, ``ci_reached`` (the larger relative half-width of the two CIs; null below
two rounds), ``target_met`` and ``stop_reason``; ``rounds_planned`` (the minimum) stays for older readers.
Stopping as soon as a CI looks tight favours rounds that happened to agree (optional stopping): the
minimum number of rounds is the guard, and ``noise`` keeps every round value for the reader to judge.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from ..errors import UserError
from ..plan.cases import Case, RoundSpec
from ..plan.metrics import unit
from ..results import summary as stats
from ..results.io import write_json_atomic
from ..results.round_stats import round_estimate
from ..results.schema import SCHEMA, SCHEMA_VERSION
from . import allocator as allocator_mod
from .environment import machine_metadata, python_metadata
from .harness import load_now
from .launcher import FRESH, WARM, FreshRound, Launcher, LauncherDied, warm_available
from .payloads import modules_for
from .shm_cleanup import clean_shm, shm_names

ORDER_RULE = "shuffled-blocks-adaptive-v1"
BLOCK_CASES = 8
TARGET_CI = stats.TARGET_CI
STOP_REASONS = ("target met", "max rounds", "out of reach", "time budget", "run budget", "failed", "interrupted")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, turned into an exception (``ipcbench run`` does, with ``sigterm_raises``) so that
    the run ends the way Ctrl-C ends it: rounds killed, launcher closed, the file marked "interrupted".
    ``signum`` says which (the exit status is 128 + signum, as a shell reports a process killed by it)."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__()
        self.signum = int(signum)


TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def sigterm_raises():
    """Within the block, SIGTERM and SIGHUP (a closed terminal, ``systemctl stop``, a cancelled CI job)
    raise ``Terminated`` in the main thread (outside it: no change)."""
    def on_term(signum, frame):
        raise Terminated(signum)

    old = {}
    try:
        for sig in TERMINATING_SIGNALS:
            old[sig] = signal.signal(sig, on_term)
    except ValueError:          # not the main thread
        for sig, handler in old.items():
            signal.signal(sig, handler)
        yield
        return
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class RunOptions:
    spec: RoundSpec
    rounds: int = 3                    # minimum rounds per case (every round, when max_rounds is None)
    round_timeout_s: float = 60.0
    max_stored_samples: int = 2000     # per case, across rounds
    seed: int | None = None            # of the run order (run_cases); None: a fresh one
    block_cases: int = BLOCK_CASES     # cases per block of the run order
    max_rounds: int | None = None      # adaptive: more rounds, up to this many, until the CI is tight
    target_ci: float = TARGET_CI       # +- relative half-width of the round-level 95 % CIs to reach
    case_budget_s: float | None = None  # seconds of rounds per case beyond which no round is added
    run_budget_s: float | None = None   # seconds of the whole run's rounds, shared by the unfinished cases
    reach_factor: float | None = None   # stop a case whose target needs more than this x max_rounds rounds
    floor_rounds: int | None = None     # with run_budget_s: the fewest rounds a case gets when the budget
    #                                     cannot pay every case's minimum (None: the minimum always runs)
    fresh_rounds: bool = False         # every round in a fresh interpreter instead of the warm launcher
    allocator: str = allocator_mod.DEFAULT   # the malloc state round processes start in (allocator.py)

    @property
    def env(self) -> dict:
        """The environment of the round processes (the allocator state's)."""
        return allocator_mod.environment(self.allocator)

    @property
    def min_rounds(self) -> int:
        return self.rounds

    @property
    def rounds_max(self) -> int:
        return max(self.rounds, self.max_rounds or self.rounds)

    def stop_rule(self) -> StopRule:
        return StopRule(self.target_ci, self.rounds, self.rounds_max, self.case_budget_s, self.reach_factor,
                        self.floor_rounds)


# -- the stopping rule: a pure function ----------------------------------------------------------------
@dataclass(frozen=True)
class StopRule:
    target_ci: float = TARGET_CI
    min_rounds: int = 3
    max_rounds: int = 3
    budget_s: float | None = None      # seconds of the case's own rounds; None: no limit
    reach_factor: float | None = None  # "out of reach" beyond this many times max_rounds rounds; None: never
    floor_rounds: int | None = None    # the fewest rounds when the run budget gives out (see affordable_min)


@dataclass(frozen=True)
class Decision:
    more: bool                  # give the case another round
    reason: str | None          # why it stops (one of STOP_REASONS); None while it goes on
    ci: float | None            # the CI reached: the larger relative half-width; None below 2 rounds


def round_ci(p50s: Sequence[float], throughputs: Sequence[float]) -> float | None:
    """The larger relative half-width of the round-level 95 % CIs of p50 latency and throughput (each
    where the rounds have values), as ``summary`` computes them; None where a CI is not defined yet."""
    widths = []
    for values in (p50s, throughputs):
        if len(values):
            est = round_estimate(values)
            widths.append(est.rel_half_width if est is not None else math.inf)
    if not widths or not all(math.isfinite(w) for w in widths):
        return None
    return max(widths)


def decide(rounds: int, p50s: Sequence[float], throughputs: Sequence[float], elapsed_s: float,
           rule: StopRule, run_share_s: float | None = None, min_now: int | None = None) -> Decision:
    """After ``rounds`` successful rounds of a case (``p50s``: their median latencies, ``throughputs``:
    their ops per second; either may be empty for a pattern without it) that took ``elapsed_s`` seconds in
    all: another round, or stop and why. ``run_share_s``: this case's share of what is left of the run's
    budget (``run_share``), None without one; ``min_now``: the rounds every unfinished case can still get
    within that budget (``affordable_min``), None where the minimum always runs. See the module docstring."""
    ci = round_ci(p50s, throughputs)
    if rounds < rule.min_rounds:
        if min_now is not None and rule.floor_rounds is not None and \
                rounds >= max(min_now, rule.floor_rounds, 1):
            return Decision(False, "run budget", ci)
        return Decision(True, None, ci)
    if ci is not None and ci <= rule.target_ci:
        return Decision(False, "target met", ci)
    if rounds >= rule.max_rounds:
        return Decision(False, "max rounds", ci)
    if rule.reach_factor is not None and \
            rounds_needed(p50s, throughputs, rule.target_ci) > rule.reach_factor * rule.max_rounds:
        return Decision(False, "out of reach", ci)
    next_s = elapsed_s / rounds if rounds else 0.0
    if rule.budget_s is not None and rounds and elapsed_s + next_s > rule.budget_s:
        return Decision(False, "time budget", ci)
    if run_share_s is not None and next_s > run_share_s:
        return Decision(False, "run budget", ci)
    return Decision(True, None, ci)


def rounds_needed(p50s: Sequence[float], throughputs: Sequence[float], target_ci: float) -> float:
    """Rounds the noisier of the two metrics would need for a 95 % CI within +-``target_ci``, at the spread
    its rounds show so far: (1.96 sd / target)^2, sd of the logs (``summary.round_cv``; 0 below two
    rounds)."""
    sds = [sd for sd in (stats.round_cv(p50s), stats.round_cv(throughputs)) if sd is not None]
    return max(((1.96 * sd / target_ci) ** 2 for sd in sds), default=0.0)


def affordable_min(left_s: float, owed: Sequence[tuple[int, float]], min_rounds: int, floor_rounds: int) -> int:
    """The most rounds ``m`` (from ``floor_rounds`` up to ``min_rounds``) that every unfinished case can
    still get in ``left_s`` seconds: the largest ``m`` with sum(max(0, m - done) * round_s) <= ``left_s``
    over ``owed`` = (rounds done, mean seconds of one of its rounds) of each unfinished case;
    ``floor_rounds`` where not even that fits (the floor always runs)."""
    for m in range(min_rounds, floor_rounds, -1):
        if sum(max(0, m - done) * round_s for done, round_s in owed) <= left_s:
            return m
    return floor_rounds


def run_share(run_budget_s: float | None, run_elapsed_s: float, unfinished: int) -> float | None:
    """Seconds of rounds one unfinished case may still take so that the run keeps to ``run_budget_s``:
    what is left of it, shared equally among the ``unfinished`` cases (None without a run budget). Every
    case still gets its minimum rounds; only the rounds beyond are held to this."""
    if run_budget_s is None:
        return None
    return max(0.0, run_budget_s - run_elapsed_s) / max(1, unfinished)


# -- one round -----------------------------------------------------------------------------------------
def _stop_group(proc, grace: float = 3.0) -> bool:
    """SIGTERM the round process (it reaps its peers), then SIGKILL whatever is left of its group, and
    collect its exit status. False when the status never came (a launcher that stopped answering)."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
    except (subprocess.TimeoutExpired, LauncherDied):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(10)
        return True
    except (subprocess.TimeoutExpired, LauncherDied):
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


@contextmanager
def open_launcher(fresh: bool = False, cases: Sequence[Case] = (), env: dict | None = None
                  ) -> Iterator[Launcher | None]:
    """The warm launcher for a run of ``cases`` (None: fresh interpreters, asked for, where fork is
    missing, or where the launcher does not start, whose rounds then fail with the reason); it imports
    what their payload kinds need (``payloads.modules_for``) and is closed however the block ends."""
    if fresh or not warm_available():
        yield None
        return
    launcher = Launcher(modules_for(c.payload_kind for c in cases), env=env)
    try:
        try:
            launcher.start()
        except (LauncherDied, OSError, subprocess.TimeoutExpired):
            launcher.close()
            launcher = None
        yield launcher
    finally:
        if launcher is not None:
            launcher.close()


def launcher_kind(launcher: Launcher | None) -> str:
    return WARM if launcher is not None else FRESH


def run_round(case: Case, spec: RoundSpec, timeout_s: float, workdir: str,
              launcher: Launcher | None = None, env: dict | None = None) -> dict:
    """One round in a process of its own, forked by ``launcher`` (None: a fresh interpreter):
    ``{"ok": True, "result": {...}}`` or ``{"ok": False, "error"}``."""
    job, out, err = (os.path.join(workdir, n) for n in ("job.json", "out.json", "stderr.txt"))
    if os.path.exists(out):
        os.unlink(out)
    with open(job, "w") as f:
        json.dump({"case": case.to_dict(), "spec": spec.to_dict()}, f)
    shm_before = shm_names()
    proc = errf = None
    forced = False
    try:
        if launcher is None:
            errf = open(err, "w")
            proc = FreshRound(job, out, errf, env)
        else:
            proc = launcher.start_round(job, out, err)
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        forced = True
        where = _where_stuck(proc, err)
        if not _stop_group(proc) and launcher is not None:
            launcher.dead_round()
        clean_shm(shm_before)
        return {"ok": False, "error": f"timed out after {timeout_s:g} s{where} (a peer hung or "
                                      f"deadlocked); all its processes were killed"}
    except LauncherDied as exc:
        forced = True
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        launcher.dead_round()
        clean_shm(shm_before)
        return {"ok": False, "error": f"{exc} during the round; all its processes were killed"}
    except BaseException:          # Ctrl-C while waiting: take the round down with us
        forced = True
        if proc is not None:
            _stop_group(proc)
        clean_shm(shm_before)
        raise
    finally:
        if errf is not None:
            errf.close()
        if not forced and _group_alive(proc.pid):
            _stop_group(proc, grace=0)
    try:
        with open(out) as f:
            got = json.load(f)
        if not got.get("ok"):
            # A round that ended on a failure may not have unlinked its named semaphores: the orchestrator
            # SIGKILLs everything below it, its resource tracker included, and leaves with os._exit.
            clean_shm(shm_before)
            last = _last_exception(err)
            if last and last not in got["error"]:
                got["error"] = f"{got['error']} (last error in the round: {last})"
        return got
    except (OSError, json.JSONDecodeError):
        clean_shm(shm_before)
        tail = _tail(err)
        return {"ok": False, "error": f"orchestrator exited with status {proc.returncode} and no result"
                                      + (f": {tail}" if tail else "")}


# faulthandler's frame line of the round's main thread in orchestrator.main (forked rounds) or in the
# module itself (fresh interpreters)
_MAIN_FRAME = re.compile(r'orchestrator\.py", line \d+ in (main|<module>)')


def _where_stuck(proc, err_path: str) -> str:
    """Ask the orchestrator for its stacks (faulthandler on SIGUSR1); return ' in FUNC (FILE:LINE)'."""
    proc.send_signal(signal.SIGUSR1)
    time.sleep(0.3)
    try:
        text = Path(err_path).read_text(errors="replace")
    except OSError:
        return ""
    # faulthandler prints the current (main) thread as "Current thread ..." / "Thread ... (most recent
    # call first)"; the first frame line after the main thread's header is where it is blocked.
    blocks = re.split(r"\n(?=(?:Current thread|Thread) 0x)", text)
    main = next((b for b in blocks if _MAIN_FRAME.search(b)), "")
    m = re.search(r'File "([^"]+)", line (\d+) in (\S+)', main)
    return f" in {m.group(3)} ({Path(m.group(1)).name}:{m.group(2)})" if m else ""


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


# -- one case ------------------------------------------------------------------------------------------
class _CaseRun:
    """The rounds one case has had so far in a run, whether it goes on, and its record."""

    def __init__(self, case: Case, rule: StopRule):
        self.case, self.rule = case, rule
        self.results: list[dict] = []      # what the orchestrator returned for each successful round
        self.meta: list[dict] = []         # the runner's notes on each of them (order, start, load)
        self.p50s: list[float] = []        # per-round values the stopping rule judges
        self.throughputs: list[float] = []
        self.failure: dict | None = None   # the failed round, which ends the case
        self.wall_s = 0.0
        self.stop_reason: str | None = None
        self.ci: float | None = None

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None

    @property
    def attempts(self) -> int:
        """Rounds run, the failed one included (what the run order counted)."""
        return len(self.results) + (1 if self.failure else 0)

    def run_round(self, k: int, opts: RunOptions, workdir: str, t0: float, launcher: Launcher | None,
                  share: Callable[[], tuple[float | None, int | None]] = lambda: (None, None)) -> None:
        """Round number ``self.attempts`` of this case, at position ``k`` of the run order; then decide
        (``share()``: the case's share of the run budget left, ``run_share``, and the rounds every case
        can still get, ``affordable_min``)."""
        meta = {"order": k, "start_s": round(time.monotonic() - t0, 3), **load_now()}
        t = time.monotonic()
        got = run_round(self.case, opts.spec, opts.round_timeout_s, workdir, launcher=launcher, env=opts.env)
        self.wall_s += time.monotonic() - t
        if got.get("ok"):
            self.results.append(got["result"])
            self.meta.append(meta)
            p50, tput = stats.round_headline(got["result"])
            if p50 is not None:
                self.p50s.append(p50)
            if tput is not None:
                self.throughputs.append(tput)
        else:
            self.failure = {"ok": False, "error": got.get("error") or "unknown error", **meta}
        self.decide(*share())

    def decide(self, run_share_s: float | None = None, min_now: int | None = None) -> None:
        if self.failure:
            self.stop_reason = "failed"
            return
        d = decide(len(self.results), self.p50s, self.throughputs, self.wall_s, self.rule, run_share_s, min_now)
        self.ci = d.ci
        if not d.more:
            self.stop_reason = d.reason

    def interrupt(self) -> None:
        """Ctrl-C: an unfinished case ends "interrupted". One whose last round came back before the signal
        but not the decision on it (the signal can land in between) and that has all its rounds ended
        there: "max rounds", not to be resumed."""
        if self.stop_reason is None:
            full = not self.failure and len(self.results) >= self.rule.max_rounds
            self.stop_reason = "max rounds" if full else "interrupted"

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
        rule = self.rule
        record = {"case": self.case.to_dict(), "status": "failed" if error else "ok", "error": error,
                  "metrics": {}, "noise": None, "rounds": rounds, "rounds_planned": rule.min_rounds,
                  "rounds_min": rule.min_rounds, "rounds_max": rule.max_rounds, "target_ci": rule.target_ci,
                  "ci_reached": None if error else self.ci,
                  "target_met": bool(not error and self.ci is not None and self.ci <= rule.target_ci),
                  "stop_reason": self.stop_reason, "wall_s": round(self.wall_s, 3)}
        if not error and full:
            # summarize sees each round whole, with the runner's notes (load at its start, its order)
            metrics, noise = stats.summarize([{**res, **meta} for res, meta in zip(full, self.meta)],
                                             target_ci=rule.target_ci)
            record["metrics"] = {k: {"value": v, "unit": unit(k)} for k, v in metrics.items()}
            record["noise"] = noise
        return record


# What the runner copies from a round's result into its round record (samples are thinned apart).
ROUND_RESULT_KEYS = ("ops", "window_ns", "bytes_per_op", "cpu_s", "minor_faults", "placement", "steal_s", "steal_span_s",
                     "steal_cpus", "params")


def run_case(case: Case, opts: RunOptions) -> dict:
    """The rounds of one case, back to back (until the stopping rule ends it) -> its case record. Stops
    at the first failed round. (``run_cases`` interleaves the rounds of many cases instead.)"""
    state = _CaseRun(case, opts.stop_rule())
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ipcbench-") as workdir, \
            open_launcher(opts.fresh_rounds, [case], opts.env) as launcher:
        k = 0
        while not state.finished:
            state.run_round(k, opts, workdir, t0, launcher)
            k += 1
    return state.record(opts.max_stored_samples)


# -- the order of a run --------------------------------------------------------------------------------
def new_seed() -> int:
    """A fresh seed for the run order (recorded in the result file, so the order can be rebuilt)."""
    return secrets.randbelow(2**32)


def iter_order(n_cases: int, rounds: int, seed: int, block_cases: int = BLOCK_CASES,
               max_rounds: int | None = None,
               more: Callable[[int, int], bool] | None = None) -> Iterator[tuple[int, int]]:
    """The order of a run, lazily: ``(case index, round index)`` pairs, every case's rounds in order.

    Rule ``shuffled-blocks-adaptive-v1``, from ``random.Random(seed)``: shuffle the cases; cut them into
    ``max(1, n_cases // block_cases)`` consecutive blocks of near-equal size (each has ``block_cases`` to
    ``2 * block_cases - 1`` cases, or all of them in a smaller run); run the blocks one after another,
    each as passes over its cases, every pass in a fresh random order. Before each pass, a case stays in
    the block's passes while ``more(case, rounds it has had)`` says so (without ``more``: while it has
    had fewer than ``rounds``), and never beyond ``max_rounds`` (default ``rounds``); a case that drops out
    never comes back. ``more`` is asked when every pair yielded before has been run. A case left alone in
    its block moves on into the next block's passes. Where a pass would start with the case that ended
    the previous pass, that case swaps places with a random other case of the pass, so no case runs two
    rounds back to back unless it is the only one left.

    Without ``more`` (or with one that says yes exactly up to ``rounds``) this is the order of rule
    ``shuffled-blocks-v1``: ``rounds`` passes over each block.
    """
    if n_cases < 0 or rounds < 0 or block_cases < 1:
        raise ValueError("n_cases and rounds must be >= 0, block_cases >= 1")
    top = rounds if max_rounds is None else max(rounds, max_rounds)
    rng = random.Random(seed)
    cases = list(range(n_cases))
    rng.shuffle(cases)
    n_blocks = max(1, n_cases // block_cases)
    done = [0] * n_cases

    def wants(c: int) -> bool:
        if done[c] >= top:
            return False
        return done[c] < rounds if more is None else bool(more(c, done[c]))

    last = None
    carry: list[int] = []
    for b in range(n_blocks):
        block = carry + cases[b * n_cases // n_blocks:(b + 1) * n_cases // n_blocks]
        carry = []
        while True:
            block = [c for c in block if wants(c)]
            if not block:
                break
            if len(block) == 1 and b < n_blocks - 1:
                carry = block
                break
            rng.shuffle(block)
            if len(block) > 1 and block[0] == last:
                j = rng.randrange(1, len(block))
                block[0], block[j] = block[j], block[0]
            for c in block:
                yield c, done[c]
                done[c] += 1
            last = block[-1]


def run_order(n_cases: int, rounds: int, seed: int, block_cases: int = BLOCK_CASES,
              max_rounds: int | None = None, more: Callable[[int, int], bool] | None = None) -> list[tuple[int, int]]:
    """``iter_order`` as a list (``more`` must then not depend on the rounds being run: e.g. the number
    of rounds each case got, read from a result file, to rebuild its order)."""
    return list(iter_order(n_cases, rounds, seed, block_cases, max_rounds, more))


def order_info(seed: int, block_cases: int = BLOCK_CASES) -> dict:
    """What the result file's ``run.order`` says: enough to rebuild the order with ``run_order``."""
    return {"rule": ORDER_RULE, "seed": seed, "block_cases": block_cases,
            "about": "cases shuffled into blocks; each block's cases' rounds run in passes, each pass in "
                     "a fresh random order; after the minimum number of passes only the cases still short "
                     "of their CI target, rounds or time go on (ipcbench.measure.runner.run_order(n_cases, "
                     "rounds_min, seed, block_cases, rounds_max, more=lambda c, done: done < rounds_of[c]), "
                     "case indices in grid order, rounds_of[c] the rounds case c got, a failed one included)"}


class ResultWriter:
    """Keeps the result set in memory and rewrites the file atomically after every case.

    Where the file cannot be written mid-run (a full disk, the folder removed), nothing measured is lost:
    the set goes to a rescue file in the temporary folder (``rescue_path``, said once on stderr), and the
    next write tries the real path again."""

    def __init__(self, path: str | os.PathLike, machine_id: str | None, run_info: dict,
                 data: dict | None = None, keys: Sequence[int] = ()):
        self.path = Path(path)
        self.rescue_path: Path | None = None
        if data is None:
            machine = machine_metadata(machine_id)
            data = {
                "schema": SCHEMA,
                "schema_version": SCHEMA_VERSION,
                "ipcbench_version": __version__,
                "machine_id": machine["machine_id"],
                "machine": machine,
                "python": python_metadata(),
                "run": {"started": _now(), "finished": None, "status": "running", **run_info},
                "cases": [],
            }
        self.data = data
        self._keys: list[int] = list(keys)      # grid position of each case record, sorted
        self._write()

    @classmethod
    def reopen(cls, path: str | os.PathLike, data: dict, kept: Sequence[tuple[dict, int]],
               resumed: dict) -> ResultWriter:
        """Go on with the result set ``data`` of an unfinished run (``--resume``): its cases become
        ``kept`` (record, grid position), its run is "running" again, and ``resumed`` is appended to
        ``run.resumed``."""
        kept = sorted(kept, key=lambda item: item[1])
        data = {**data, "cases": [rec for rec, _ in kept]}
        data["run"] = {**data["run"], "status": "running", "finished": None,
                       "resumed": [*data["run"].get("resumed", []), resumed]}
        return cls(path, None, {}, data=data, keys=[pos for _, pos in kept])

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
        try:
            write_json_atomic(self.path, self.data)
        except OSError as exc:
            self._rescue(exc)
            return
        if self.rescue_path is not None:
            print(f"ipcbench: {self.path} is written again; the rescue copy {self.rescue_path} can go",
                  file=sys.stderr)
            self.rescue_path = None

    def _rescue(self, exc: OSError) -> None:
        """The set to a file in the temporary folder instead: said on stderr the first time."""
        first = self.rescue_path is None
        if first:
            self.rescue_path = Path(tempfile.gettempdir()) / f"ipcbench-rescue-{os.getpid()}-{self.path.name}"
        try:
            write_json_atomic(self.rescue_path, self.data)
        except OSError as exc2:
            raise UserError(f"cannot write {self.path} ({exc.strerror or exc}) nor a rescue copy "
                            f"{self.rescue_path} ({exc2.strerror or exc2}); the run stops") from None
        if first:
            print(f"ipcbench: cannot write {self.path} ({exc.strerror or exc}); the results are kept in "
                  f"{self.rescue_path} meanwhile", file=sys.stderr)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def estimate_round_s(case: Case, spec: RoundSpec, warm: bool = True) -> float:
    """Rough seconds for one round of a case, used only to weight the progress bar so that its ETA is
    sensible early (the ETA then follows the real speed)."""
    start_cost = {"fork": 0.01, "forkserver": 0.05, "spawn": 0.12}.get(case.start_method, 0.1)
    procs = case.workers + (1 if case.mechanism.startswith("manager") else 0)
    transfer = case.payload_bytes / 2e9 * (spec.warmup + spec.min_messages) * 2
    warmup_s = max(spec.warmup_s, spec.warmup_min_s)
    per_round = (0.03 if warm else 0.25) + start_cost * procs + spec.budget_s + warmup_s + transfer
    if case.pattern == "startup":
        per_round += start_cost * spec.min_messages
    return per_round


def estimate_case_s(case: Case, opts: RunOptions) -> float:
    """Rough seconds for a case at its minimum number of rounds."""
    return estimate_round_s(case, opts.spec, not opts.fresh_rounds) * opts.min_rounds


@dataclass(frozen=True)
class Continuation:
    """The rest of an unfinished run (``--resume``, see ``resume.py``): the cases to run are the ones at
    ``positions`` of the run's grid; their rounds are numbered from ``order_start`` and timed from
    ``start_s`` seconds after the run's first round, so ``order`` and ``start_s`` stay one sequence and one
    clock over the whole file. The segment's order seed and launcher go to the last ``run.resumed`` entry
    (the run's own ``run.order`` and ``run.adaptive`` stay as they were)."""
    positions: Sequence[int]
    order_start: int = 0
    start_s: float = 0.0


def run_cases(cases: list[Case], opts: RunOptions, writer: ResultWriter, progress,
              continuation: Continuation | None = None) -> dict:
    """Run the rounds of every case in the seeded run order (``iter_order``), each in a process of its
    own, until each case's stopping rule ends it.

    The order and its seed go to the file's ``run.order``, the launcher to ``run.launcher``, the stopping
    settings to ``run.adaptive``; each round record gets its ``order`` (position in the run order) and
    ``start_s`` (seconds since the run's first round started). A case's record is written, in grid
    position, as soon as its last round has run (or its failed round: a failed case gets no more). On
    Ctrl-C (or ``Terminated``) the file keeps every finished case, and every case with some rounds done,
    with those rounds (``stop_reason`` "interrupted"; its metrics come from the rounds it has); the round
    in flight is discarded, and the run says "interrupted". With ``continuation``, ``cases`` are the
    rest of a resumed run (see ``Continuation``).
    """
    seed = new_seed() if opts.seed is None else opts.seed
    rule = opts.stop_rule()
    states = [_CaseRun(c, rule) for c in cases]
    weights = [estimate_round_s(c, opts.spec, not opts.fresh_rounds) for c in cases]
    positions = list(range(len(cases))) if continuation is None else list(continuation.positions)
    if len(positions) != len(cases):
        raise ValueError("a continuation names one grid position per case")
    order_start, clock_start = (0, 0.0) if continuation is None else \
        (continuation.order_start, continuation.start_s)
    adaptive = {"rounds_min": rule.min_rounds, "rounds_max": rule.max_rounds, "target_ci": rule.target_ci,
                "case_budget_s": rule.budget_s, "run_budget_s": opts.run_budget_s,
                "reach_factor": rule.reach_factor, "rounds_floor": rule.floor_rounds}
    if continuation is None:
        writer.update_run(order=order_info(seed, opts.block_cases), adaptive=adaptive)
    else:
        writer.data["run"]["resumed"][-1].update(order=order_info(seed, opts.block_cases),
                                                  run_budget_s=opts.run_budget_s)
        writer.update_run()
    progress.start(cases, weights, rule.min_rounds, rule.max_rounds, opts.run_budget_s, rule.floor_rounds)
    launcher = None
    t0 = time.monotonic() - clock_start

    def share() -> tuple[float | None, int | None]:
        """The run budget left after the minimum rounds every unfinished case is still owed (at its mean
        round length so far; a case not started yet at the larger of the run's mean round and its own
        estimate, so 16 MiB cases late in the run are not under-reserved), per unfinished case; and, with
        a floor, the rounds every unfinished case can still get within the budget (``affordable_min``)."""
        if opts.run_budget_s is None:
            return None, None
        ran = sum(st.attempts for st in states)
        mean_s = sum(st.wall_s for st in states) / ran if ran else 0.0
        unfinished = [(st.attempts, st.wall_s / st.attempts if st.attempts else max(mean_s, w))
                      for st, w in zip(states, weights, strict=True) if not st.finished]
        owed = sum(max(0, rule.min_rounds - done) * round_s for done, round_s in unfinished)
        elapsed = time.monotonic() - t0 - clock_start
        min_now = None if rule.floor_rounds is None else \
            affordable_min(opts.run_budget_s - elapsed, unfinished, rule.min_rounds, rule.floor_rounds)
        return run_share(opts.run_budget_s, elapsed + owed, len(unfinished)), min_now

    try:
        with tempfile.TemporaryDirectory(prefix="ipcbench-") as workdir, \
                open_launcher(opts.fresh_rounds, cases, opts.env) as launcher:
            if continuation is None:
                writer.update_run(launcher=launcher_kind(launcher))
            else:
                writer.data["run"]["resumed"][-1]["launcher"] = launcher_kind(launcher)
            order = iter_order(len(cases), rule.min_rounds, seed, opts.block_cases, rule.max_rounds,
                               more=lambda c, done: not states[c].finished)
            for k, (i, r) in enumerate(order):
                state = states[i]
                progress.round_started(i, r)
                state.run_round(order_start + k, opts, workdir, t0, launcher, share)
                progress.round_done(i)
                if state.finished:
                    record = state.record(opts.max_stored_samples)
                    writer.add(record, position=positions[i])
                    progress.case_done(i, record)
    except KeyboardInterrupt:
        for st in states:
            st.interrupt()
        writer.add_many([(st.record(opts.max_stored_samples), positions[i]) for i, st in enumerate(states)
                         if st.results and not writer.has(positions[i])])
        _finish(writer, "interrupted", launcher)
        progress.stop()
        raise
    _finish(writer, "complete", launcher)
    progress.stop()
    return writer.data


def _finish(writer: ResultWriter, status: str, launcher: Launcher | None) -> None:
    if launcher is not None:
        writer.data["run"]["launcher_starts"] = launcher.starts
    writer.finish(status)
