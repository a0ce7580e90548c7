"""Do two result files and two reports hold the same cases and the same sections?

A check for restructurings that must not change behaviour: run the same preset before and after, build
a report from each, and compare what they hold (not the measured values, which differ run to run):

    git stash / checkout OLD;  ipcbench run --preset smoke -o before.json && ipcbench report before.json -o before/
    git checkout NEW;          ipcbench run --preset smoke -o after.json  && ipcbench report after.json  -o after/
    python tools/same_shape.py before.json after.json before/index.html after/index.html

Prints what differs and exits 1, or prints "same cases, metrics, sections and figures" and exits 0.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from html.parser import HTMLParser


def case_shape(path: str) -> dict[tuple, tuple]:
    """Case key -> (status, metric names) for every case of a result file."""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for rec in data["cases"]:
        c = rec["case"]
        key = (c["mechanism"], c["pattern"], c["payload_kind"], c["payload_bytes"], c["workers"], c["start_method"])
        out[key] = (rec["status"], tuple(sorted(rec.get("metrics") or {})))
    return out


class _Outline(HTMLParser):
    """Headings (h1-h3) and element ids of figures, tables and sections, in page order."""

    def __init__(self):
        super().__init__()
        self.items: list[str] = []
        self._heading: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self._heading, self._text = tag, []
        elif tag in ("section", "figure", "table") and a.get("id"):
            self.items.append(f"{tag}#{a['id']}")

    def handle_data(self, data):
        if self._heading:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == self._heading:
            text = re.sub(r"\s+", " ", "".join(self._text)).strip()
            self.items.append(f"{tag}: {text}")
            self._heading = None


def outline(path: str) -> list[str]:
    parser = _Outline()
    with open(path, encoding="utf-8") as f:
        parser.feed(f.read())
    return parser.items


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before_json")
    ap.add_argument("after_json")
    ap.add_argument("before_html")
    ap.add_argument("after_html")
    args = ap.parse_args(argv)
    problems = []
    a, b = case_shape(args.before_json), case_shape(args.after_json)
    for key in sorted(a.keys() - b.keys()):
        problems.append(f"case only before: {key}")
    for key in sorted(b.keys() - a.keys()):
        problems.append(f"case only after: {key}")
    for key in sorted(a.keys() & b.keys()):
        if a[key] != b[key]:
            problems.append(f"case {key}: before {a[key]}, after {b[key]}")
    oa, ob = outline(args.before_html), outline(args.after_html)
    if oa != ob:
        for item in [x for x in oa if x not in ob]:
            problems.append(f"report item only before: {item}")
        for item in [x for x in ob if x not in oa]:
            problems.append(f"report item only after: {item}")
        if not problems:
            problems.append("report items in a different order")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"same cases ({len(a)}), metrics, sections and figures ({len(oa)} report items)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
