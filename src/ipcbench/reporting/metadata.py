"""The report's "Machines and runs" table: one column per result set, one row per metadata field."""

from __future__ import annotations

import math
import os

from ..units import format_number, format_size


def _show(v, depth: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (dict, list, tuple)) and depth > 8:     # a file may nest as deep as JSON allows
        return "…"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_show(x, depth + 1)}" for k, x in v.items()) or "–"
    if isinstance(v, (list, tuple)):
        return " ".join(_show(x, depth + 1) for x in v) or "–"
    if isinstance(v, float):
        return format_number(v)
    return str(v)


def _check_warnings(rs: dict) -> str:
    """pyperf's and ipcbench's system checks (metadata.machine["system_checks"]) that warn."""
    checks = rs["machine"].get("system_checks") or []
    return "; ".join(f"{c.get('check')}: {c.get('message')}" for c in checks if c.get("state") == "warning") or "none"


def metadata_rows(sets: list[dict]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Header (one column per result set) and rows (field, value per set) of machine and run metadata."""
    fields = [
        ("machine_id", lambda s: s.get("machine_id")), ("description", lambda s: s["machine"].get("description")),
        ("result file", lambda s: s.get("_source")),
        ("CPU model", lambda s: s["machine"].get("cpu_model")),
        ("logical cores", lambda s: s["machine"].get("logical_cores")),
        ("usable CPUs", lambda s: s["machine"].get("usable_cpus")),
        ("cgroup CPU quota", lambda s: s["machine"].get("cgroup_cpu_quota")),
        ("virtualization", lambda s: s["machine"].get("virtualization")),
        ("CPU governor", lambda s: s["machine"].get("cpu_governor")),
        ("CPU idle", lambda s: s["machine"].get("cpu_idle")),
        ("memory", lambda s: format_size(s["machine"]["memory_bytes"]) if s["machine"].get("memory_bytes") else None),
        ("OS / kernel", lambda s: f"{s['machine'].get('os')} {s['machine'].get('kernel')}"),
        ("architecture", lambda s: s["machine"].get("arch")),
        ("load average (start)", lambda s: s["machine"].get("load_average")),
        ("Python", lambda s: f"{s['python'].get('implementation')} {s['python'].get('python_version')}"),
        ("compiler", lambda s: s["python"].get("compiler")),
        ("free-threaded", lambda s: s["python"].get("gil_disabled")),
        ("default start method", lambda s: s["python"].get("default_start_method")),
        ("pickle protocol", lambda s: s["python"].get("pickle_default_protocol")),
        ("packages", lambda s: s["python"].get("packages")),
        ("git commit", lambda s: s["python"].get("git_commit")),
        ("ipcbench", lambda s: s.get("ipcbench_version")),
        ("preset", lambda s: s["run"].get("preset")), ("command", lambda s: s["run"].get("argv")),
        ("started", lambda s: s["run"].get("started")), ("finished", lambda s: s["run"].get("finished")),
        ("run status", lambda s: s["run"].get("status")),
        ("system check warnings", _check_warnings),
        ("cases (failed)", lambda s: f"{len(s['cases'])} ({sum(c.get('status') != 'ok' for c in s['cases'])})"),
    ]
    header = [os.path.basename(str(s.get("_source", "?"))) for s in sets]
    rows = []
    for name, get in fields:
        values = []
        for s in sets:
            try:
                values.append(_show(get({"machine": {}, "python": {}, "run": {}, **s})))
            except (KeyError, TypeError, AttributeError, ValueError, OverflowError):    # a field of a damaged file
                values.append("–")
        rows.append((name, values))
    return header, rows

