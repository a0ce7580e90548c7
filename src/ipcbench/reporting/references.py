"""The report's sections about references and gaps: "Against the floor" (each mechanism's throughput as a
fraction of the best floor of its setup), "Celery beside Pool" (overhead per task and throughput per worker
count), and "Not measured" (mechanisms a run skipped, with the reason it recorded).

The numbers come from ``analysis.references``; this module only turns them into display strings, which
the templates (``references.html.j2``, autoescaped) put on the page. Each ``*_section`` returns None where
it has nothing to show; the figures section then says that no floor was measured (``no_floor_note``).
"""

from __future__ import annotations

import math
import os

import matplotlib
import pandas as pd

from ..analysis.references import (
    BASELINES,
    CELERY,
    FLOORS,
    POOL_LATENCY,
    POOL_THROUGHPUT,
    CeleryTable,
    FloorTable,
    RoundValues,
    celery_tables,
    floor_tables,
)
from ..analysis.setups import setup_label
from ..plan.metrics import format_value
from ..plots.base import NoData, mechanism_sort_key
from ..plots.celery import celery_beside_pool
from ..results.frame import Loaded
from ..units import format_seconds, format_size
from .metadata import _show
from .sections import PLAIN_TEXT, Section, figure_svg

TABLE_TITLES = {"roundtrip": "Round trips (roundtrip), at 1 worker",
                "stream": "One-way delivery (stream; fanin with 1 producer where a mechanism has no stream case)"}
ROLE_NOTE = {"floor": " (floor)", "baseline": " (baseline)", "mechanism": ""}
CELERY_FIGURE_ALT = ("Line charts: left, latency per task (p50, one task at a time) against payload size for celery "
                     "and pool_apply; right, tasks per second against worker count for celery and "
                     "pool_apply_async, one line per payload size; one row per setup.")


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def format_fraction(v: float) -> str:
    """A fraction as a percentage with two significant digits at least: 0.42 -> 42%, 0.0042 -> 0.42%,
    13.6 -> 1,360%."""
    if not _finite(v):
        return "–"
    pct = float(v) * 100
    if pct >= 10:
        return f"{pct:,.0f}%"
    return f"{pct:.2g}%"


def _range(lo: float, hi: float, fmt, source: str) -> str:
    if not (_finite(lo) and _finite(hi)):
        return "no CI"
    return f"{fmt(lo)}–{fmt(hi)}{'†' if source == 'case CIs' else ''}"


def format_factor_x(v: float) -> str:
    """A ratio as a factor with three significant digits: 3.21×, 0.125×."""
    return f"{float(v):.3g}×" if _finite(v) else "–"


# ------------------------------------------------------------------------------------------------
# against the floor
# ------------------------------------------------------------------------------------------------
def _floor_table(rows: pd.DataFrame) -> dict:
    """One table (one setup, one pattern): a row of the best floor per size, then a row per mechanism."""
    sizes = sorted({int(s) for s in rows["payload_bytes"]})
    best = rows[rows["is_floor"].astype(bool)].drop_duplicates("payload_bytes").set_index("payload_bytes")
    floor_row = [f"{best.at[s, 'floor']}: {format_value('throughput_msgs', best.at[s, 'floor_value'])}"
                 if s in best.index else "–" for s in sizes]
    body = []
    order = sorted({(str(m), str(p)) for m, p in zip(rows["mechanism"], rows["pattern"], strict=True)},
                   key=lambda mp: (mechanism_sort_key(mp[0]), mp[1]))
    for mech, pattern in order:
        mine = rows[(rows["mechanism"] == mech) & (rows["pattern"] == pattern)].set_index("payload_bytes")
        cells = []
        for s in sizes:
            if s not in mine.index:
                cells.append({"text": "–", "range": "", "title": "not measured at this size"})
                continue
            r = mine.loc[s]
            if bool(r["is_floor"]):
                cells.append({"text": "floor", "range": "", "title": "the best floor at this size"})
                continue
            cells.append({"text": format_fraction(r["fraction"]),
                          "range": _range(r["fraction_ci_low"], r["fraction_ci_high"], format_fraction, r["ci_from"]),
                          "title": f"{format_value('throughput_msgs', r['value'])} against "
                                   f"{r['floor']}'s {format_value('throughput_msgs', r['floor_value'])}"})
        role = ROLE_NOTE.get(str(mine["role"].iloc[0]), "")
        name = mech + role + (" (fanin, 1 producer)" if pattern == "fanin" else "")
        body.append({"name": name, "cells": cells})
    return {"sizes": [format_size(s) for s in sizes], "floor": floor_row, "rows": body}


def floor_groups(tables: list[FloorTable]) -> list[dict]:
    """Display data of ``analysis.references.floor_tables``: per setup its tables and notes."""
    out = []
    for t in tables:
        parts = []
        for table, title in TABLE_TITLES.items():
            rows = t.fractions[t.fractions["table"] == table] if len(t.fractions) else t.fractions
            if len(rows):
                parts.append({"id": table, "title": title, **_floor_table(rows)})
        out.append({"setup": t.setup, "tables": parts, "notes": list(t.notes)})
    return out


def floor_section(tables: list[FloorTable], macros) -> Section | None:
    if not any(len(t.fractions) for t in tables):
        return None
    return Section("floors", "Against the floor", macros.floors(floor_groups(tables), FLOORS, BASELINES))


