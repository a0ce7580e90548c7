"""pytest-benchmark JSON, both ways: what ``bench/`` stores per benchmark, and reading a
``--benchmark-json`` file back as an ipcbench result set (``frame.read_set`` calls ``from_pytest_benchmark``
for a JSON file with ``"benchmarks"`` and no ``"schema"``).

Layout written by ``ipcbench.pytest_plugin`` (``pytest bench/``) (format history: 1 - first version):

* per benchmark, ``extra_info``: the case's identity as flat keys (``mechanism``, ``pattern``,
  ``payload_kind``, ``payload_bytes``, ``workers``, ``start_method``), ``op`` (what one timed call is, in
  words) and ``ipcbench``: ``{"format": 1, "timed": "latency"|"interval", "samples_ns": [...] (latency
  samples, at most SAMPLE_CAP, evenly spaced), "samples_total", "ops", "window_ns" (what throughput is
  computed from; see ``sessions.Session.measured``), "bytes_per_op", "cpu_s" (None: no cpu_per_msg from
  this front end), "window_cpu_s", "wall_window_ns", "calls", "other_ops", "placement", "wall_s",
  "metrics", "noise", ...}``. ``metrics`` and ``noise`` are computed by ``stats.summarize`` from *every*
  per-call duration pytest-benchmark recorded (its ``stats.data``).
* top level, ``ipcbench``: ``{"format": 1, "preset", "spec", "failed": [{"case", "error"}], ...}``;
  ``machine_info["ipcbench"]``: ipcbench's machine and Python metadata (system checks included).

Reading back, metrics are recomputed from the complete latency samples whenever the file holds them
(``stats.data`` from ``--benchmark-save-data`` for "latency" ops, or ``samples_ns`` when nothing was cut);
otherwise the stored ``metrics`` are used. Either way percentiles are of single operations, never
estimated from a mean and a standard deviation. A benchmark with neither is refused.
"""

from __future__ import annotations

import math

from ..._version import __version__
from ...errors import UserError
from ...plan.cases import Case
from ...plan.metrics import unit
from .. import summary as stats
from ..schema import SCHEMA, SCHEMA_VERSION

FORMAT = 1
SAMPLE_CAP = 5000          # latency samples stored per benchmark (metrics use all of them)
# what marks a benchmark as one of bench/ (files from before placement existed lack "placement")
CASE_KEYS = ("mechanism", "pattern", "payload_kind", "payload_bytes", "workers", "start_method")
WALL_CLOCK_TIMERS = ("perf_counter", "time.perf_counter")


def seconds_to_ns(values) -> list[int]:
    return [int(round(v * 1e9)) for v in values]


def metric_dict(metrics: dict) -> dict:
    return {k: {"value": v, "unit": unit(k)} for k, v in metrics.items()}


def summarize(measured: dict) -> tuple[dict, dict]:
    """``stats.summarize`` of one window; the ``samples`` count is dropped when there are no latency
    samples (interval ops such as stream), so no metric claims a latency that was not measured."""
    metrics, noise = stats.summarize([measured])
    if not measured["samples_ns"]:
        metrics.pop("samples", None)
    return metric_dict(metrics), noise


def extra_info(case: Case, measured: dict, definition: str, timed: str, preset: str, wall_s: float) -> dict:
    """What ``bench/`` stores in ``benchmark.extra_info`` for one case (see the module docstring)."""
    metrics, noise = summarize(measured)
    samples = measured["samples_ns"]
    info = {k: v for k, v in measured.items() if k != "samples_ns"}
    return {
        **case.to_dict(),
        "op": definition,
        "ipcbench": {"format": FORMAT, "version": __version__, "timed": timed, "preset": preset,
                     "samples_ns": stats.bounded(samples, SAMPLE_CAP), "samples_total": len(samples),
                     **info, "wall_s": round(wall_s, 3), "metrics": metrics, "noise": noise},
    }


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------
def _obj(value) -> dict:
    """``value`` where it is an object, else an empty one: pytest-benchmark files come from anywhere."""
    return value if isinstance(value, dict) else {}


