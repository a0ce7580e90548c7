"""The report's comparison section: present when the loaded result sets differ in machine, start method
or Python version.

``analysis.compare_plan.plan`` decides what is compared (machines side by side, start methods on one
machine, Python versions on one machine); ``analysis.compare.compare`` computes each planned comparison,
``plots.compare.comparison_figures`` draws it (ratio plots per mechanism and payload size, where each side
wins), and ``comparison_of`` here adds the summary and the table of the largest significant differences
(``compare_table.html_fragment``). See docs/publishing.md.
"""

from __future__ import annotations

import dataclasses

import matplotlib
import numpy as np
from markupsafe import Markup, escape

from ..analysis.compare import DEFAULT_METRICS, Comparison, Side, compare
from ..analysis.compare_plan import plan, within_budget
from ..plots.compare import comparison_figures
from .compare_table import html_fragment
from .sections import PLAIN_TEXT, Section, figure_svg

MAX_ROWS = 150          # table rows per compared side: the largest significant differences
REPORT_METRICS = ("latency_p50", "throughput_msgs")

WHAT = {
    "machines": "Each machine's result files together, against the machine of the newest run. Cases match "
                "on start method and Python version where a machine holds several of them.",
    "start_methods": "The same machine's cases under each start method, against fork (where it was run).",
    "python_versions": "The same machine's cases under each Python version, against the oldest.",
}


def largest_differences(comp: Comparison, max_rows: int) -> Comparison:
    """``comp`` with its frame cut to the ``max_rows`` significant differences with the largest
    |log ratio| per other side (largest first)."""
    sig = comp.frame[comp.frame.significant].copy()
    sig["_size"] = np.abs(np.log(sig["ratio"].astype(float)))
    top = sig.sort_values("_size", ascending=False).groupby("other_set", sort=False).head(max_rows)
    return dataclasses.replace(comp, frame=top.drop(columns="_size"))


def comparison_of(base_side: Side, others: list[Side], metrics=DEFAULT_METRICS, max_rows: int | None = None,
                  left_out: list[str] = (), id_prefix: str = "compare") -> dict:
    """``others`` against ``base_side``: frame, summary, figures and an HTML table. Returns a dict::

        {"comparison": Comparison, "frame": DataFrame, "summary": [str, ...],
         "figures": [{"id", "title", "alt", "figure"}, ...], "table_html": markupsafe.Markup}

    ``left_out``: labels of sides not compared, named in the summary. ``max_rows`` limits the table to the
    N significant differences with the largest |log ratio| per other set (the figures and the returned
    frame keep every row). Figure ids start with ``id_prefix``.
    """
    comp = compare(base_side, others, metrics)
    with matplotlib.rc_context(PLAIN_TEXT):
        figures = comparison_figures(comp, metrics, id_prefix)
    summary = comp.summary()
    if left_out:
        summary.append(f"{len(left_out)} more not compared here: {', '.join(left_out)} "
                       f"(use `ipcbench compare`)")
    table_comp = comp
    if max_rows is not None:
        table_comp = largest_differences(comp, max_rows)
        summary.append(f"The table lists up to {max_rows} significant differences per compared side, largest "
                       f"first ({int(comp.frame.significant.sum())} significant of {len(comp.frame)} "
                       f"compared); `ipcbench compare` prints them all.")
    return {"comparison": comp, "frame": comp.frame, "summary": summary, "figures": figures,
            "table_html": html_fragment(table_comp, metrics)}


def comparison_sections(loaded) -> list[Section]:
    parts = []
    for p in within_budget(plan(list(loaded.sets))):
        anchor = "compare-" + p.kind.replace("_", "-")
        sec = comparison_of(p.base, p.others, REPORT_METRICS, max_rows=MAX_ROWS, left_out=p.left_out,
                            id_prefix=anchor)
        parts.append(Markup('<h3 id="{}">{}</h3>').format(anchor, escape(p.title)))
        parts.append(Markup("<p>{}</p>").format(escape(WHAT[p.kind])))
        parts.append(Markup('<ul class="compare-summary">'))
        lines = [p.note, *sec["summary"]] if p.note else sec["summary"]
        parts += [Markup("<li>{}</li>").format(escape(line)) for line in lines]
        parts.append(Markup("</ul>"))
        parts += [Markup("<h4>{}</h4>").format(escape(f["title"])) + figure_svg(f["figure"], f["id"], f["alt"])
                  for f in sec["figures"]]
        parts.append(sec["table_html"])
    if not parts:
        return []
    return [Section("comparison", "Comparison between result sets", Markup("").join(parts))]
