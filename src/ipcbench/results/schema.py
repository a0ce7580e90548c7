"""The result file: versioned JSON, checked with clear errors and step-wise migrations (I/O in ``io``).

Format history (``schema_version``):
  1 - first version: {schema, schema_version, ipcbench_version, machine, python, run, cases[]}.
      Each case: {case, status ("ok"|"failed"), error, metrics{name: {value, unit}}, noise, rounds[],
      wall_s}. Each round: {ok, error, samples_ns (<= cap, evenly spaced), samples_total, ops, window_ns,
      bytes_per_op, cpu_s, placement}. Times in integer nanoseconds in rounds, seconds in metrics.
  2 - rounds are the unit of replication: ``latency_p50`` and ``throughput_msgs`` are geometric means of
      per-round values, and ``noise`` adds ``ci`` (metric -> [low, high], the round-level 95 % CI, or
      null), ``ci_rel`` (its larger half-width / estimate), ``target_ci`` and ``omitted`` (percentile ->
      why it is not reported: too few samples); flag ``wide_ci``. Runs also record ``run.order`` ({rule,
      seed, block_cases, about}: the seeded interleaving of rounds), per case ``rounds_planned`` (an
      interrupted run may keep ok cases with fewer rounds) and ``wall_s`` (seconds of its own rounds), per
      round ``order`` (position in the run), ``start_s`` (s since the run's first round), ``steal_s`` /
      ``steal_span_s`` / ``steal_cpus`` (CPU steal over the timed window, summed over ``steal_cpus``
      CPUs), ``load1`` and ``procs_running`` (at the round's start); adaptive rounds add ``run.adaptive``
      ({rounds_min, rounds_max, target_ci, case_budget_s}), ``run.launcher`` ("warm-fork" or
      "fresh-interpreter") and per case ``rounds_min``, ``rounds_max``, ``target_ci``, ``ci_reached``,
      ``target_met`` and ``stop_reason``. Migration from 1 recomputes the p50,
      throughput and their CIs from the per-round values version 1 stored in ``noise``; tail percentiles
      stay as recorded (``noise["migrated_from"] = 1``).
  3 - placement is a case dimension: each case has ``placement`` ("spread", "shared" or "os", see
      ``plan.cases.PLACEMENTS``), ``run.placements`` lists those of the run, each round's ``placement``
      records the CPU order, the CPU assigned to each process and each process's affinity read back
      (``measure.placement``), and ``machine.topology`` the physical cores (SMT siblings) and NUMA nodes.
      Migration from 2 sets ``placement: "os"``: rounds before version 3 were not pinned.
  4 - ``pool_apply_async`` and ``process_pool_executor`` submit a batch, then collect it; version 3's
      windowed cases load as ``*_window4`` (``RENAMED_IN_4``).
  5 - stream and fanin of ``queue``, ``joinable_queue`` and ``thread_queue`` run on an unbounded queue,
      filled before the window (``params.maxsize`` 0, ``window_starts``); a ``lock`` contention sample
      is a batch of 32 cycles' mean; stream cases add ``latency_oneway_p50`` (the paced phase). Version
      4's bounded-queue stream/fanin cases load as ``<mechanism>_bounded`` and its per-cycle-stamped lock
      cases as ``lock_stamped`` (``RENAMED_IN_5``), never beside the new ones. Added since, without a
      version change (readers take a missing key as its default): ``run.allocator`` (missing: "fresh")
      and ``run.adaptive.rounds_floor`` (missing: null, every case's minimum rounds ran; with a number,
      a case may have stopped with "run budget" below ``rounds_min``, at no fewer rounds than it).
  6 - a ``lock`` contention sample is a batch of 1,024 cycles' mean (``params.cycles_per_sample``), and
      the counted window of rpc and contention ends at the first client's last op where a client
      stopped before the parent (its cap); with 32 cycles a stamp the pair of clients ran 1.2-1.7x as fast
      as the user's plain loop (docs/measurement.md, "Contention"). Version 5's lock cases load as
      ``lock_batch32`` (``RENAMED_IN_6``), never beside the new ones.
  7 - the submit-all dispatch forms (``pool_apply_async``, ``pool_apply_async_callback``,
      ``process_pool_executor``) submit jobs of K = 1,024 tasks (``params.tasks_per_call``), where they
      submitted 256: the rate of "submit K, then collect" moves with K (pinned, 8 B, one worker: ~65k
      tasks/s at 256, ~82k at 1,024; ``tools/job_size.py``). Version 6's cases of these three load as
      ``<mechanism>_batch256`` (``RENAMED_IN_7``), never beside the new ones.

Never pickle: a result file must be safe to open from a stranger.
"""

