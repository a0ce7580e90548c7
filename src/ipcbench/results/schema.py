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

Never pickle: a result file must be safe to open from a stranger.
"""

from __future__ import annotations

import os

from ..errors import UserError
from .io import read_json

SCHEMA = "ipcbench-result"
SCHEMA_VERSION = 3

# The tidy export's columns: a public interface (add columns, never rename). CASE_COLUMNS name one case of
# one result set; TIDY_COLUMNS are what `ipcbench export --format csv` writes first (then ``flags``).
CASE_COLUMNS = ["machine_id", "python_version", "start_method", "mechanism", "pattern", "payload_kind",
                "payload_bytes", "workers", "placement"]
TIDY_COLUMNS = [*CASE_COLUMNS, "metric", "value", "unit"]



def machine_id_of(rs: dict):
    """A result set's machine id: top level, else in its machine metadata."""
    return rs.get("machine_id") or rs.get("machine", {}).get("machine_id")


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


# version -> function turning a dict of that version into version + 1
MIGRATIONS: dict = {1: _v1_to_v2, 2: _v2_to_v3}


def check(data: object, source: str) -> dict:
    """Validate and migrate a loaded ipcbench result dict; raise UserError with a way forward if we can't."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError(f"{source}: not an ipcbench result file (no \"schema\": \"{SCHEMA}\")")
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise UserError(f"{source}: result file has no integer schema_version")
    if version > SCHEMA_VERSION:
        raise UserError(f"{source}: schema_version {version} is newer than this ipcbench understands "
                        f"({SCHEMA_VERSION}); upgrade ipcbench (pip install -U ipcbench)")
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise UserError(f"{source}: schema_version {version} cannot be migrated to {SCHEMA_VERSION}; "
                            f"re-run the benchmark with this ipcbench to get a current file")
        data = step(data)
        version = data["schema_version"]
    if not isinstance(data.get("cases"), list):
        raise UserError(f"{source}: result file has no list of cases")
    for i, rec in enumerate(data["cases"], 1):
        case = rec.get("case") if isinstance(rec, dict) else None
        missing = [k for k in CASE_COLUMNS[2:] if not isinstance(case, dict) or k not in case]
        if missing:
            raise UserError(f"{source}: case {i} has no {', '.join(missing)}; the file is damaged or not "
                            f"written by ipcbench")
    return data


def load_result(path: str | os.PathLike) -> dict:
    return check(read_json(path), str(path))
