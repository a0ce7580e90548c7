"""The report in a real browser: headless Chromium loads index.html from file://, runs its script and we
read the DOM back (--dump-dom). The page marks <body data-ready="1"> when its script finished; with
"#selftest" it also clicks every sortable header twice. JavaScript errors show up on stderr as "Uncaught".

Chromium is required (CI installs it with apt-get): without it this test fails, it does not skip.
"""

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from ipcbench.reporting import page as report
from tests.test_report import loaded_of, rich_set

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed for the report's browser test: install it with "
                "`apt-get update && apt-get install -y chromium` (CI does)")


def dump_dom(url: str, tmp_path) -> tuple[str, str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    proc = subprocess.run([browser(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=60)
    return proc.stdout, proc.stderr


def js_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Uncaught" in line or ("CONSOLE" in line and "Error" in line)]


class Dom(HTMLParser):
    def __init__(self, html):
        super().__init__()
        self.body, self.svgs, self.sorted_heads, self.rows = {}, [], [], []
        self._table, self._row, self._cell = None, None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif tag == "svg" and attrs.get("role") == "img":
            self.svgs.append(attrs["id"])
        elif tag == "table":
            self._table = attrs.get("id")
        elif tag == "th" and attrs.get("aria-sort"):
            self.sorted_heads.append((self._table, attrs["aria-sort"]))
        elif tag == "tr" and self._table == "cases-table":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.rows.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    data = rich_set()
    for case in data["cases"]:                       # only the flags set here, so the sort order is known
        if case["noise"]:
            case["noise"]["flags"] = []
    for case, flags in zip(data["cases"][::20], (["noisy"], ["bimodal", "noisy"], ["few_samples"]), strict=False):
        case["noise"]["flags"] = flags
    return report.build_report(loaded_of(tmp, data), tmp / "site")


def test_report_renders_without_errors_and_sorts(site, tmp_path):
    html, stderr = dump_dom(site.resolve().as_uri() + "#selftest", tmp_path)
    assert html.strip(), f"empty page from Chromium; stderr:\n{stderr[-2000:]}"
    assert js_errors(stderr) == []
    dom = Dom(html)
    assert dom.body.get("data-ready") == "1", "the page's script did not finish"
    assert len(dom.svgs) == len(report.FIGURES)
    n_heads = site.read_text().count('<th scope="col"><button type="button">')
    assert int(dom.body["data-selftest-clicks"]) == 2 * n_heads > 0
    # every header clicked twice: the last one of each sortable table ends sorted descending
    assert dom.sorted_heads == [("cases-table", "descending"), ("noise-table", "descending")]
    assert len(dom.rows) > 50
    assert [row[-1] for row in dom.rows[:4]] == ["noisy", "few_samples", "bimodal, noisy", ""]


def test_a_script_error_is_caught(site, tmp_path):
    """The check above can fail: the same page with a broken script has no marker and an Uncaught error."""
    broken = tmp_path / "broken.html"
    broken.write_text(site.read_text().replace('document.body.setAttribute("data-ready", "1");',
                                               'notAFunction(); document.body.setAttribute("data-ready", "1");'))
    html, stderr = dump_dom(broken.as_uri(), tmp_path)
    assert Dom(html).body.get("data-ready") is None
    assert any(re.search(r"Uncaught ReferenceError: notAFunction", line) for line in js_errors(stderr))