from __future__ import annotations

import math
import numbers
import os

from ..errors import UserError
from .io import read_json

SCHEMA = "ipcbench-result"
SCHEMA_VERSION = 7

# The tidy export's columns: a public interface (add columns, never rename). CASE_COLUMNS name one case of
# one result set; TIDY_COLUMNS are what `ipcbench export --format csv` writes first (then ``flags``).
CASE_COLUMNS = ["machine_id", "python_version", "start_method", "mechanism", "pattern", "payload_kind",
                "payload_bytes", "workers", "placement"]
TIDY_COLUMNS = [*CASE_COLUMNS, "metric", "value", "unit"]



def machine_id_of(rs: dict):
    """A result set's machine id: top level, else in its machine metadata."""
    return rs.get("machine_id") or rs.get("machine", {}).get("machine_id")


def allocator_of(rs: dict) -> str:
    """The allocator state a result set's rounds started in (``run.allocator``; files from before the
    setting ran with the caller's environment, as a rule glibc's defaults: ``fresh``)."""
    run = rs.get("run")
    state = run.get("allocator") if isinstance(run, dict) else None
    return state if isinstance(state, str) and state else "fresh"


BETWEEN_RUN_METRICS = ("latency_p50", "throughput_msgs")


def between_run_of(rs: dict) -> dict[str, float]:
    """The between-run sd (log scale) the run recorded for its machine, by metric (``run.between_run``,
    from the machine file, measured by ``ipcbench aa --save``); ``throughput_bytes`` shares
    ``throughput_msgs``'. Empty where none was recorded or the entry is not a finite, non-negative number."""
    run = rs.get("run")
    bw = run.get("between_run") if isinstance(run, dict) else None
    out: dict[str, float] = {}
    if isinstance(bw, dict):
        for m in BETWEEN_RUN_METRICS:
            v = bw.get(m)
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0:
                out[m] = float(v)
    if "throughput_msgs" in out:
        out["throughput_bytes"] = out["throughput_msgs"]
    return out


def cpu_idle_of(rs: dict) -> tuple | None:
    """How the machine's idle CPUs waited during the run (``machine.cpu_idle``: driver, governor,
    ``guest_halt_poll_ns``), as a tuple to compare; None for a file from before it was recorded."""
    idle = (rs.get("machine") or {}).get("cpu_idle")
    if not isinstance(idle, dict):
        return None
    return tuple(str(idle.get(k)) for k in ("driver", "governor", "guest_halt_poll_ns"))


def python_version_of(rs: dict):
    return rs.get("python", {}).get("python_version")


def _v1_to_v2(data: dict) -> dict:
    """Round-level p50, throughput and CIs from the per-round values a version-1 file kept in ``noise``."""
    from .round_stats import round_estimate
    from .summary import TARGET_CI

    for rec in data.get("cases") or ():
        noise, metrics = rec.get("noise"), rec.get("metrics")
        if rec.get("status") != "ok" or not isinstance(noise, dict) or not isinstance(metrics, dict):
            continue
        ci, ci_rel = {}, {}
        for name, values in (("latency_p50", noise.get("round_p50_s")), ("throughput_msgs", noise.get("round_throughput"))):
            est = round_estimate(values or [])
            if est is None or name not in metrics:
                continue
            if name == "throughput_msgs" and "throughput_bytes" in metrics and metrics[name]["value"]:
                metrics["throughput_bytes"]["value"] *= est.value / metrics[name]["value"]
            metrics[name]["value"] = est.value
            tight = est.rel_half_width != float("inf")
            ci[name], ci_rel[name] = ([est.low, est.high], est.rel_half_width) if tight else (None, None)
        flags = [f for f in noise.get("flags") or () if f != "wide_ci"]
        if any(w is None or w > TARGET_CI for w in ci_rel.values()):
            flags.insert(0, "wide_ci")
        noise.pop("median_ci_s", None)          # a CI from pooled messages: the mistake version 2 mends
        noise.update(ci=ci, ci_rel=ci_rel, target_ci=TARGET_CI, omitted=noise.get("omitted") or {}, flags=flags,
                     migrated_from=1)
    data["schema_version"] = 2
    return data


def _v2_to_v3(data: dict) -> dict:
    """Cases from before placement existed ran unpinned: ``placement: "os"``."""
    for rec in data.get("cases") or ():
        if isinstance(rec, dict) and isinstance(rec.get("case"), dict):
            rec["case"].setdefault("placement", "os")
    data["schema_version"] = 3
    return data