def _damaged(source: str, name: str, what: str) -> UserError:
    return UserError(f"{source}: benchmark {name}: {what}; the file is damaged or not written by `pytest bench/`")


def _check_numbers(bench: dict, ib: dict, source: str, name: str) -> None:
    """What ``_case_record`` computes with is numbers: durations (s), samples (ns), counts."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    data = _obj(bench.get("stats")).get("data")
    if isinstance(data, list) and not all(number(x) and 0 <= x < 9e9 for x in data):
        raise _damaged(source, name, "stats.data holds something other than durations in seconds")
    samples = ib.get("samples_ns")
    if samples is not None and not (isinstance(samples, list) and all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**63 for x in samples)):
        raise _damaged(source, name, "extra_info['ipcbench']['samples_ns'] is not a list of whole numbers of ns")
    for key in ("ops", "window_ns", "bytes_per_op", "cpu_s", "samples_total", "wall_s"):
        if ib.get(key) is not None and not number(ib[key]):
            raise _damaged(source, name, f"extra_info['ipcbench']['{key}'] is not a number")


def _complete_samples(bench: dict, ib: dict) -> list[int] | None:
    data = _obj(bench.get("stats")).get("data")
    if ib.get("timed") == "latency" and isinstance(data, list) and data:
        return seconds_to_ns(data)
    samples = ib.get("samples_ns")
    if isinstance(samples, list) and len(samples) == ib.get("samples_total"):
        return samples
    return None


def _case_record(bench: dict, source: str) -> dict | None:
    """One benchmark -> an ipcbench case record; None for a benchmark that is not from ``bench/``."""
    info = _obj(bench.get("extra_info"))
    ib = info.get("ipcbench")
    if not isinstance(ib, dict) or any(k not in info for k in CASE_KEYS):
        return None
    name = " ".join(str(bench.get("fullname") or bench.get("name") or "?").split())[:200]    # for one-line errors
    case = Case.from_dict({"placement": "os", **info}).to_dict()     # before placement: unpinned
    version = ib.get("format", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise _damaged(source, name, "extra_info['ipcbench']['format'] is not a whole number")
    if version > FORMAT:
        raise UserError(f"{source}: {name} was written by a newer ipcbench (extra_info format "
                        f"{version}); upgrade ipcbench (pip install -U ipcbench)")
    _check_numbers(bench, ib, source, name)
    timer = _obj(bench.get("options")).get("timer")
    if timer is not None and timer not in WALL_CLOCK_TIMERS:
        return _failed(case, f"timed with {timer}, not perf_counter: not a wall-clock latency")
    measured = {"samples_ns": _complete_samples(bench, ib), "ops": ib.get("ops"),
                "window_ns": ib.get("window_ns"), "bytes_per_op": ib.get("bytes_per_op", 0),
                "cpu_s": ib.get("cpu_s")}
    if measured["samples_ns"] is not None:
        metrics, noise = summarize(measured)
        stored = measured["samples_ns"]
    elif isinstance(ib.get("metrics"), dict) and isinstance(ib.get("samples_ns"), list):
        metrics, noise, stored = ib["metrics"], ib.get("noise"), ib["samples_ns"]
    else:
        return _failed(case, "no per-operation samples stored (ran with --benchmark-disable?)")
    round_ = {"ok": True, "error": None, "samples_ns": stats.bounded(stored, SAMPLE_CAP),
              "samples_total": ib.get("samples_total", len(stored)),
              **{k: measured[k] for k in ("ops", "window_ns", "bytes_per_op", "cpu_s")},
              "placement": ib.get("placement") or {},
              "pytest_benchmark": {"name": name, "timed": ib.get("timed"), "op": info.get("op"),
                                   "calls": ib.get("calls")}}
    return {"case": case, "status": "ok", "error": None, "metrics": metrics, "noise": noise,
            "rounds": [round_], "wall_s": ib.get("wall_s")}


def _failed(case: dict, error: str) -> dict:
    return {"case": case, "status": "failed", "error": error, "metrics": {}, "noise": None,
            "rounds": [{"ok": False, "error": error}], "wall_s": None}


def _machine(machine_info: dict) -> dict:
    """ipcbench's machine metadata when ``bench/`` stored it, else what pytest-benchmark recorded."""
    ours = _obj(machine_info.get("ipcbench")).get("machine")
    if isinstance(ours, dict) and ours.get("machine_id"):
        return ours
    cpu = _obj(machine_info.get("cpu"))
    node = machine_info.get("node") or "unknown"
    return {"machine_id": node, "hostname": node, "cpu_model": cpu.get("brand_raw"),
            "logical_cores": cpu.get("count"), "usable_cpus": None, "affinity": None,
            "cgroup_cpu_quota": None, "virtualization": None, "cpu_governor": None, "memory_bytes": None,
            "os": machine_info.get("system"), "kernel": machine_info.get("release"), "platform": None,
            "arch": machine_info.get("machine"), "load_average": None}


