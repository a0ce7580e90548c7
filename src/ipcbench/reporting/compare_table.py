"""A ``Comparison`` as text: a terminal table (rich), Markdown, CSV, or escaped HTML (page or fragment).

No statistics here (they are in ``compare``) and no files: every function returns a string or writes to
the stream it is given.
"""

from __future__ import annotations

import math

import pandas as pd

from ..analysis.compare import ALPHA, COLUMNS, MIN_EFFECT, Comparison, case_label
from ..analysis.compare_stats import CONFIDENCE
from ..plan.metrics import format_value, higher_is_better
from ..plan.metrics import get as metric_info
from ..results.formats.csv import without_formulas
from ..units import format_finite

DISPLAY_COLUMNS = ["case", "metric", "base", "other", "ratio", "ci", "p", "verdict"]
HEADERS = {"case": "case", "metric": "metric", "base": "base", "other": "other", "ratio": "other/base",
           "ci": f"{CONFIDENCE:.0%} CI", "p": "p", "verdict": "verdict"}


def verdict(row) -> str:
    """``other 1.30x faster`` for a significant row; otherwise why not (too few samples, < 5 % apart ...)."""
    r = row["ratio"]
    if row["significant"]:
        factor = r if r >= 1 else 1 / r
        if metric_info(row["metric"]).kind == "cpu":
            word = "more CPU" if r > 1 else "less CPU"
        else:
            better = (r > 1) == higher_is_better(row["metric"])
            word = "faster" if better else "slower"
        return f"other {factor:.2f}x {word}"
    if not math.isfinite(row["p_value"]):
        if row["metric"] == "latency_max":
            return "n.s.: not tested (one extreme sample)"
        return "n.s.: too few rounds to test (one a side)"
    if abs(r - 1) < MIN_EFFECT:
        return f"n.s.: < {MIN_EFFECT:.0%} apart"
    if row["p_value"] >= ALPHA:
        return f"n.s.: p >= {ALPHA:g}"
    if not row["q_value"] < ALPHA:
        return f"n.s.: q >= {ALPHA:g} (p = {row['p_value']:.2g}; many cases tested)"
    if not (math.isfinite(row["ratio_ci_low"]) and math.isfinite(row["ratio_ci_high"])):
        return "n.s.: no CI (too few samples)"
    return "n.s.: CI includes 1"


def display_frame(comp: Comparison, metrics=None, significant_only: bool = False) -> pd.DataFrame:
    """Rows to show: strings in ``DISPLAY_COLUMNS`` plus ``other_set``, ``better`` and ``significant``."""
    df = comp.frame
    if metrics is not None:
        df = df[df.metric.isin(list(metrics))]
    if significant_only:
        df = df[df.significant]
    rows = []
    for r in df.to_dict("records"):
        rows.append({
            "other_set": r["other_set"], "significant": bool(r["significant"]), "better": r["better"],
            "case": case_label(r, comp.shown.get(r["other_set"], [])), "metric": r["metric"],
            "base": format_value(r["metric"], r["base"]), "other": format_value(r["metric"], r["other"]),
            "ratio": format_finite(r["ratio"], ".3f"),
            "ci": (f"{r['ratio_ci_low']:.3f}-{r['ratio_ci_high']:.3f}"
                   if math.isfinite(r["ratio_ci_low"]) and math.isfinite(r["ratio_ci_high"]) else "n/a"),
            "p": "<1e-10" if r["p_value"] < 1e-10 else format_finite(r["p_value"], ".2g"), "verdict": verdict(r),
        })
    return pd.DataFrame(rows, columns=["other_set", "significant", "better", *DISPLAY_COLUMNS])


def _notes() -> str:
    return (f"significant = Welch's t-test on per-round values (rounds, not messages, are the evidence) "
            f"gives q < {ALPHA:g} (p adjusted for the number of cases tested, Benjamini-Hochberg), "
            f"|ratio - 1| >= {MIN_EFFECT:.0%} and the {CONFIDENCE:.0%} CI of the ratio excludes 1 "
            f"(rounds per side: n_base/n_other in --format csv)")


def to_csv(comp: Comparison) -> str:
    return without_formulas(comp.frame[COLUMNS]).to_csv(index=False)


# --- terminal table -----------------------------------------------------------------------------------

_GREEN, _RED, _DIM, _RESET = "\033[32m", "\033[31m", "\033[2m", "\033[0m"


def _plain_table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                                  strict=True)))
    return [line(headers), "  ".join("-" * w for w in widths), *(line(r).rstrip() for r in rows)]


