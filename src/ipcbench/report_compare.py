"""The report's comparison section: present when several result sets are loaded.

Each set is compared with the first (sorted by path) through ``figures_compare.comparison_section``:
the ratio table with significance, ratio plots per mechanism and payload size, and where each set wins.
Sets that differ only in start method or Python version are matched across that difference, so the
section then reads as a comparison by start method or by Python version (see docs/publishing.md).
"""

from __future__ import annotations

from markupsafe import Markup, escape

from .report import Section, figure_svg

MAX_OTHERS = 1          # sets compared with the first one on the page; `ipcbench compare` does any number
MAX_ROWS = 150          # table rows per compared set: the largest significant differences
REPORT_METRICS = ("latency_p50", "throughput_msgs")


def comparison_sections(loaded) -> list[Section]:
    from .figures_compare import comparison_section

    sec = comparison_section(loaded, metrics=REPORT_METRICS, max_others=MAX_OTHERS, max_rows=MAX_ROWS)
    if sec is None:
        return []
    parts = [Markup("<ul class=\"compare-summary\">")]
    parts += [Markup("<li>{}</li>").format(escape(line)) for line in sec["summary"]]
    parts.append(Markup("</ul>"))
    parts += [Markup("<h3>{}</h3>").format(escape(f["title"])) + figure_svg(f["figure"], f["id"], f["alt"])
              for f in sec["figures"]]
    parts.append(sec["table_html"])
    return [Section("comparison", "Comparison between result sets", Markup("").join(parts))]