def no_floor_note(tables: list[FloorTable]) -> str:
    """The figures section's sentence where no setup has a floor ("" where one has)."""
    if any(len(t.fractions) for t in tables) or not tables:
        return ""
    return (f"No floor ({', '.join(FLOORS)}) was measured in these results, so the figures have no floor lines "
            f"and there is no table of throughput as a fraction of the floor: run the floors in the same "
            f"invocation as the mechanisms (ipcbench run -m ...,{','.join(FLOORS)}).")


# ------------------------------------------------------------------------------------------------
# Celery beside Pool
# ------------------------------------------------------------------------------------------------
def _signed_seconds(v: float) -> str:
    if not _finite(v):
        return "–"
    return ("+" if v > 0 else "") + format_seconds(float(v))


def celery_rows(t: CeleryTable) -> dict:
    latency = [{"payload": format_size(int(r["payload_bytes"])), "workers": int(r["workers"]),
                "celery": format_seconds(r["celery"]), "pool": format_seconds(r["pool"]),
                "difference": _signed_seconds(r["difference"]), "ratio": format_factor_x(r["ratio"]),
                "range": _range(r["ratio_ci_low"], r["ratio_ci_high"], format_factor_x, r["ci_from"])}
               for r in t.latency.to_dict("records")]
    throughput = [{"payload": format_size(int(r["payload_bytes"])), "workers": int(r["workers"]),
                   "celery": format_value("throughput_msgs", r["celery"], with_unit=False),
                   "pool": format_value("throughput_msgs", r["pool"], with_unit=False), "ratio": format_factor_x(r["ratio"]),
                   "range": _range(r["ratio_ci_low"], r["ratio_ci_high"], format_factor_x, r["ci_from"])}
                  for r in t.throughput.to_dict("records")]
    return {"setup": t.setup, "latency": latency, "throughput": throughput, "notes": list(t.notes)}


def celery_section(tables: list[CeleryTable], fig_tidy: pd.DataFrame, skipped: list[dict], macros
                   ) -> Section | None:
    """Tables per setup, the figure (from the figures' frame: at most ``max_setups`` setups), and why
    celery was not measured where another run skipped it. None without celery cases: a run that skipped
    celery (the default presets do) says so under "Not measured"."""
    if not tables:
        return None
    celery_skips = [s for s in skipped if s["mechanism"] == CELERY]
    try:
        with matplotlib.rc_context(PLAIN_TEXT):
            fig = celery_beside_pool(fig_tidy)
        figure = figure_svg(fig, "fig-celery", CELERY_FIGURE_ALT)
    except NoData:                  # its setups are beyond the figures' max_setups: the tables still show
        figure = None
    return Section("celery", "Celery beside Pool",
                   macros.celery([celery_rows(t) for t in tables], figure, CELERY_FIGURE_ALT, celery_skips,
                                 POOL_LATENCY, POOL_THROUGHPUT))


# ------------------------------------------------------------------------------------------------
# not measured
# ------------------------------------------------------------------------------------------------
def _file_name(source) -> str:
    return " + ".join(os.path.basename(p) for p in str(source or "?").split(" + "))


def _text(v, missing: str) -> str:
    text = _show(v)
    return missing if text in ("", "–") else text


def not_measured_rows(sets: list[dict]) -> list[dict]:
    """The mechanisms each result set's run skipped (``run.skipped_mechanisms``: a list of {mechanism,
    reason}, and optionally ``source``: the file, where a set is pooled from several), with the reason as
    recorded. A field of another shape is shown as it is, never dropped."""
    out = []
    for rs in sets:
        run = rs.get("run") if isinstance(rs.get("run"), dict) else {}
        items = run.get("skipped_mechanisms")
        if items is None:
            continue
        if not isinstance(items, list):
            items = [items]
        setup = setup_label(rs.get("machine_id") or (rs.get("machine") or {}).get("machine_id"),
                            (rs.get("python") or {}).get("python_version"))
        for item in items:
            source = rs.get("_source")
            if isinstance(item, dict):
                mech = _text(item.get("mechanism"), "?")
                reason = _text(item.get("reason"), "no reason recorded")
                source = item.get("source") or source       # a set pooled from several files names each one's
            else:
                mech, reason = "?", _text(item, "no reason recorded")
            out.append({"file": _file_name(source), "setup": setup, "mechanism": mech, "reason": reason})
    return out


def not_measured_section(rows: list[dict], macros) -> Section | None:
    if not rows:
        return None
    return Section("not-measured", "Not measured", macros.not_measured(rows))


# ------------------------------------------------------------------------------------------------
def reference_sections(loaded: Loaded, fig_tidy: pd.DataFrame, macros) -> tuple[list[Section], list[Section], str]:
    """(sections after the figures, sections before the failed cases, the figures' no-floor sentence)."""
    rounds = RoundValues(loaded.sets)
    floors = floor_tables(loaded.tidy, rounds) if len(loaded.tidy) else []
    skipped = not_measured_rows(loaded.sets)
    celery = celery_tables(loaded.tidy, rounds) if len(loaded.tidy) else []
    after_figures = [s for s in (floor_section(floors, macros), celery_section(celery, fig_tidy, skipped, macros))
                     if s is not None]
    gaps = [s for s in (not_measured_section(skipped, macros),) if s is not None]
    return after_figures, gaps, no_floor_note(floors)
