"""The tidy frame by setup, and wide tables of it: pure pandas helpers for findings, figures and the report.

A *setup* is one machine, Python version, start method, placement, payload kind and allocator state
(``SETUP_COLUMNS``):
results of different setups are never mixed in one comparison, line or sentence. ``setups`` splits a frame
into them; ``metric_table`` turns tidy rows (one per case x metric) into one row per case with a column per
metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SETUP_COLUMNS = ["machine_id", "python_version", "start_method", "placement", "payload_kind", "allocator"]
CASE_KEY = ["machine_id", "python_version", "start_method", "placement", "mechanism", "pattern", "payload_kind",
            "payload_bytes", "workers", "result_set"]


def _text(v) -> str:
    return "?" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def setup_label(machine_id, python_version, start_method=None, placement=None, payload_kind=None,
                allocator=None) -> str:
    """``vm-1 · Python 3.11.7 · fork · spread`` ("?" for a value that is not known), then ``numpy payloads``
    for a payload kind other than the default ``bytes`` and ``warm malloc`` for an allocator state other
    than the default ``cold`` (``fresh malloc`` too: files from before ``cold`` existed ran so)."""
    parts = [_text(machine_id), f"Python {_text(python_version)}"]
    for v in (start_method, placement):
        if v is not None:
            parts.append(_text(v))
    if payload_kind is not None and _text(payload_kind) != "bytes":
        parts.append(f"{_text(payload_kind)} payloads")
    if allocator is not None and _text(allocator) != "cold":
        parts.append(f"{_text(allocator)} malloc")
    return " · ".join(parts)


def setups(df: pd.DataFrame, columns: Sequence[str] = SETUP_COLUMNS) -> list[tuple[str, pd.DataFrame]]:
    """Split a frame into (label, part) per setup, in a stable order.

    A setup is one combination of ``columns``. If the same setup comes from several result files, each
    file is its own part (the file name is added to the label): two runs are never averaged silently.
    """
    if df.empty:
        return []
    columns = [c for c in columns if c in df.columns]
    keys = [*columns, "result_set"] if "result_set" in df.columns else list(columns)
    groups = [(tuple(_text(k) for k in key), part)
              for key, part in df.groupby(keys, sort=True, dropna=False, observed=True)]
    n = len(columns)
    count: dict[tuple, int] = {}
    for key, _ in groups:
        count[key[:n]] = count.get(key[:n], 0) + 1
    out = []
    for key, part in groups:
        label = setup_label(**dict(zip(columns, key[:n], strict=True)))
        if count[key[:n]] > 1:
            label += f" · {key[-1].replace(chr(92), '/').rsplit('/', 1)[-1]}"
        out.append((label, part))
    return out


def fill_missing(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``df`` with missing values in ``columns`` (e.g. an unknown Python version) replaced by "?"."""
    missing = [c for c in columns if c in df.columns and df[c].isna().any()]
    if not missing:
        return df
    return df.assign(**{c: df[c].astype(object).where(df[c].notna(), "?") for c in missing})


def metric_table(df: pd.DataFrame, metrics: Sequence[str], index: Sequence[str]) -> pd.DataFrame:
    """Tidy rows -> one row per ``index`` combination with one column per metric (NaN where missing)."""
    part = df[df["metric"].isin(list(metrics))]
    if part.empty:
        return pd.DataFrame(columns=[*index, *metrics])
    part = fill_missing(part, index)       # pivot_table would drop rows whose keys are missing
    wide = part.pivot_table(index=list(index), columns="metric", values="value", aggfunc="first",
                            observed=True).reset_index()
    wide.columns.name = None
    for m in metrics:
        if m not in wide.columns:
            wide[m] = np.nan
    return wide