# Until version 3, pool_apply_async and process_pool_executor kept a window of 4 tasks per worker in flight;
# from version 4 those names submit a batch and then collect it (as users write it), and the windowed forms,
# with one task per worker, are pool_apply_async_window and process_pool_executor_window. The old cases keep
# a name of their own, so that they are never set beside either.
RENAMED_IN_4 = {"pool_apply_async": "pool_apply_async_window4",
                "process_pool_executor": "process_pool_executor_window4"}


def _v3_to_v4(data: dict) -> dict:
    """The windowed apply_async and executor cases of version 3 get the names ``RENAMED_IN_4``."""
    for rec in data.get("cases") or ():
        case = rec.get("case") if isinstance(rec, dict) else None
        if isinstance(case, dict) and case.get("mechanism") in RENAMED_IN_4:
            case["mechanism"] = RENAMED_IN_4[case["mechanism"]]
    data["schema_version"] = 4
    return data


# Until version 4 the one-way cases of these queues ran on a bounded queue (another channel: a full queue
# wakes its producer once per get) and a lock client stamped every cycle (more work than the cycle).
RENAMED_IN_5 = {("queue", "stream"): "queue_bounded", ("queue", "fanin"): "queue_bounded",
                ("joinable_queue", "stream"): "joinable_queue_bounded",
                ("joinable_queue", "fanin"): "joinable_queue_bounded",
                ("thread_queue", "stream"): "thread_queue_bounded", ("thread_queue", "fanin"): "thread_queue_bounded",
                ("lock", "contention"): "lock_stamped"}


def _rename(data: dict, renamed: dict, version: int) -> dict:
    """Cases whose (mechanism, pattern) is in ``renamed`` get its name; the file becomes ``version``."""
    for rec in data.get("cases") or ():
        case = rec.get("case") if isinstance(rec, dict) else None
        if isinstance(case, dict):
            new = renamed.get((case.get("mechanism"), case.get("pattern")))
            if new:
                case["mechanism"] = new
    data["schema_version"] = version
    return data


def _v4_to_v5(data: dict) -> dict:
    """Version 4's bounded-queue streams and per-cycle lock cases get the names ``RENAMED_IN_5``."""
    return _rename(data, RENAMED_IN_5, 5)


# Until version 5 a lock client read the clock every 32 cycles, which changed how the clients contended.
RENAMED_IN_6 = {("lock", "contention"): "lock_batch32"}


def _v5_to_v6(data: dict) -> dict:
    """Version 5's lock cases (a stamp every 32 cycles) get the name ``RENAMED_IN_6``."""
    return _rename(data, RENAMED_IN_6, 6)


# Until version 6 the submit-all dispatch forms submitted jobs of 256 tasks (now 1,024): another workload.
RENAMED_IN_7 = {("pool_apply_async", "dispatch"): "pool_apply_async_batch256",
                ("pool_apply_async_callback", "dispatch"): "pool_apply_async_callback_batch256",
                ("process_pool_executor", "dispatch"): "process_pool_executor_batch256"}


def _v6_to_v7(data: dict) -> dict:
    """Version 6's submit-all dispatch cases (jobs of 256 tasks) get the names ``RENAMED_IN_7``."""
    return _rename(data, RENAMED_IN_7, 7)


# version -> function turning a dict of that version into version + 1
MIGRATIONS: dict = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6, 6: _v6_to_v7}


