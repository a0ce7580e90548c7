"""Hand-built result sets for tests: schema-valid dicts where every number is chosen by the test.

``case_record`` builds one case from raw samples (ns) the way the runner does (through
``ipcbench.stats.summarize``), or with explicit metric values; ``result_set`` wraps cases with metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ipcbench.plan import metrics as metrics_registry
from ipcbench.results import summary as stats
from ipcbench.results.schema import SCHEMA, SCHEMA_VERSION


def case_dict(mechanism="pipe_duplex", pattern="roundtrip", payload_bytes=8, workers=1,
              start_method="fork", payload_kind="bytes", placement="spread") -> dict:
    return {"mechanism": mechanism, "pattern": pattern, "payload_kind": payload_kind,
            "payload_bytes": payload_bytes, "workers": workers, "start_method": start_method,
            "placement": placement}


def rounds_from_samples(samples_ns, rounds=3, bytes_per_op=8, cpu_per_op=None) -> list[dict]:
    """Split samples into ``rounds`` rounds; ops/window derived so throughput = 1 / mean latency."""
    out = []
    for part in np.array_split(np.asarray(samples_ns, dtype=np.int64), rounds):
        part = [int(x) for x in part]
        window = int(sum(part))
        out.append({"samples_ns": part, "ops": len(part), "window_ns": window, "bytes_per_op": bytes_per_op,
                    "cpu_s": None if cpu_per_op is None else cpu_per_op * len(part), "placement": {}})
    return out


def hierarchical_samples(seed, n_rounds, per_round=200, median_ns=50_000, scale=1.0, round_sd=0.05, sigma=0.2):
    """Samples of ``n_rounds`` rounds laid end to end (``case_record(..., rounds=n_rounds)`` splits them back):
    each round has its own level (placement, drift: sd ``round_sd`` on the log scale), then per-message noise
    (``sigma``): the nested structure real runs have."""
    rng = np.random.default_rng(seed)
    levels = np.log(median_ns * scale) + rng.normal(0.0, round_sd, n_rounds)
    return np.concatenate([rng.lognormal(mu, sigma, per_round) for mu in levels]).astype(np.int64)


def case_record(samples_ns=None, metrics: dict | None = None, status="ok", error=None, rounds=3,
                cpu_per_op=None, **case) -> dict:
    c = case_dict(**case)
    if status != "ok":
        return {"case": c, "status": status, "error": error or "boom", "metrics": {}, "noise": None,
                "rounds": [{"ok": False, "error": error or "boom"}], "wall_s": 0.1}
    if samples_ns is None:
        rng = np.random.default_rng(0)
        samples_ns = rng.normal(50_000, 2_000, 1200).astype(int)   # enough for a p99 (1,000)
    rr = rounds_from_samples(samples_ns, rounds, 2 * c["payload_bytes"], cpu_per_op)
    m, noise = stats.summarize(rr)
    for name, value in (metrics or {}).items():      # an explicit value keeps the samples' relative CI
        ci = noise["ci"].get(name)
        if ci and m.get(name):
            noise["ci"][name] = [ci[0] * value / m[name], ci[1] * value / m[name]]
    if metrics:
        m.update(metrics)
    stored = [{"ok": True, "error": None, "samples_total": len(r["samples_ns"]), **r} for r in rr]
    return {"case": c, "status": "ok", "error": None,
            "metrics": {k: {"value": v, "unit": metrics_registry.unit(k)} for k, v in m.items()},
            "noise": noise, "rounds": stored, "wall_s": 0.5}


def result_set(cases: list[dict], machine_id="test-machine", python_version="3.11.7", cpu_model="Test CPU",
               logical_cores=2, preset="smoke") -> dict:
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "ipcbench_version": "0.1.0",
        "machine_id": machine_id,
        "machine": {"machine_id": machine_id, "hostname": "testhost", "cpu_model": cpu_model,
                    "logical_cores": logical_cores, "usable_cpus": logical_cores, "affinity": [0, 1],
                    "cgroup_cpu_quota": None, "virtualization": "kvm", "cpu_governor": None,
                    "cpu_idle": {"driver": "haltpoll", "governor": "haltpoll", "guest_halt_poll_ns": 0},
                    "memory_bytes": 1 << 34, "os": "Linux", "kernel": "6.1.0", "platform": "Linux-6.1",
                    "arch": "x86_64", "load_average": [0.1, 0.1, 0.1]},
        "python": {"python_version": python_version, "implementation": "CPython", "build": ["main", ""],
                   "compiler": "GCC", "executable": "/usr/bin/python3", "gil_disabled": False,
                   "default_start_method": "fork", "start_methods": ["fork", "spawn", "forkserver"],
                   "pickle_default_protocol": 5, "pickle_highest_protocol": 5, "packages": {},
                   "git_commit": None},
        "run": {"started": "2026-11-26T00:00:00+00:00", "finished": "2026-11-26T00:01:00+00:00",
                "status": "complete", "preset": preset, "allocator": "cold"},
        "cases": cases,
    }


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def named_set(cases: list[dict], source="set.json", **kw) -> dict:
    """A result set as ``frame.read_set`` returns it (with ``_source``), without writing a file."""
    data = result_set(cases, **kw)
    data["_source"] = source
    return data


def tidy_of(*sets):
    from ipcbench.results.frame import tidy_frame

    return tidy_frame(list(sets))
