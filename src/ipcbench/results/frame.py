"""Result sets -> pandas frames. Pure pandas: no plotting, no statistics beyond reshaping.

* ``tidy``: one row per case x metric, with the public columns ``TIDY_COLUMNS`` (add, never rename) plus
  ``flags`` (noise flags of the case, comma-joined), ``ci_low``/``ci_high`` (the round-level 95 % CI the
  case recorded for the metric, NaN where none), ``result_set`` (which file it came from) and
  ``allocator`` (the run's allocator state, ``cold``, ``warm`` or ``fresh``: ``measure/allocator.py``).
* ``samples``: one row per stored raw sample (seconds), with the case columns, ``round`` and ``result_set``.
* ``failures``: one row per failed case, with its reason.
* ``runs``: one row per result set: machine and run metadata, flattened.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from .formats.pytest_benchmark import from_pytest_benchmark
from .io import read_json
from .pooling import pool_runs
from .schema import (
    CASE_COLUMNS,
    TIDY_COLUMNS,
    allocator_of,
    between_run_of,
    check,
    machine_id_of,
    python_version_of,
)


@dataclass
class Loaded:
    """Frames of loaded result sets. ``samples`` (every stored raw sample; millions of rows for a full
    set) is built on first use; ``samples_where(keep)`` builds only the cases a caller needs."""

    tidy: pd.DataFrame
    _samples: pd.DataFrame | None
    failures: pd.DataFrame
    runs: pd.DataFrame
    sets: list[dict]

    @property
    def samples(self) -> pd.DataFrame:
        if self._samples is None:
            self._samples = samples_frame(self.sets)
        return self._samples

    def samples_where(self, keep) -> pd.DataFrame:
        """Samples of the cases for which ``keep(case_dict)`` is true."""
        return samples_frame(self.sets, keep)


def result_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders (recursively, ``*.json``) and keep files as given; error on anything missing."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*.json") if not q.name.startswith(".")))
        elif p.exists():
            out.append(p)
        else:
            raise UserError(f"{p}: no such file or folder")
    return out


def read_set(path: str | os.PathLike) -> dict:
    """One file -> a checked ipcbench result dict (pytest-benchmark JSON is converted on the way)."""
    data = read_json(path)
    if isinstance(data, dict) and "benchmarks" in data and "schema" not in data:
        data = from_pytest_benchmark(data, str(path))
    if isinstance(data, dict):
        data.pop("_source", None)           # where a set came from is the file's path, never what it says
    data = check(data, str(path))
    data["_source"] = str(path)
    return data


def _case_row(rs: dict, case: dict) -> dict:
    return {
        "machine_id": machine_id_of(rs),
        "python_version": python_version_of(rs),
        **{k: case[k] for k in CASE_COLUMNS[2:]},
    }


def tidy_frame(sets: list[dict]) -> pd.DataFrame:
    rows = []
    for rs in sets:
        for rec in rs["cases"]:
            if rec.get("status") != "ok":
                continue
            base = _case_row(rs, rec["case"])
            allocator = allocator_of(rs)
            between = between_run_of(rs)
            runs = len((rs.get("run") or {}).get("pooled_from") or ()) or 1
            noise = rec.get("noise") or {}
            flags = ",".join(noise.get("flags") or [])
            cis = _metric_cis(rec.get("metrics", {}), noise.get("ci") or {}, between, runs)
            for metric, mv in rec.get("metrics", {}).items():
                lo, hi = cis.get(metric, (np.nan, np.nan))
                rows.append({**base, "metric": metric, "value": mv["value"], "unit": mv["unit"],
                             "flags": flags, "ci_low": lo, "ci_high": hi, "result_set": rs["_source"],
                             "allocator": allocator})
    cols = [*TIDY_COLUMNS, "flags", "ci_low", "ci_high", "result_set", "allocator"]
    df = pd.DataFrame(rows, columns=cols)
    return df.astype({"payload_bytes": "int64", "workers": "int64", "value": "float64", "ci_low": "float64",
                      "ci_high": "float64"})


def _metric_cis(metrics: dict, ci: dict, between: dict | None = None, runs: int = 1
                ) -> dict[str, tuple[float, float]]:
    """The round-level 95 % CIs a case recorded (``noise["ci"]``; schema 1 files have none), by metric;
    throughput_bytes shares throughput_msgs' (bytes/s is msgs/s times the payload). Where the run recorded
    its machine's between-run sd (``between``, see ``schema.between_run_of``), the CI is widened by it
    (divided by the root of the ``runs`` pooled): it then says where another run of this machine would
    land, not only where more rounds of this run would (``round_stats.widen``)."""
    from .round_stats import widen

    out = {m: (float(v[0]), float(v[1])) for m, v in ci.items() if v}
    for m, sd in (between or {}).items():
        if m in out and m in metrics and sd > 0:
            out[m] = widen(float(metrics[m]["value"]), *out[m], sd / math.sqrt(runs))
    msgs, by = metrics.get("throughput_msgs"), metrics.get("throughput_bytes")
    if "throughput_msgs" in out and msgs and by and msgs["value"] > 0:
        scale = by["value"] / msgs["value"]
        out["throughput_bytes"] = (out["throughput_msgs"][0] * scale, out["throughput_msgs"][1] * scale)
    return out


def samples_frame(sets: list[dict], keep=None) -> pd.DataFrame:
    """Built column-wise (one numpy array per column): a full-preset set has millions of samples.
    ``keep(case_dict) -> bool`` limits it to some cases."""
    values, lengths, rounds, bases, sources = [], [], [], [], []
    for rs in sets:
        for rec in rs["cases"]:
            if rec.get("status") != "ok" or (keep is not None and not keep(rec["case"])):
                continue
            base = _case_row(rs, rec["case"])
            for i, rnd in enumerate(rec.get("rounds", [])):
                s = rnd.get("samples_ns") or []
                if not s:
                    continue
                values.append(np.asarray(s, dtype=np.float64))
                lengths.append(len(s))
                rounds.append(i)
                bases.append(base)
                sources.append(rs["_source"])
    cols = [*CASE_COLUMNS, "round", "value", "result_set"]
    if not values:
        return pd.DataFrame(columns=cols)
    n = np.asarray(lengths)
    out = {c: np.repeat(np.asarray([b[c] for b in bases], dtype=object), n) for c in CASE_COLUMNS}
    out["round"] = np.repeat(np.asarray(rounds, dtype=np.int64), n)
    out["value"] = np.concatenate(values) / 1e9
    out["result_set"] = np.repeat(np.asarray(sources, dtype=object), n)
    df = pd.DataFrame(out, columns=cols)
    return df.astype({"payload_bytes": "int64", "workers": "int64"})


def failures_frame(sets: list[dict]) -> pd.DataFrame:
    rows = [{**_case_row(rs, rec["case"]), "error": rec.get("error"), "result_set": rs["_source"]}
            for rs in sets for rec in rs["cases"] if rec.get("status") != "ok"]
    return pd.DataFrame(rows, columns=[*CASE_COLUMNS, "error", "result_set"])


def runs_frame(sets: list[dict]) -> pd.DataFrame:
    rows = []
    for rs in sets:
        m, py, run = rs.get("machine", {}), rs.get("python", {}), rs.get("run", {})
        rows.append({
            "result_set": rs["_source"], "machine_id": rs.get("machine_id"),
            "cpu_model": m.get("cpu_model"), "logical_cores": m.get("logical_cores"),
            "usable_cpus": m.get("usable_cpus"), "cgroup_cpu_quota": m.get("cgroup_cpu_quota"),
            "virtualization": m.get("virtualization"), "kernel": m.get("kernel"), "os": m.get("os"),
            "python_version": py.get("python_version"), "implementation": py.get("implementation"),
            "default_start_method": py.get("default_start_method"), "preset": run.get("preset"),
            "started": run.get("started"), "status": run.get("status"), "cases": len(rs["cases"]),
            "failed": sum(1 for c in rs["cases"] if c.get("status") != "ok"),
        })
    return pd.DataFrame(rows)


def load_sets(paths: Iterable[str | os.PathLike], pool: bool = False) -> Loaded:
    """Result files and folders -> frames. ``pool``: files of one machine and Python version become one
    set whose cases hold the rounds of every file (``pooling.pool_runs``)."""
    files = result_files(paths)
    if not files:
        raise UserError("no result files found (looked for *.json); run `ipcbench run` first")
    sets = [read_set(p) for p in files]
    if pool:
        sets = pool_runs(sets)
    return Loaded(tidy_frame(sets), None, failures_frame(sets), runs_frame(sets), sets)


def load(paths) -> pd.DataFrame:
    """Result files and folders -> the tidy frame (one row per case x metric)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return load_sets(paths).tidy