def check(data: object, source: str) -> dict:
    """Validate and migrate a loaded ipcbench result dict; raise UserError with a way forward if we can't.

    Beyond the version, the structure that readers rely on is checked (``check_structure``): a file with a
    list where an object belongs, text where a number belongs, is refused here with one clear line rather
    than failing somewhere deep in the report or the export."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError(f"{source}: not an ipcbench result file (no \"schema\": \"{SCHEMA}\")")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError(f"{source}: result file has no integer schema_version")
    if version > SCHEMA_VERSION:
        raise UserError(f"{source}: schema_version {version} is newer than this ipcbench understands "
                        f"({SCHEMA_VERSION}); upgrade ipcbench (pip install -U ipcbench)")
    if not isinstance(data.get("cases"), list):
        raise UserError(f"{source}: result file has no list of cases")
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise UserError(f"{source}: schema_version {version} cannot be migrated to {SCHEMA_VERSION}; "
                            f"re-run the benchmark with this ipcbench to get a current file")
        try:
            data = step(data)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            raise UserError(f"{source}: schema_version {version} file cannot be migrated to {SCHEMA_VERSION}: "
                            f"{_DAMAGED}") from None
        version = data["schema_version"]
    for i, rec in enumerate(data["cases"], 1):
        case = rec.get("case") if isinstance(rec, dict) else None
        missing = [k for k in CASE_COLUMNS[2:] if not isinstance(case, dict) or k not in case]
        if missing:
            raise UserError(f"{source}: case {i} has no {', '.join(missing)}; the file is damaged or not "
                            f"written by ipcbench")
    check_structure(data, source)
    return data


# --- structure ------------------------------------------------------------------------------------------
# What readers (frames, pooling, comparison, report, exports) take for granted about a result file, checked
# once on loading. Fields not listed may hold anything: they are only shown, through str().

_DAMAGED = "the file is damaged or not written by ipcbench"
_MAX_INT = 2**63 - 1                 # pandas keeps payload sizes and worker counts as int64
CASE_TEXT = ("mechanism", "pattern", "payload_kind", "start_method", "placement")
ROUND_NUMBERS = ("ops", "window_ns", "bytes_per_op", "cpu_s", "minor_faults", "samples_total", "steal_s", "steal_span_s",
                 "steal_cpus", "procs_running", "load1", "start_s", "order")


def _kind(v) -> str:
    """A JSON value as an error message names it: its kind, or a number itself."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        text = repr(v)
        return text if len(text) <= 24 else f"a number of {len(text)} characters"
    if isinstance(v, str):
        return "text"
    if isinstance(v, list):
        return "a list"
    return "an object" if isinstance(v, dict) else type(v).__name__


def _is_number(v) -> bool:
    """A JSON number (or, in a dict built in Python, a numpy one); true/false is not a number here."""
    return type(v) in (int, float) or (isinstance(v, numbers.Real) and not isinstance(v, bool))


def _is_count(v, low: int) -> bool:
    return (type(v) is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool))) and low <= v <= _MAX_INT


def _is_text(v) -> bool:
    return isinstance(v, str)


class _Bad(Exception):
    """Where (a path such as ``rounds[1].samples_ns[3]``) and what is wrong."""


def _expect(ok: bool, where: str, value, wanted: str) -> None:
    if not ok:
        raise _Bad(f"{where} is {_kind(value)}, not {wanted}")


def _optional(container: dict, key: str, where: str, test, wanted: str) -> None:
    """``container[key]``, if present and not null, passes ``test``."""
    v = container.get(key)
    if v is not None:
        _expect(test(v), f"{where}{key}", v, wanted)


def _optional_list(container: dict, key: str, where: str, test, wanted_item: str) -> None:
    """``container[key]``, if present and not null, is a list whose items pass ``test``."""
    v = container.get(key)
    if v is None:
        return
    _expect(isinstance(v, list), f"{where}{key}", v, "a list")
    for i, x in enumerate(v):
        _expect(test(x), f"{where}{key}[{i}]", x, wanted_item)


def _optional_map(container: dict, key: str, where: str, test, wanted_item: str) -> None:
    """``container[key]``, if present and not null, is an object whose values pass ``test``."""
    v = container.get(key)
    if v is None:
        return
    _expect(isinstance(v, dict), f"{where}{key}", v, "an object")
    for k, x in v.items():
        _expect(test(x), f"{where}{key}.{k}", x, wanted_item)


NS = "a whole number of nanoseconds, 0 or more"


def _check_samples(rnd: dict, where: str) -> None:
    """``rnd["samples_ns"]``, if present and not null: whole numbers of ns (thousands a round: fast path)."""
    v = rnd.get("samples_ns")
    if v is None:
        return
    _expect(isinstance(v, list), f"{where}samples_ns", v, "a list")
    if set(map(type, v)) <= {int} and (not v or (min(v) >= 0 and max(v) <= _MAX_INT)):
        return
    for i, x in enumerate(v):              # name the first bad one
        _expect(_is_count(x, 0), f"{where}samples_ns[{i}]", x, NS)


def _check_noise(noise: dict, where: str) -> None:
    _optional_list(noise, "flags", where, _is_text, "text")
    for key in ("round_p50_s", "round_throughput"):
        _optional_list(noise, key, where, _is_number, "a number")
    _optional(noise, "target_ci", where, _is_number, "a number")
    _optional_map(noise, "ci_rel", where, lambda x: x is None or _is_number(x), "a number or null")
    _optional_map(noise, "ci", where, lambda x: x is None or (isinstance(x, (list, tuple)) and len(x) == 2 and all(
        _is_number(y) for y in x)), "a [low, high] pair of numbers or null")
    _optional(noise, "omitted", where, lambda v: isinstance(v, dict), "an object")


