"""Loaded result sets -> one self-contained static HTML page (``index.html``).

The page is built from a list of ``Section`` objects: key findings, figures (inline SVG), the fraction of
the floor and Celery beside Pool where there is data for them (``reporting.references``), any extra
sections, every case in a sortable table, noise warnings, mechanisms a run did not measure, failed cases,
machine and run metadata. Nothing
is fetched from the network: no external CSS, JS, fonts or images, so it works from ``file://`` and any
static host. All text from the data is escaped by Jinja2 (autoescape on).

Hook for other modules (e.g. a comparison when several result sets are loaded)::

    from ipcbench.reporting.page import Section, build_report, figure_svg
    extra = Section("comparison", "Comparison", markup)      # markup: markupsafe.Markup (already escaped)
    build_report(loaded, "reports/", extra_sections=[extra])  # placed after the figures

``figure_svg(fig, id, alt)`` turns a matplotlib Figure into accessible inline SVG for such a section
(both live in ``report.sections``). The comparison section (``report.compare``) is added by ``build_report``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import jinja2
import matplotlib
import numpy as np
import pandas as pd

from .._version import __version__
from ..analysis.answers import answers
from ..analysis.findings import NOISE_FLAGS, Finding, flagged_cases, key_findings
from ..analysis.references import REFERENCES
from ..analysis.setups import CASE_KEY, fill_missing, metric_table, setup_label, setups
from ..errors import UserError
from ..plan.metrics import format_value
from ..plots.dist import DIST_PATTERNS, SMALL_PAYLOAD
from ..plots.figures import FIGURES, NoData
from ..results.frame import Loaded, load_sets
from ..results.io import write_text_atomic
from ..results.summary import FEW_SAMPLES, HIGH_STEAL, NOISY_CV, PACE_LATE, TARGET_CI
from ..units import format_percent, format_ratio, format_size
from .compare import comparison_sections
from .metadata import metadata_rows
from .references import reference_sections
from .sections import PLAIN_TEXT, RenderedFigure, Section, figure_svg

# the metrics of the all-cases table, with their column headings (formats: plan.metrics)
TABLE_METRICS = {"latency_p50": "p50 latency", "latency_p99": "p99 latency", "throughput_msgs": "Throughput (msg/s)",
                 "throughput_bytes": "Throughput (bytes/s)", "cpu_per_msg": "CPU per message", "samples": "Samples"}
FLAG_HELP = {
    "wide_ci": f"the 95 % confidence interval of the p50 latency or throughput, from its rounds, is wider than "
               f"+-{TARGET_CI * 100:g} % (or there was one round): more rounds would tell more",
    "noisy": f"per-round results vary by more than {NOISY_CV * 100:g} % (sd of log values; fresh processes "
             "disagree)",
    "bimodal": "the latency distribution has two or more clear modes (often: same core vs. across cores)",
    "few_samples": f"fewer than {FEW_SAMPLES} samples; p90 and beyond are not reported (p99 needs 1,000, "
                   "p99.9 10,000)",
    "steal": f"in at least one round the hypervisor took more than {HIGH_STEAL * 100:g} % of the CPU time "
             "(steal): the machine's neighbours were busy",
    "busy": "other processes were runnable when at least half of the rounds started (as many as their "
            "CPUs): the machine was not idle",
    "pace_missed": f"stream: in a round's paced phase the producer sent more than {PACE_LATE * 100:g} % of its "
                   "messages over an interval late, so latency_oneway_p50 is not an open-loop figure there",
}
NOISE_ROWS = 300   # the noise table lists this many flagged cases, most severe first
MAX_SETUPS = 4     # figures draw at most this many setups (each one is a row of panels); tables show all


# ------------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------------
def _alt_text(fig, base: str) -> str:
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    panels = list(dict.fromkeys(ax.get_title().replace("\n", ", ") for ax in fig.axes if ax.get_title()))
    text = base
    if legend:
        text += f" Legend: {', '.join(legend)}."
    if panels:
        shown = panels[:6] + ([f"and {len(panels) - 6} more"] if len(panels) > 6 else [])
        text += f" Panels: {'; '.join(shown)}."
    return text


SETUP_KEY = ["machine_id", "python_version", "start_method", "placement", "result_set"]


def _matches(df: pd.DataFrame, key: tuple) -> np.ndarray:
    mask = np.ones(len(df), dtype=bool)
    for col, value in zip(SETUP_KEY, key, strict=True):
        column = df[col]
        mask &= (column.isna() if pd.isna(value) else column == value).to_numpy(dtype=bool)
    return mask


def figure_frames(loaded: Loaded, max_setups: int = MAX_SETUPS) -> tuple[pd.DataFrame, pd.DataFrame, list[str], int]:
    """The tidy and samples frames the figures draw from: at most ``max_setups`` setups (0 = all), the
    first in sorted order; samples only as far as the figures use them. Also the labels of the setups
    drawn and how many there are in all."""
    tidy = loaded.tidy
    # the distributions draw the smallest payload (<= SMALL_PAYLOAD) at the fewest workers of each
    # pattern: build the samples frame for those cases only (the whole of it is millions of rows)
    small = tidy[tidy["pattern"].isin(list(DIST_PATTERNS)) & (tidy["payload_bytes"] <= SMALL_PAYLOAD)]
    groups = small.groupby([*SETUP_KEY, "pattern"], dropna=False, observed=True)
    sizes, workers = set(groups["payload_bytes"].min()), set(groups["workers"].min())
    samples = loaded.samples_where(lambda c: c["pattern"] in DIST_PATTERNS and c["payload_bytes"] in sizes
                                   and c["workers"] in workers)
    keys = list(tidy.groupby(SETUP_KEY, sort=True, dropna=False, observed=True).groups) if len(tidy) else []
    labels = [label for label, _ in setups(tidy)]
    if not max_setups or len(keys) <= max_setups:
        return tidy, samples, labels, len(keys)
    keep = keys[:max_setups]
    tidy = tidy[np.logical_or.reduce([_matches(tidy, k) for k in keep])]
    if len(samples):
        samples = samples[samples["result_set"].isin([k[-1] for k in keep]).to_numpy(dtype=bool)]
        samples = samples[np.logical_or.reduce([_matches(samples, k) for k in keep])]
    return tidy, samples, [label for label, _ in setups(tidy)], len(keys)


def render_figures(tidy: pd.DataFrame, samples: pd.DataFrame) -> tuple[list[RenderedFigure], list[tuple[str, str]]]:
    """Every figure in ``FIGURES`` that has data, and (title, reason) for those skipped."""
    done, skipped = [], []
    for spec in FIGURES:
        try:
            with matplotlib.rc_context(PLAIN_TEXT):
                fig = spec.make(tidy if spec.source == "tidy" else samples)
        except NoData as exc:
            skipped.append((spec.title, str(exc)))
            continue
        alt = _alt_text(fig, spec.alt)
        done.append(RenderedFigure(spec.id, spec.title, alt, figure_svg(fig, spec.id, alt)))
        del fig
    return done, skipped


# ------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------
def _num(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _cell(text: str, sort=None) -> tuple[str, str]:
    """(shown text, sort key) of one table cell; the sort key is a number, or empty to sort as text."""
    value = _num(sort)
    return (text, "" if value is None else f"{value:.7g}")


def _metric_cell(metric: str, v) -> tuple[str, str]:
    """A metric's value as the table shows it (its unit is in the column heading), sorted by the number."""
    value = _num(v)
    return _cell(format_value(metric, value, with_unit=False, missing="–"), value)


