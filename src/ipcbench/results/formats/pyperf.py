"""pyperf JSON export: an ipcbench result set as a pyperf benchmark suite, built with pyperf's own
classes (``pyperf.Run``, ``pyperf.Benchmark``, ``pyperf.BenchmarkSuite``), so that ``python -m pyperf
stats|hist|compare_to|metadata`` read it as they read pyperf's own files.

Mapping:

* one pyperf benchmark per successful case, named ``mechanism/pattern/size/wN/start_method/placement``
  (``Case.id``, e.g. ``pipe_duplex/roundtrip/8B/w1/fork/spread``), tagged with its pattern (so
  ``compare_to`` also gives a geometric mean per pattern);
* one pyperf run per round (each round ran in fresh processes, like a pyperf worker); its values are the
  round's stored per-operation latency samples in seconds (``loops=1``: each value is one operation, not
  a batch mean). ``ipcbench run`` stores at most ``max_stored_samples`` per case, evenly spaced through
  each round; ``ipcbench_round_samples_total`` says how many the round measured;
* metadata: the case dimensions, the machine as pyperf itself describes it (``machine["pyperf"]``, from
  ``pyperf._collect_metadata``) or ipcbench's fallback, Python version, and ipcbench's system-check
  warnings.

pyperf values are times only. Throughput (``throughput_msgs``, ``throughput_bytes``) and
``cpu_per_msg`` are therefore carried as metadata (``ipcbench_throughput_msgs`` ...), visible with
``python -m pyperf metadata``, not as values. Cases with no latency samples (e.g. stream through the
pytest-benchmark front end, which measures throughput only) and failed cases are left out and listed.
"""

from __future__ import annotations

import math

from ...errors import UserError
from ...plan.cases import Case

UNIT = "second"
METRICS_AS_METADATA = ("throughput_msgs", "throughput_bytes", "cpu_per_msg")


def _clean(metadata: dict) -> dict:
    """pyperf accepts str/int/float values (a list of str for ``tags``), no empty strings, no newlines."""
    out = {}
    for key, value in metadata.items():
        if key == "tags" and isinstance(value, list) and all(isinstance(t, str) and t for t in value):
            out[key] = value
            continue
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):      # NaN != NaN: pyperf calls runs incompatible
            continue
        if isinstance(value, str):
            value = " ".join(value.split())
            if not value:
                continue
        if isinstance(value, (str, int, float)):
            out[key] = value
    return out


def _set_metadata(rs: dict) -> dict:
    """Metadata shared by every benchmark of the set: machine, Python, system-check warnings."""
    machine, py = rs.get("machine") or {}, rs.get("python") or {}
    md: dict = {}
    pyperf_md = machine.get("pyperf") if isinstance(machine.get("pyperf"), dict) else {}
    # pyperf's own description of the machine where we have it; "date" there is collection time.
    md.update({k: v for k, v in pyperf_md.items() if k not in ("date",)})
    md.setdefault("hostname", machine.get("hostname"))
    md.setdefault("cpu_model_name", machine.get("cpu_model"))
    md.setdefault("cpu_count", machine.get("logical_cores"))
    md.setdefault("platform", machine.get("platform"))
    md["python_version"] = py.get("python_version")
    md["python_implementation"] = str(py.get("implementation") or "").lower() or None
    md["ipcbench_machine_id"] = rs.get("machine_id") or machine.get("machine_id")
    md["ipcbench_version"] = rs.get("ipcbench_version")
    md["ipcbench_preset"] = (rs.get("run") or {}).get("preset")
    md["ipcbench_front_end"] = (rs.get("run") or {}).get("front_end", "ipcbench run")
    md["ipcbench_started"] = (rs.get("run") or {}).get("started")
    warnings = [f"{c.get('check')}: {c.get('message')}" for c in machine.get("system_checks") or []
                if isinstance(c, dict) and c.get("state") == "warning"]
    md["ipcbench_system_warnings"] = "; ".join(warnings)
    return md


def benchmark_name(case: dict) -> str:
    return Case.from_dict(case).id


def _runs(rec: dict, name: str, base: dict) -> list:
    import pyperf

    case = rec["case"]
    md = dict(base)
    md.update({"name": name, "unit": UNIT, "loops": 1, "tags": [case["pattern"]],
               "description": f"{name}: per-operation latency samples from ipcbench",
               "mechanism": case["mechanism"], "pattern": case["pattern"], "payload_kind": case["payload_kind"],
               "payload_bytes": int(case["payload_bytes"]), "workers": int(case["workers"]),
               "start_method": case["start_method"], "placement": case.get("placement", "os"),
               "ipcbench_flags": ",".join((rec.get("noise") or {}).get("flags") or [])})
    for metric in METRICS_AS_METADATA:
        mv = (rec.get("metrics") or {}).get(metric)
        if isinstance(mv, dict) and isinstance(mv.get("value"), (int, float)):
            md[f"ipcbench_{metric}"] = float(mv["value"])
    runs = []
    for index, rnd in enumerate(rec.get("rounds") or []):
        values = [s / 1e9 for s in rnd.get("samples_ns") or [] if s > 0]
        if not rnd.get("ok", True) or not values:
            continue
        run_md = dict(md, ipcbench_round=index,
                      ipcbench_round_samples_total=int(rnd.get("samples_total") or len(values)))
        runs.append(pyperf.Run(values, metadata=_clean(run_md), collect_metadata=False))
    return runs


def to_suite(rs: dict):
    """One result set -> (``pyperf.BenchmarkSuite``, [(case name, why it was left out)])."""
    import pyperf

    base = _set_metadata(rs)
    benchmarks, left_out = [], []
    for rec in rs.get("cases") or []:
        name = benchmark_name(rec["case"])
        if rec.get("status") != "ok":
            left_out.append((name, f"failed: {rec.get('error')}"))
            continue
        runs = _runs(rec, name, base)
        if not runs:
            left_out.append((name, "no per-operation latency samples (a throughput-only case)"))
            continue
        benchmarks.append(pyperf.Benchmark(runs))
    if not benchmarks:
        raise UserError("no case with latency samples to export to pyperf (all failed or throughput-only)")
    return pyperf.BenchmarkSuite(benchmarks), left_out


def write_pyperf(sets: list[dict], out) -> list[tuple[str, str]]:
    """Write one result set as pyperf JSON to a path (``.json.gz`` is compressed by pyperf) or a text
    stream; return the cases left out. pyperf compares files, so one set per file."""
    if len(sets) != 1:
        raise UserError(f"pyperf export takes one result set at a time (got {len(sets)}); export each and "
                        f"compare them with `python -m pyperf compare_to A.json B.json`")
    suite, left_out = to_suite(sets[0])
    if isinstance(out, str):
        suite.dump(out, replace=True)
    else:
        suite.dump(out)
    return left_out