def _check_round(rnd, where: str, measured: bool) -> None:
    _expect(isinstance(rnd, dict), where, rnd, "an object")
    where += "."
    _optional(rnd, "ok", where, lambda v: isinstance(v, bool), "true or false")
    _optional(rnd, "error", where, _is_text, "text")
    for key in ROUND_NUMBERS:
        v = rnd.get(key)
        _expect(v is None or (_is_number(v) and math.isfinite(v)), f"{where}{key}", v, "a finite number")
    _check_samples(rnd, where)
    if measured and rnd.get("ok", True) is not False:       # a measured round of a measured case
        _expect(rnd.get("samples_ns") is not None, f"{where}samples_ns", None, f"a list of samples ({NS})")
        if rnd.get("ops") and rnd.get("window_ns"):
            _expect(_is_number(rnd.get("bytes_per_op")), f"{where}bytes_per_op", rnd.get("bytes_per_op"),
                    "a number")


def _check_case(rec: dict) -> None:
    case = rec["case"]
    for key in CASE_TEXT:
        _expect(_is_text(case[key]) and case[key] != "", key, case[key], "a name")
    for key, v in case.items():            # a case is a key (grouping, matching): its values are scalars
        _expect(v is None or isinstance(v, (str, int, float)), f"case.{key}", v, "text or a number")
    _expect(_is_count(case["payload_bytes"], 0), "payload_bytes", case["payload_bytes"],
            "a whole number of bytes, 0 or more")
    _expect(_is_count(case["workers"], 1), "workers", case["workers"], "a whole number, 1 or more")
    _expect(_is_text(rec.get("status")), "status", rec.get("status"), 'text ("ok" or "failed")')
    _optional(rec, "error", "", _is_text, "text")
    _optional(rec, "wall_s", "", _is_number, "a number")
    if "metrics" in rec:
        metrics = rec["metrics"]
        _expect(isinstance(metrics, dict), "metrics", metrics, "an object")
        for name, mv in metrics.items():
            _expect(isinstance(mv, dict) and "value" in mv and "unit" in mv, f"metrics.{name}", mv,
                    "an object with value and unit")
            _expect(_is_number(mv["value"]), f"metrics.{name}.value", mv["value"], "a number")
            _optional(mv, "unit", f"metrics.{name}.", _is_text, "text")
    noise = rec.get("noise")
    if noise is not None:
        _expect(isinstance(noise, dict), "noise", noise, "an object")
        _check_noise(noise, "noise.")
    if "rounds" in rec:                    # readers use rec.get("rounds", []): no null
        rounds = rec["rounds"]
        _expect(isinstance(rounds, list), "rounds", rounds, "a list")
        for j, rnd in enumerate(rounds):
            _check_round(rnd, f"rounds[{j}]", rec["status"] == "ok")


def check_structure(data: dict, source: str) -> None:
    """Raise UserError naming the first field whose kind readers cannot use (see ``check``)."""
    try:
        for key in ("machine", "python", "run"):            # readers use data.get(key, {}): no null
            if key in data:
                _expect(isinstance(data[key], dict), key, data[key], "an object")
        _optional(data, "machine_id", "", _is_text, "text")
        _optional(data, "_source", "", _is_text, "text")
        machine, py = data.get("machine") or {}, data.get("python") or {}
        _optional(machine, "machine_id", "machine.", _is_text, "text")
        _optional_list(machine, "system_checks", "machine.", lambda x: isinstance(x, dict), "an object")
        _optional(py, "python_version", "python.", _is_text, "text")
        # mechanisms a run left out, and why: [{mechanism, reason}] (``ipcbench run``: a preset's opt-in ones,
        # celery where Celery or a Redis server is missing); optional, so files from before it stay valid
        _optional_list(data.get("run") or {}, "skipped_mechanisms", "run.", lambda x: isinstance(x, dict),
                       "an object ({mechanism, reason})")
    except _Bad as exc:
        raise UserError(f"{source}: {exc}; {_DAMAGED}") from None
    for i, rec in enumerate(data["cases"], 1):
        try:
            _check_case(rec)
        except _Bad as exc:
            raise UserError(f"{source}: case {i}: {exc}; {_DAMAGED}") from None


def load_result(path: str | os.PathLike) -> dict:
    return check(read_json(path), str(path))
