"""The parts a report page is made of: ``Section`` (a heading and its body), ``RenderedFigure`` and
``figure_svg`` (a matplotlib Figure as accessible inline SVG). Used by the page (``page``) and by the
sections other modules add to it (``compare``); nothing here knows what a section holds.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import matplotlib
from markupsafe import Markup, escape

_FONT_FAMILY = re.compile(r"font-family: [^;\"]*;? ?")
# Labels come from result files (machine ids, Python versions, mechanism names): drawn as the text they are,
# never parsed as mathtext ("$x^$" in a machine id would stop the report; "50$ and 60$" would be mangled).
PLAIN_TEXT = {"text.parse_math": False}
SVG_RC = {"svg.fonttype": "none", "svg.image_inline": True, **PLAIN_TEXT}


@dataclass(frozen=True)
class Section:
    """One part of the page: ``html`` is the body; a plain ``str`` is escaped, ``Markup`` is used as is."""

    id: str
    title: str
    html: str


@dataclass(frozen=True)
class RenderedFigure:
    id: str
    title: str
    alt: str
    svg: Markup


def figure_svg(fig, fig_id: str, alt: str) -> Markup:
    """A Figure as inline SVG: text kept as text, ids made unique per figure (several SVGs share one
    page), no XML prolog or metadata, ``role="img"`` with a <title> and aria-labelledby for screen readers."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):          # made before PLAIN_TEXT was in force (a caller's own figure)
        text.set_parse_math(False)
    buf = io.StringIO()
    with matplotlib.rc_context({**SVG_RC, "svg.hashsalt": fig_id}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    svg = re.sub(r"\s*<style[^>]*>.*?</style>", "", svg, flags=re.S)
    svg = _FONT_FAMILY.sub("", svg)   # one font stack for all text, set in the page's CSS
    referenced = set(re.findall(r'href="#([^"]+)"', svg)) | set(re.findall(r"url\(#([^)]+)\)", svg))

    def _id(m: re.Match) -> str:
        return f' id="{fig_id}-{m.group(1)}"' if m.group(1) in referenced else ""

    svg = re.sub(r' id="([^"]+)"', _id, svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{fig_id}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{fig_id}-{m.group(1)})", svg)
    root_end = svg.index(">")
    root = svg[:root_end]
    width = re.search(r'width="([\d.]+)pt"', root)
    view_box = re.search(r'viewBox="([^"]+)"', root)
    new_root = (f'<svg id="{escape(fig_id)}" class="fig" role="img" '
                f'aria-labelledby="{escape(fig_id)}-title" viewBox="{view_box.group(1) if view_box else ""}" '
                f'style="max-width:{width.group(1) if width else "100%"}pt">'
                f'<title id="{escape(fig_id)}-title">{escape(alt)}</title>')
    return Markup(new_root + svg[root_end + 1:].strip())
