"""Repeated runs of one setup, pooled: more rounds of the same cases, not more rows.

Rounds are the unit of replication (DESIGN.md rule 9). Two runs of the same case on one machine, Python
and start method are more rounds of that case; listing each file on its own wastes evidence and invites a
reader to pick the run they like. ``pool_runs`` merges the result sets of one machine and Python version
into one set, case by case (a case is mechanism, pattern, payload, workers, start method, placement):

* the rounds of every file where the case was measured are put together, and the case is summarized again
  (``summary.summarize``) with each round weighing the same: the headline estimates and their CIs from the
  per-round values each file recorded (exact, even where a file stored only a subsample of a round's
  samples); the tail percentiles from the stored samples of every round, and only where those support them;
* ``samples`` is the sum of what the files measured; ``target_met`` / ``ci_reached`` are those of the
  pooled CIs; ``pooled_from`` lists the files;
* a case that failed in one file and was measured in another counts as measured (``pooled_from`` names
  the files it was measured in); one that failed in every file stays failed, with each file's reason.

Sets of different machines or Python versions are never pooled, nor sets of one machine whose idle CPUs
waited differently (``machine.cpu_idle``: on the 2-vCPU reference VM, vCPUs that poll before they halt
made 8 B round trips ~3x faster, docs/measurement.md "Idle vCPUs that poll"); a file from before that was
recorded pools with its machine's other files where those recorded one setting only, and stays apart
where they recorded several (it cannot be told which it ran under). A set pooled from several files is named
``a.json + b.json`` (``_source``) and carries ``run.pooled_from``; a setup with one file is left as it is.
"""

from __future__ import annotations

from ..plan import metrics as registry
from .schema import CASE_COLUMNS, allocator_of, between_run_of, cpu_idle_of, machine_id_of, python_version_of
from .summary import TARGET_CI, summarize

CASE_FIELDS = CASE_COLUMNS[2:]          # a case within one machine and Python version
HEADLINES = ("latency_p50", "throughput_msgs")


def _case_key(rec: dict) -> tuple:
    return tuple(rec["case"].get(k) for k in CASE_FIELDS)


def pool_case(records: list[dict], sources: list[str]) -> dict:
    """One case measured in several files (``records``, in file order) -> one record (module doc)."""
    ok = [(rec, src) for rec, src in zip(records, sources, strict=True) if rec.get("status") == "ok"]
    case = dict(records[0]["case"])
    if not ok:
        reasons = "; ".join(f"{src}: {rec.get('error') or 'no reason recorded'}"
                            for rec, src in zip(records, sources, strict=True))
        return {"case": case, "status": "failed", "error": reasons, "metrics": {}, "noise": None,
                "rounds": [r for rec in records for r in rec.get("rounds") or ()], "wall_s": None,
                "pooled_from": list(sources)}
    rounds = [{**r, "source": src} for rec, src in ok for r in rec.get("rounds") or () if r.get("ok", True)]
    noises = [rec.get("noise") or {} for rec, _ in ok]
    target = min((n.get("target_ci") or TARGET_CI for n in noises), default=TARGET_CI)
    recorded = ([v for n in noises for v in n.get("round_p50_s") or ()],
                [v for n in noises for v in n.get("round_throughput") or ()])
    metrics, noise = summarize(rounds, target, round_values=recorded)
    total = [rec["metrics"]["samples"]["value"] for rec, _ in ok if "samples" in (rec.get("metrics") or {})]
    if total:
        metrics["samples"] = float(sum(total))
    widths = [noise["ci_rel"].get(m) for m in HEADLINES if m in noise["ci_rel"]]
    reached = None if not widths or any(w is None for w in widths) else max(widths)
    return {"case": case, "status": "ok", "error": None,
            "metrics": {k: {"value": v, "unit": registry.unit(k)} for k, v in metrics.items()},
            "noise": noise, "rounds": rounds, "wall_s": sum(rec.get("wall_s") or 0.0 for rec, _ in ok),
            "target_ci": target, "ci_reached": reached, "target_met": reached is not None and reached <= target,
            "pooled_from": [src for _, src in ok]}


def _skips(rs: dict) -> list:
    run = rs.get("run")
    skipped = run.get("skipped_mechanisms") if isinstance(run, dict) else None
    return skipped if isinstance(skipped, list) else []


def setup_groups(sets: list[dict]) -> list[list[dict]]:
    """Result sets -> the groups ``pool_runs`` pools, in the order each first appears: one per (machine,
    Python version, allocator state, CPU idle setting); a set without a recorded idle setting joins its
    setup's one recorded setting, or stays alone where its setup recorded several (module doc)."""
    groups: dict[tuple, list[dict]] = {}
    for rs in sets:
        groups.setdefault((machine_id_of(rs), python_version_of(rs), allocator_of(rs)), []).append(rs)
    out: list[list[dict]] = []
    for group in groups.values():
        recorded = list(dict.fromkeys(idle for rs in group if (idle := cpu_idle_of(rs)) is not None))
        if len(recorded) <= 1:
            out.append(group)
            continue
        by_idle: dict = {}
        for rs in group:
            idle = cpu_idle_of(rs)
            by_idle.setdefault(idle if idle is not None else ("unknown", id(rs)), []).append(rs)
        out.extend(by_idle.values())
    return out


def pool_runs(sets: list[dict]) -> list[dict]:
    """Result sets -> one set per setup (``setup_groups``), in the order each setup first appears. The
    pooled set's ``run.skipped_mechanisms`` lists every file's, each with its ``source``."""
    out = []
    for group in setup_groups(sets):
        if len(group) == 1:
            out.append(group[0])
            continue
        sources = [str(rs.get("_source", "?")) for rs in group]
        by_case: dict[tuple, list[tuple[dict, str]]] = {}
        for rs, src in zip(group, sources, strict=True):
            for rec in rs["cases"]:
                by_case.setdefault(_case_key(rec), []).append((rec, src))
        cases = [rec if len(found) == 1 else pool_case([r for r, _ in found], [s for _, s in found])
                 for found in by_case.values() for rec in [found[0][0]]]
        first = group[0]
        presets = sorted({str((rs.get("run") or {}).get("preset")) for rs in group})
        skipped = [{**e, "source": src} for rs, src in zip(group, sources, strict=True)
                   for e in _skips(rs) if isinstance(e, dict)]
        run = {**(first.get("run") or {}), "preset": ",".join(presets), "pooled_from": sources,
               "skipped_mechanisms": skipped}
        # the machine's between-run sd is the machine's, whichever of its files recorded it (the latest)
        recorded = [rs["run"]["between_run"] for rs in group if between_run_of(rs)]
        if recorded:
            run["between_run"] = recorded[-1]
        out.append({**first, "cases": cases, "_source": " + ".join(sources), "run": run})
    return out