def to_table(comp: Comparison, metrics=None, significant_only=False, color: bool = False) -> str:
    """A plain-text table per other side, with the summary; ANSI colours only when ``color``.

    (Plain columns rather than rich: a full result set has thousands of rows, which rich lays out slowly.)
    """
    disp = display_frame(comp, metrics, significant_only)
    out = [f"{'base ' if lb == comp.base else 'other'}: {lb} ({comp.sides.get(lb, '')})"
           for lb in [comp.base, *comp.others]]
    out += comp.summary()
    right = {i for i, c in enumerate(DISPLAY_COLUMNS) if c in ("base", "other", "ratio", "p")}
    for other in comp.others:
        part = disp[disp.other_set == other].to_dict("records")
        out += ["", f"{other} vs {comp.base}" + ("" if part else ": no rows")]
        if not part:
            continue
        lines = _plain_table([HEADERS[c] for c in DISPLAY_COLUMNS], [[r[c] for c in DISPLAY_COLUMNS] for r in part],
                             right)
        if color:
            lines[2:] = [f"{_GREEN if r['better'] == 'other' else _RED}{ln}{_RESET}" if r["significant"] else ln
                         for r, ln in zip(part, lines[2:], strict=True)]
        out += lines
    notes = _notes()
    out += ["", f"{_DIM}{notes}{_RESET}" if color else notes, ""]
    return "\n".join(out)


# --- Markdown -----------------------------------------------------------------------------------------

def _md(text) -> str:
    """A Markdown table cell: no HTML, no pipes, no line breaks."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("\n", " ")


def to_markdown(comp: Comparison, metrics=None, significant_only=False) -> str:
    disp = display_frame(comp, metrics, significant_only)
    out = ["# ipcbench comparison", ""]
    for label in [comp.base, *comp.others]:
        role = "base" if label == comp.base else "other"
        out.append(f"- **{role}**: {_md(label)} ({_md(comp.sides.get(label, ''))})")
    out.append("")
    out += [f"- {_md(line)}" for line in comp.summary()]
    for other in comp.others:
        part = disp[disp.other_set == other]
        out += ["", f"## {_md(other)} vs {_md(comp.base)}", "",
                "| " + " | ".join(HEADERS[c] for c in DISPLAY_COLUMNS) + " |",
                "|" + "|".join("---:" if c in ("base", "other", "ratio", "p") else "---"
                               for c in DISPLAY_COLUMNS) + "|"]
        for r in part.to_dict("records"):
            cells = [_md(r[c]) for c in DISPLAY_COLUMNS]
            if r["significant"]:
                cells[-1] = f"**{cells[-1]}**"
            out.append("| " + " | ".join(cells) + " |")
    out += ["", f"_{_md(_notes())}_", ""]
    return "\n".join(out)


# --- HTML ---------------------------------------------------------------------------------------------

_FRAGMENT = """\
<div class="ipcbench-compare">
<ul class="sides">
{%- for role, label, text in sides %}
  <li><b>{{ role }}</b>: {{ label }} <span class="meta">({{ text }})</span></li>
{%- endfor %}
</ul>
<ul class="summary">
{%- for line in summary %}
  <li>{{ line }}</li>
{%- endfor %}
</ul>
{%- for other, rows in tables %}
<table class="compare">
  <caption>{{ other }} vs {{ base }}</caption>
  <thead><tr>{% for h in headers %}<th scope="col">{{ h }}</th>{% endfor %}</tr></thead>
  <tbody>
  {%- for r in rows %}
    <tr{% if r.significant %} class="better-{{ r.better }}"{% endif %}>
    {%- for c in columns %}<td class="{{ c }}">{{ r[c] }}</td>{% endfor %}</tr>
  {%- else %}
    <tr><td colspan="{{ columns|length }}">no rows</td></tr>
  {%- endfor %}
  </tbody>
</table>
{%- endfor %}
<p class="notes">{{ notes }}</p>
</div>
"""

_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ipcbench comparison: {{ title }}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table.compare { border-collapse: collapse; margin: 1em 0; }
table.compare caption { text-align: left; font-weight: bold; padding: .3em 0; }
table.compare th, table.compare td { border-bottom: 1px solid #ddd; padding: .2em .6em; text-align: left; }
td.base, td.other, td.ratio, td.p { text-align: right; font-variant-numeric: tabular-nums; }
tr.better-other td { background: #e6f4ea; }
tr.better-base td { background: #fce8e6; }
.meta, .notes { color: #666; }
</style>
</head>
<body>
<h1>ipcbench comparison</h1>
{{ fragment }}
</body>
</html>
"""


def _env():
    import jinja2

    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def html_fragment(comp: Comparison, metrics=None, significant_only=False):
    """The comparison as an escaped HTML fragment (``markupsafe.Markup``), e.g. for a report section."""
    from markupsafe import Markup

    disp = display_frame(comp, metrics, significant_only)
    sides = [("base" if lb == comp.base else "other", lb, comp.sides.get(lb, "")) for lb in [comp.base, *comp.others]]
    tables = [(o, disp[disp.other_set == o].to_dict("records")) for o in comp.others]
    html = _env().from_string(_FRAGMENT).render(
        sides=sides, summary=comp.summary(), tables=tables, base=comp.base, columns=DISPLAY_COLUMNS,
        headers=[HEADERS[c] for c in DISPLAY_COLUMNS], notes=_notes())
    return Markup(html)


def to_html(comp: Comparison, metrics=None, significant_only=False) -> str:
    """A standalone page (inline CSS, nothing fetched); every value from the data is escaped."""
    title = f"{', '.join(comp.others)} vs {comp.base}"
    return _env().from_string(_PAGE).render(fragment=html_fragment(comp, metrics, significant_only), title=title)
