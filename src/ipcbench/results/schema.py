"""The result file: versioned JSON, checked with clear errors and step-wise migrations (I/O in ``io``).

Format history (``schema_version``):
  1 - first version: {schema, schema_version, ipcbench_version, machine, python, run, cases[]}.
      Each case: {case, status ("ok"|"failed"), error, metrics{name: {value, unit}}, noise, rounds[],
      wall_s}. Each round: {ok, error, samples_ns (<= cap, evenly spaced), samples_total, ops, window_ns,
      bytes_per_op, cpu_s, placement}. Times in integer nanoseconds in rounds, seconds in metrics.

Never pickle: a result file must be safe to open from a stranger.
"""

from __future__ import annotations

import os

from ..errors import UserError
from .io import read_json

SCHEMA = "ipcbench-result"
SCHEMA_VERSION = 1

# The tidy export's columns: a public interface (add columns, never rename). CASE_COLUMNS name one case of
# one result set; TIDY_COLUMNS are what `ipcbench export --format csv` writes first (then ``flags``).
CASE_COLUMNS = ["machine_id", "python_version", "start_method", "mechanism", "pattern", "payload_kind",
                "payload_bytes", "workers"]
TIDY_COLUMNS = [*CASE_COLUMNS, "metric", "value", "unit"]

# version -> function turning a dict of that version into version + 1
MIGRATIONS: dict = {}


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
    return data


def load_result(path: str | os.PathLike) -> dict:
    return check(read_json(path), str(path))