def _varying(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c in df.columns and df[c].astype(str).nunique() > 1]


def case_rows(tidy: pd.DataFrame) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Header and rows (cells of (text, sort key)) of the all-cases table: one row per case."""
    key = [c for c in CASE_KEY if c in tidy.columns]
    wide = metric_table(tidy, TABLE_METRICS, [*key, "flags"])
    setup_cols = _varying(wide, ["machine_id", "python_version", "start_method", "placement", "result_set"])
    names = {"machine_id": "Machine", "python_version": "Python", "start_method": "Start method",
             "placement": "Placement", "result_set": "Result file"}
    header = [names[c] for c in setup_cols] + ["Mechanism", "Pattern", "Payload", "Workers",
                                               *TABLE_METRICS.values(), "Flags"]
    wide = wide.sort_values(["pattern", "mechanism", "payload_bytes", "workers", *setup_cols])
    rows = []
    for r in wide.to_dict("records"):
        rows.append([_cell(str(r[c])) for c in setup_cols] + [
            _cell(str(r["mechanism"])), _cell(str(r["pattern"])),
            _cell(format_size(int(r["payload_bytes"])), r["payload_bytes"]), _cell(str(r["workers"]), r["workers"]),
            *(_metric_cell(m, r[m]) for m in TABLE_METRICS),
            _cell(str(r["flags"] or "").replace(",", ", ")),
        ])
    return header, rows


def noise_rows(tidy: pd.DataFrame, limit: int = NOISE_ROWS) -> tuple[list[dict], int]:
    """Flagged cases, most severe first (most flags, then widest round spread), at most ``limit`` of them;
    and how many there are in all."""
    key = [c for c in CASE_KEY if c in tidy.columns]
    tidy = fill_missing(tidy, key)
    flagged = flagged_cases(tidy)
    if flagged.empty:
        return [], 0
    spreads = metric_table(tidy, ["latency_round_spread", "throughput_round_spread", "samples"], key)
    merged = flagged.drop(columns=["metric", "value", "unit"]).merge(spreads, how="left", on=key)
    merged["n_flags"] = merged["flags"].astype(str).str.count(",") + 1
    merged["worst"] = merged[["latency_round_spread", "throughput_round_spread"]].max(axis=1).fillna(0)
    merged = merged.sort_values(["n_flags", "worst", "pattern", "mechanism", "payload_bytes", "workers"],
                                ascending=[False, False, True, True, True, True])
    out = []
    for r in merged.head(limit).to_dict("records"):
        spread = [_num(r.get("latency_round_spread")), _num(r.get("throughput_round_spread"))]
        out.append({"setup": setup_label(r["machine_id"], r["python_version"], r["start_method"], r.get("placement")),
                    "mechanism": r["mechanism"], "pattern": r["pattern"],
                    "payload": format_size(int(r["payload_bytes"])), "workers": int(r["workers"]),
                    "flags": [f for f in str(r["flags"]).split(",") if f],
                    "spread": ", ".join(f"{w} {format_percent(s)}" for w, s in zip(("latency", "throughput"), spread,
                                                                                    strict=True)
                                        if s is not None) or "–",
                    "samples": format_value("samples", _num(r.get("samples")), missing="–")})
    return out, len(merged)


def answer_groups(tidy: pd.DataFrame) -> list[tuple[str, list[dict]]]:
    """The answer table per setup, as display strings (escaped by the template)."""
    groups: dict[str, list[dict]] = {}
    for r in answers(tidy).to_dict("records"):
        if not math.isfinite(r["factor_low"]):
            rng = "no CI"
        elif r["factor_high"] > 100 or r["factor_low"] < 0.01:
            rng = "CI too wide to say"
        else:
            rng = f"{format_ratio(r['factor_low'])}–{format_ratio(r['factor_high'])}"
        groups.setdefault(r["setup"], []).append({
            "question": r["question"], "payload": format_size(int(r["payload_bytes"])),
            "workers": int(r["workers"]), "clear": bool(r["clear"]),
            "use": r["use"] if r["clear"] else "no clear winner",
            "detail": (f"{r['runner_up']} is {format_ratio(r['factor'])} worse ({rng})" if r["clear"] else
                       f"{r['leader']} leads {r['runner_up']} by {format_ratio(r['factor'])} ({rng}); "
                       f"their 95 % CIs overlap")})
    return list(groups.items())


def failure_rows(failures: pd.DataFrame) -> list[dict]:
    out = []
    for r in failures.sort_values(["pattern", "mechanism", "payload_bytes", "workers"]).to_dict("records"):
        out.append({"setup": setup_label(r["machine_id"], r["python_version"], r["start_method"], r.get("placement")),
                    "mechanism": r["mechanism"], "pattern": r["pattern"],
                    "payload": format_size(int(r["payload_bytes"])), "workers": int(r["workers"]),
                    "error": str(r["error"] or "no reason recorded")})
    return out


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("ipcbench.reporting", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


def group_findings(findings: list[Finding], several_setups: bool) -> list[tuple[str | None, list[Finding]]]:
    """Findings under one heading per setup (findings about everything first, as "All results"); with a
    single setup, one list without headings."""
    if not several_setups:
        return [(None, list(findings))] if findings else []
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.setup or "All results", []).append(f)
    overall = groups.pop("All results", [])
    return ([("All results", overall)] if overall else []) + list(groups.items())


def build_sections(loaded: Loaded, extra_sections: Sequence[Section] = (), max_setups: int = MAX_SETUPS
                   ) -> list[Section]:
    """The page's sections in order; the floor and Celery sections (where there is something to show), then
    ``extra_sections``, come right after the figures; "Not measured" (where a run skipped a mechanism)
    comes before the failed cases."""
    env = _env()
    macros = env.get_template("sections.html.j2").module
    tidy, samples, drawn, n_setups = figure_frames(loaded, max_setups)
    figs, skipped = render_figures(tidy, samples)
    after_figures, gaps, floor_note = reference_sections(loaded, tidy, env.get_template("references.html.j2").module)
    header, rows = case_rows(loaded.tidy)
    meta_header, meta_rows = metadata_rows(loaded.sets)
    # the floors and the baseline are what a mechanism is held against, not choices: no answer names them
    contenders = loaded.tidy[~loaded.tidy["mechanism"].isin(REFERENCES)]
    findings = key_findings(contenders, loaded.failures)
    return [
        Section("answer", "Which mechanism to use", macros.answer(answer_groups(contenders))),
        Section("findings", "Key findings", macros.findings(group_findings(findings, len(setups(loaded.tidy)) > 1))),
        Section("figures", "Figures", macros.figures(figs, skipped, drawn, n_setups, floor_note)),
        *after_figures,
        *extra_sections,
        Section("cases", "All cases", macros.cases(header, rows)),
        Section("noise", "Noise warnings", macros.noise(*noise_rows(loaded.tidy), FLAG_HELP, NOISE_FLAGS)),
        *gaps,
        Section("failures", "Failed cases", macros.failures(failure_rows(loaded.failures))),
        Section("metadata", "Machines and runs", macros.metadata(meta_header, meta_rows)),
    ]


def render_html(loaded: Loaded, extra_sections: Sequence[Section] = (), max_setups: int = MAX_SETUPS) -> str:
    """The whole page as a string (no file is read or written besides the templates)."""
    if loaded.tidy.empty and loaded.failures.empty:
        raise UserError("the result files hold no cases; nothing to report")
    sections = build_sections(loaded, extra_sections, max_setups)
    machines = sorted({str(m) for m in loaded.runs["machine_id"]}) if len(loaded.runs) else []
    n_cases = len(loaded.tidy.drop_duplicates([c for c in CASE_KEY if c in loaded.tidy.columns]))
    summary = {"sets": len(loaded.sets), "cases": n_cases + len(loaded.failures), "failed": len(loaded.failures),
               "machines": machines}
    return _env().get_template("page.html.j2").render(sections=sections, summary=summary, version=__version__)


def build_report(loaded: Loaded, out_dir: str | os.PathLike, extra_sections: Sequence[Section] = (),
                 max_setups: int = MAX_SETUPS) -> Path:
    """Write ``out_dir/index.html`` and return its path. Figures draw at most ``max_setups`` setups
    (machine, Python, start method; 0 = all); findings and tables always cover everything loaded."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; give a folder for the report (-o DIR)")
    html = render_html(loaded, [*comparison_sections(loaded), *extra_sections], max_setups)
    try:
        target = out / "index.html"
        write_text_atomic(target, html)
    except OSError as exc:
        raise UserError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return target


def report(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
           extra_sections: Sequence[Section] = (), max_setups: int = MAX_SETUPS, pool: bool = True) -> Path:
    """Result files and folders -> ``out_dir/index.html``. ``pool``: repeated runs of one machine and
    Python version are pooled into one set (``results.pooling``); False shows each file on its own."""
    return build_report(load_sets(paths, pool=pool), out_dir, extra_sections, max_setups)


__all__ = ["Section", "RenderedFigure", "build_report", "build_sections", "case_rows", "figure_svg",
           "metadata_rows", "render_figures", "render_html", "report"]
