"""The report's comparison section: present when the loaded result sets differ in machine, start method
or Python version.

``compare_plan.plan`` decides what is compared (machines side by side, start methods on one machine,
Python versions on one machine); each planned comparison becomes a sub-part of the section through
``figures_compare.comparison_of``: a summary, ratio plots per mechanism and payload size, where each side
wins, and the table of the largest significant differences. See docs/publishing.md.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from .page import Section, figure_svg

MAX_ROWS = 150          # table rows per compared side: the largest significant differences
REPORT_METRICS = ("latency_p50", "throughput_msgs")

WHAT = {
    "machines": "Each machine's result files together, against the machine of the newest run. Cases match "
                "on start method and Python version where a machine holds several of them.",
    "start_methods": "The same machine's cases under each start method, against fork (where it was run).",
    "python_versions": "The same machine's cases under each Python version, against the oldest.",
}


def comparison_sections(loaded) -> list[Section]:
    from ..analysis.compare_plan import plan, within_budget
    from ..plots.compare import comparison_of

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