def _python(machine_info: dict) -> dict:
    ours = _obj(machine_info.get("ipcbench")).get("python")
    if isinstance(ours, dict) and ours.get("python_version"):
        return ours
    return {"python_version": machine_info.get("python_version"),
            "implementation": machine_info.get("python_implementation"),
            "compiler": machine_info.get("python_compiler")}


def from_pytest_benchmark(data: dict, source: str) -> dict:
    """A pytest-benchmark JSON dict (written by ``pytest bench/ --benchmark-json``) -> an ipcbench result
    dict that ``schema.check`` accepts. Benchmarks that did not come from ``bench/`` are left out; a file
    with none of ours is refused with a way forward."""
    benches = data.get("benchmarks")
    if not isinstance(benches, list):
        raise UserError(f"{source}: pytest-benchmark file without a list of benchmarks")
    top = data.get("ipcbench") if isinstance(data.get("ipcbench"), dict) else {}
    cases = [rec for rec in (_case_record(b, source) for b in benches if isinstance(b, dict)) if rec]
    failed = top.get("failed") or []
    if not isinstance(failed, list) or not all(isinstance(f, dict) and isinstance(f.get("case"), dict)
                                               and all(k in f["case"] for k in CASE_KEYS) for f in failed):
        raise UserError(f"{source}: its ipcbench.failed is not a list of {{case, error}} records; the file is "
                        f"damaged or not written by `pytest bench/`")
    for f in failed:
        cases.append(_failed(Case.from_dict(f["case"]).to_dict(), f.get("error") or "failed"))
    if not cases:
        raise UserError(f"{source}: a pytest-benchmark file, but none of its {len(benches)} benchmark(s) came "
                        f"from ipcbench's bench/ suite (no extra_info['ipcbench']); write one with "
                        f"`pytest bench/ --benchmark-json=FILE`")
    machine_info = _obj(data.get("machine_info"))
    machine = _machine(machine_info)
    presets = {ib.get("preset") for ib in (_obj(_obj(b).get("extra_info")).get("ipcbench") for b in benches)
               if isinstance(ib, dict) and isinstance(ib.get("preset"), str)}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "ipcbench_version": _obj(machine_info.get("ipcbench")).get("ipcbench_version") or __version__,
        "machine_id": machine["machine_id"],
        "machine": machine,
        "python": _python(machine_info),
        "run": {"started": data.get("datetime"), "finished": data.get("datetime"), "status": "complete",
                "preset": top.get("preset") or (presets.pop() if len(presets) == 1 else None),
                "front_end": "pytest-benchmark", "pytest_benchmark_version": data.get("version"),
                "rounds": 1, "spec": top.get("spec"), "commit_info": data.get("commit_info")},
        "cases": cases,
    }
