"""Hostile and bad input, in one place (issue 14, item 5).

Every way a stranger's file or a careless command line can go wrong, with the exact outcome:

* a. damaged, foreign or future result files through the real CLI (report, compare, export, aa): one line
  on stderr starting "ipcbench: error:", exit status 2, no traceback, nothing written;
* b. HTML and script in every string a result file (or a pytest-benchmark file) carries into a report or a
  comparison page: escaped where it is shown, never live markup anywhere;
* c. absurd values for ``ipcbench run``: refused in one line with exit status 2 before anything is measured
  or written;
* d. loading, reporting and exporting never unpickle or evaluate what a file holds.

(The first few of each kind live beside their command in test_cli.py, test_schema.py and test_report.py;
this module holds the rest, and the cross-cutting checks.)
"""

from __future__ import annotations

import ast
import base64
import builtins
import copy
import json
import os
import pickle
import subprocess
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ipcbench.cli import main
from ipcbench.results.schema import SCHEMA_VERSION
from tests.factories import case_record, result_set, write

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "ipcbench"
PREFIXES = ("ipcbench: error: ", "ipcbench run: error: ")    # a UserError; an argparse usage error


def call(args: list[str], capsys) -> tuple[int, str, str]:
    """``ipcbench ARGS`` in this process: (exit status, stdout, stderr); argparse's exit counts as a status."""
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc: int, err: str, *messages: str) -> None:
    """Exit status 2 and one line on stderr that says what is wrong; never a traceback."""
    assert rc == 2, (rc, err)
    assert err.startswith(PREFIXES), err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    for message in messages:
        assert message in err, (message, err)


def cli_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def good_set(**kw) -> dict:
    return result_set([case_record(), case_record(mechanism="queue")], **kw)


# ================================================================================================
# a. bad result files through the real CLI
# ================================================================================================
def _with(**changes) -> str:
    """A good result file as JSON text with top-level keys changed (a value of ... removes the key)."""
    data = good_set()
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


def _case_changed(change) -> str:
    """A good result file as JSON text with its first case record changed by ``change(record)``."""
    data = good_set()
    change(data["cases"][0])
    return json.dumps(data)


NOT_INT = "result file has no integer schema_version"
NOT_OURS = 'not an ipcbench result file (no "schema": "ipcbench-result")'
DAMAGED = "the file is damaged or not written by ipcbench"
BIG_INT = "1" * 5000           # more digits than Python 3.11+ turns into an int (sys.get_int_max_str_digits)

BAD_FILES = {
    # --- versions
    "version 0": (_with(schema_version=0), f"schema_version 0 cannot be migrated to {SCHEMA_VERSION}; re-run"),
    "version -1": (_with(schema_version=-1), f"schema_version -1 cannot be migrated to {SCHEMA_VERSION}; re-run"),
    "version '3' (text)": (_with(schema_version="3"), NOT_INT),
    "version 3.5": (_with(schema_version=3.5), NOT_INT),
    "version true": (_with(schema_version=True), NOT_INT),            # bool is an int to Python, not to us
    "version 99 (newer)": (_with(schema_version=99), "schema_version 99 is newer than this ipcbench understands "
                                                     f"({SCHEMA_VERSION}); upgrade ipcbench (pip install -U ipcbench)"),
    "version missing": (_with(schema_version=...), NOT_INT),
    "version null": (_with(schema_version=None), NOT_INT),
    # --- not ours, or not JSON at all
    "schema of another tool": (_with(schema="pyperf"), NOT_OURS),
    "no schema field": (_with(schema=...), NOT_OURS),
    "a list at top level": ("[1, 2, 3]", NOT_OURS),
    "a number at top level": ("42", NOT_OURS),
    "text at top level": ('"ipcbench-result"', NOT_OURS),
    "null at top level": ("null", NOT_OURS),
    "empty file": ("", "not valid JSON (truncated or not a result file?): Expecting value at line 1"),
    "binary garbage": (b"\x80\x81\xfe\xff\x00\x89PNG\r\n\x1a\n" + bytes(range(256)),
                       "cannot read ('utf-8' codec can't decode byte 0x80"),
    "nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, "not a result file (JSON nested too deeply to read)"),
    "a 5,000-digit number": ('{"schema": "ipcbench-result", "schema_version": ' + BIG_INT + ', "cases": []}',
                             "not a result file (a number with too many digits to read)"
                             if hasattr(sys, "get_int_max_str_digits") else "is newer than this ipcbench"),
    # --- cases
    "cases an object": (_with(cases={"0": {}}), "result file has no list of cases"),
    "cases text": (_with(cases="all of them"), "result file has no list of cases"),
    "cases missing": (_with(cases=...), "result file has no list of cases"),
    "a case record with missing dimensions": (
        _with(cases=[{"case": {"mechanism": "queue"}, "status": "ok"}]),
        "case 1 has no start_method, pattern, payload_kind, payload_bytes, workers, placement; " + DAMAGED),
    "a case record that is a number": (_with(cases=[7]), "case 1 has no start_method, mechanism, pattern, "),
    "a case whose case is a list": (_case_changed(lambda r: r.update(case=["queue"])), "case 1 has no "),
    # --- fields of the wrong kind, which readers would trip over deep inside pandas or matplotlib
    "payload_bytes text": (_case_changed(lambda r: r["case"].update(payload_bytes="8")),
                           "case 1: payload_bytes is text, not a whole number of bytes, 0 or more; " + DAMAGED),
    "payload_bytes negative": (_case_changed(lambda r: r["case"].update(payload_bytes=-5)),
                               "case 1: payload_bytes is -5, not a whole number of bytes, 0 or more"),
    "payload_bytes 8.5": (_case_changed(lambda r: r["case"].update(payload_bytes=8.5)),
                          "case 1: payload_bytes is 8.5, not a whole number of bytes"),
    "payload_bytes 10**30": (_case_changed(lambda r: r["case"].update(payload_bytes=10**30)),
                             "case 1: payload_bytes is a number of 31 characters, not a whole number of bytes"),
    "workers null": (_case_changed(lambda r: r["case"].update(workers=None)),
                     "case 1: workers is null, not a whole number, 1 or more"),
    "workers 0": (_case_changed(lambda r: r["case"].update(workers=0)), "case 1: workers is 0, not a whole number"),
    "mechanism a number": (_case_changed(lambda r: r["case"].update(mechanism=7)),
                           "case 1: mechanism is 7, not a name"),
    "start_method a list": (_case_changed(lambda r: r["case"].update(start_method=["fork"])),
                            "case 1: start_method is a list, not a name"),
    "an extra dimension that is a list": (_case_changed(lambda r: r["case"].update(size=[8])),
                                          "case 1: case.size is a list, not text or a number"),
    "status a number": (_case_changed(lambda r: r.update(status=3)), 'case 1: status is 3, not text ("ok" or'),
    "metrics a list": (_case_changed(lambda r: r.update(metrics=[])), "case 1: metrics is a list, not an object"),
    "metrics null": (_case_changed(lambda r: r.update(metrics=None)), "case 1: metrics is null, not an object"),
    "a metric value text": (_case_changed(lambda r: r["metrics"]["latency_p50"].update(value="fast")),
                            "case 1: metrics.latency_p50.value is text, not a number"),
    "a metric a number": (_case_changed(lambda r: r["metrics"].update(latency_p50=5)),
                          "case 1: metrics.latency_p50 is 5, not an object with value and unit"),
    "noise text": (_case_changed(lambda r: r.update(noise="loud")), "case 1: noise is text, not an object"),
    "noise flags text": (_case_changed(lambda r: r["noise"].update(flags="noisy")),
                         "case 1: noise.flags is text, not a list"),
    "a CI of three numbers": (_case_changed(lambda r: r["noise"]["ci"].update(latency_p50=[1, 2, 3])),
                              "case 1: noise.ci.latency_p50 is a list, not a [low, high] pair of numbers or null"),
    "rounds text": (_case_changed(lambda r: r.update(rounds="many")), "case 1: rounds is text, not a list"),
    "a round a number": (_case_changed(lambda r: r["rounds"].__setitem__(1, 4)),
                         "case 1: rounds[1] is 4, not an object"),
    "samples text": (_case_changed(lambda r: r["rounds"][0]["samples_ns"].__setitem__(2, "a")),
                     "case 1: rounds[0].samples_ns[2] is text, not a whole number of nanoseconds, 0 or more"),
    "samples negative": (_case_changed(lambda r: r["rounds"][0]["samples_ns"].__setitem__(0, -1)),
                         "case 1: rounds[0].samples_ns[0] is -1, not a whole number of nanoseconds"),
    "a measured round without samples": (_case_changed(lambda r: r["rounds"][0].pop("samples_ns")),
                                         "case 1: rounds[0].samples_ns is null, not a list of samples"),
    "round ops text": (_case_changed(lambda r: r["rounds"][0].update(ops="12")),
                       "case 1: rounds[0].ops is text, not a finite number"),
    "round samples_total Infinity": (_case_changed(lambda r: r["rounds"][0].update(samples_total=float("inf"))),
                                     "case 1: rounds[0].samples_total is inf, not a finite number"),
    "rounds null": (_case_changed(lambda r: r.update(rounds=None)), "case 1: rounds is null, not a list"),
    "machine a list": (_with(machine=[]), "machine is a list, not an object; " + DAMAGED),
    "python text": (_with(python="3.12"), "python is text, not an object"),
    "run null": (_with(run=None), "run is null, not an object"),
    "machine_id a number": (_with(machine_id=42), "machine_id is 42, not text"),
    "machine_id an object": (_with(machine_id={"a": 1}), "machine_id is an object, not text"),
    "system_checks an object": (json.dumps({**good_set(), "machine": {**good_set()["machine"],
                                                                       "system_checks": {"a": 1}}}),
                                "machine.system_checks is an object, not a list"),
}


def _commands(bad: Path, good: Path, out: Path) -> dict[str, list[str]]:
    return {"report": ["report", str(bad), "-o", str(out / "site")],
            "compare": ["compare", str(good), str(bad), "--format", "html", "-o", str(out / "c.html")],
            "compare (as base)": ["compare", str(bad), str(good), "-o", str(out / "c.txt")],
            "export": ["export", str(bad), "-o", str(out / "r.csv")],
            "export pyperf": ["export", str(bad), "--format", "pyperf", "-o", str(out / "p.json")],
            "aa": ["aa", str(good), str(bad)]}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_result_files_are_one_line_and_exit_2(tmp_path, capsys, name):
    content, message = BAD_FILES[name]
    bad = tmp_path / "bad.json"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    good = write(tmp_path / "good.json", good_set())
    out = tmp_path / "out"
    for command, args in _commands(bad, good, out).items():
        rc, stdout, err = call(args, capsys)
        assert_user_error(rc, err, f"{bad}: ", message)
        assert stdout == "", command
        assert not out.exists(), f"{command} wrote {sorted(out.rglob('*'))}"


@pytest.mark.parametrize("name, command", [("binary garbage", "report"), ("nested 100,000 deep", "export"),
                                           ("version 99 (newer)", "compare")])
def test_bad_files_through_a_real_process(tmp_path, name, command):
    """The installed entry point, in its own process: the same one line, status 2 (not 1, as a crash)."""
    content, message = BAD_FILES[name]
    bad = tmp_path / "bad.json"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    good = write(tmp_path / "good.json", good_set())
    args = _commands(bad, good, tmp_path / "out")[command]
    proc = subprocess.run([sys.executable, "-m", "ipcbench", *args], capture_output=True, text=True,
                          env=cli_env(), timeout=120)
    assert_user_error(proc.returncode, proc.stderr, message)
    assert proc.stdout == "" and not (tmp_path / "out").exists()


def test_a_file_name_with_a_newline_still_gives_one_line(tmp_path, capsys):
    bad = tmp_path / "two\nlines\x1b[31m.json"
    bad.write_text("")
    rc, _, err = call(["export", str(bad)], capsys)
    assert_user_error(rc, err, "not valid JSON")
    assert "two\\nlines\\x1b[31m.json" in err and "\x1b" not in err


def test_a_bad_file_among_good_ones_names_the_bad_one(tmp_path, capsys):
    """In a folder of result files, one damaged file stops the command and is named; the good ones are not."""
    folder = tmp_path / "results" / "m"
    write(folder / "a.json", good_set())
    (folder / "b.json").write_text(BAD_FILES["samples text"][0])
    write(folder / "c.json", good_set())
    rc, _, err = call(["report", str(tmp_path / "results"), "-o", str(tmp_path / "site")], capsys)
    assert_user_error(rc, err, f"{folder / 'b.json'}: case 1: rounds[0].samples_ns[2] is text")
    assert "a.json" not in err and "c.json" not in err


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
def test_absurd_but_well_formed_numbers_do_not_stop_a_command(tmp_path, capsys):
    """Round values of 1e308 s and 1e-300 s are numbers, so they load; the statistics and the figures must
    not overflow (math.exp of a log ratio near 1,400 raised OverflowError in compare, aa and the report;
    the comparison figure's axis of a ratio of 2**-1009 raised it in the report)."""
    def absurd(machine_id: str, values: list[float]) -> dict:
        data = result_set([case_record(mechanism="queue"), case_record(mechanism="pipe_duplex")],
                          machine_id=machine_id)
        for rec in data["cases"]:
            rec["noise"]["round_p50_s"] = rec["noise"]["round_throughput"] = values
            rec["metrics"]["latency_p50"]["value"] = rec["metrics"]["throughput_msgs"]["value"] = values[0]
        return data

    a = write(tmp_path / "a.json", absurd("a", [1e308, 1e-300, 1e-9]))
    b = write(tmp_path / "b.json", absurd("b", [1e-300, 1e-300, 1e-300]))
    again = write(tmp_path / "again" / "a.json", absurd("a", [1e-300, 2e-300, 1e300]))
    tiny = good_set(machine_id="c")                       # a recorded p50 of 1e-308 s: a ratio of 2**-1009
    tiny["cases"][0]["metrics"]["latency_p50"]["value"] = 1e-308
    c = write(tmp_path / "c.json", tiny)
    for args, statuses in ((["compare", str(a), str(b)], (0,)), (["aa", str(a), str(again)], (0, 1)),
                           (["report", str(a), str(b), str(again), "-o", str(tmp_path / "site"), "-q"], (0,)),
                           (["report", str(c), str(b), "-o", str(tmp_path / "site2"), "-q"], (0,))):
        rc, _, err = call(args, capsys)
        assert rc in statuses, (args[0], err)
        assert "Traceback" not in err and "error" not in err, (args[0], err)


def test_odd_metadata_values_are_shown_not_crashed_on(tmp_path, capsys):
    """Metadata is only shown, so any JSON value loads: NaN and Infinity (Python's json reads them), an
    object nested 500 deep. The report shows them (memory of Infinity bytes used to raise OverflowError,
    a deep object RecursionError); the pyperf export leaves non-finite numbers out (NaN != NaN made pyperf
    call the runs of one case incompatible)."""
    data = good_set()
    deep: dict = {}
    node = deep
    for _ in range(500):
        node["pkg"] = {}
        node = node["pkg"]
    data["machine"].update(memory_bytes=float("inf"), hostname=float("nan"), cpu_model=float("nan"),
                           logical_cores=float("nan"), load_average=[float("inf"), float("-inf")])
    data["python"]["packages"] = deep
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))                  # NaN and Infinity: JSON as Python writes it
    rc, _, err = call(["report", str(path), "-o", str(tmp_path / "site")], capsys)
    assert rc == 0, err
    html = (tmp_path / "site" / "index.html").read_text()
    assert "<th scope=\"row\">packages</th><td>pkg pkg pkg pkg pkg pkg pkg pkg pkg …</td>" in html
    assert "<th scope=\"row\">memory</th><td>–</td>" in html
    rc, _, err = call(["export", str(path), "--format", "pyperf", "-o", str(tmp_path / "p.json")], capsys)
    assert rc == 0, err
    assert "NaN" not in (tmp_path / "p.json").read_text()


def test_a_file_cannot_choose_its_own_source_name(tmp_path, capsys):
    """``_source`` is ipcbench's in-memory note of the file a set came from: a file that carries one is
    still named by its path (a list there would otherwise break grouping by file)."""
    from ipcbench.results.frame import read_set

    data = good_set()
    data["_source"] = ["not", "a", "path"]
    path = write(tmp_path / "r.json", data)
    assert read_set(path)["_source"] == str(path)
    rc, _, err = call(["report", str(path), "-o", str(tmp_path / "site")], capsys)
    assert rc == 0, err
    html = (tmp_path / "site" / "index.html").read_text()
    assert f"<td>{path}</td>" in html and "&#39;not&#39;" not in html


# ================================================================================================
# b. HTML and script in every string that reaches a page
# ================================================================================================
def evil(tag: str) -> str:
    """Markup that would run if a page showed it unescaped; ``tag`` says which field it came from."""
    return f"{tag}<script>alert(1)</script><img src=x onerror=alert(1)><a href=javascript:alert(1)>x</a>"


def escaped(tag: str) -> str:
    """``evil(tag)`` as an escaped page shows it (Jinja2, markupsafe and matplotlib's SVG agree here)."""
    return (f"{tag}&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
            f"&lt;a href=javascript:alert(1)&gt;x&lt;/a&gt;")


RAW = ("<script>alert", "<img src=x", "onerror=alert(1)>", "<a href=javascript")


class Markup(HTMLParser):
    """The elements and attributes of a page, as a browser would see them."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def assert_inert(html: str, own_scripts: int) -> None:
    """No injected markup is live: only the page's own scripts, no images, no event handlers, no
    javascript: links."""
    for raw in RAW:
        assert raw not in html, raw
    tags = Markup(html).tags
    assert sum(t == "script" for t, _ in tags) == own_scripts
    assert not [t for t, _ in tags if t in ("img", "iframe", "object", "embed")]
    handlers = [(t, k) for t, attrs in tags for k in attrs if k.lower().startswith("on")]
    assert not handlers, handlers
    links = [v for _, attrs in tags for k, v in attrs.items() if k in ("href", "src", "xlink:href")]
    assert not [v for v in links if v and v.strip().lower().startswith(("javascript:", "data:text/html"))]


# Every string of a result set's metadata, by path; True where the report shows it (the "Machines and
# runs" table, setup labels, headings), False where it is kept in the file but never shown (machine.machine_id:
# the top-level machine_id wins).
REPORT_FIELDS = {
    ("machine_id",): True, ("machine", "machine_id"): False, ("machine", "hostname"): False,
    ("machine", "cpu_model"): True, ("machine", "description"): True, ("machine", "virtualization"): True,
    ("machine", "cpu_governor"): True, ("machine", "cpu_idle", "driver"): True, ("machine", "os"): True, ("machine", "kernel"): True,
    ("machine", "platform"): False, ("machine", "arch"): True,
    ("python", "python_version"): True, ("python", "implementation"): True, ("python", "compiler"): True,
    ("python", "executable"): False, ("python", "git_commit"): True, ("python", "default_start_method"): True,
    ("ipcbench_version",): True, ("run", "preset"): True, ("run", "started"): True, ("run", "finished"): True,
    ("run", "status"): True,
}


def _tag(path) -> str:
    return "[" + ".".join(map(str, path)) + "]"


def _put(data: dict, path, value) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def evil_set(side: str, error_tag: str = "[error]") -> dict:
    """A result set where every metadata string, a mechanism name, a noise flag and a failure reason carry
    ``evil``; the metadata strings end with ``side``, so that two such sets are two machines."""
    import numpy as np

    rng = np.random.default_rng(len(side))
    cases = [case_record(rng.normal(50_000, 2_000, 600).astype(int), mechanism=m, payload_bytes=s)
             for m in ("queue", "pipe_duplex") for s in (8, 1024)]
    cases.append(case_record(rng.normal(80_000, 2_000, 600).astype(int), mechanism=evil("[mechanism]"),
                             pattern="roundtrip"))
    cases.append(case_record(mechanism="manager_dict", pattern="rpc", status="failed", error=evil(error_tag)))
    cases[0]["noise"]["flags"].append(evil("[flag]"))
    data = result_set(cases)
    for path in REPORT_FIELDS:
        _put(data, path, evil(_tag(path)) + side)
    data["machine"]["system_checks"] = [{"check": evil("[check]"), "state": "warning",
                                         "message": evil("[check message]"), "source": "ipcbench"}]
    data["python"]["packages"] = {evil("[package name]"): evil("[package version]")}
    data["run"]["argv"] = ["run", "--machine-id", evil("[argv]")]
    return data


SHOWN = [_tag(p) for p, shown in REPORT_FIELDS.items() if shown] + [
    "[mechanism]", "[error]", "[flag]", "[check]", "[check message]", "[package name]", "[package version]",
    "[argv]"]
HIDDEN = [_tag(p) for p, shown in REPORT_FIELDS.items() if not shown]


@pytest.mark.filterwarnings("ignore:constrained_layout not applied")      # labels hundreds of characters long
def test_report_escapes_every_string_from_result_files(tmp_path, capsys):
    """Two machines (so the page has a comparison section too, with its own figures), every string field
    hostile, and file names with markup in them: the page shows each field escaped and holds no live
    injected markup."""
    folder = tmp_path / "in<img src=x onerror=alert(1)>"
    a = write(folder / "a<img src=x onerror=alert(2)>.json", evil_set(" A $x^$"))        # mathtext, too
    b = write(folder / "b.json", evil_set(" B $\\frac{$", error_tag="[error B]"))
    rc, _, err = call(["report", str(a), str(b), "-o", str(tmp_path / "site"), "--max-setups", "0"], capsys)
    assert rc == 0, err
    pages = sorted((tmp_path / "site").rglob("*.html"))
    assert [p.name for p in pages] == ["index.html"]
    html = pages[0].read_text()
    assert_inert(html, own_scripts=1)
    assert 'id="comparison"' in html
    for tag in SHOWN:
        assert escaped(tag) in html, tag
    for tag in HIDDEN:
        assert tag not in html, tag                       # kept in the file, not shown
    assert "a&lt;img src=x onerror=alert(2)&gt;.json" in html          # the result file's name
    assert "[mechanism]&lt;script&gt;" in html.split('id="fig-latency"')[1].split("</svg>")[0]   # in a figure


def test_text_that_looks_like_mathtext_is_drawn_as_text(tmp_path, capsys):
    """matplotlib reads "$...$" as mathtext: a machine id "$x^$" used to stop the report with a parse
    error (a traceback), "50$ and 60$" was drawn as a formula. Labels from files are plain text."""
    data = good_set(machine_id="box$x^$", python_version=r"3.12 $\frac{$ 50$ and 60$")
    path = write(tmp_path / "r.json", data)
    rc, _, err = call(["report", str(path), "-o", str(tmp_path / "site")], capsys)
    assert rc == 0, err
    figure = (tmp_path / "site" / "index.html").read_text().split('id="fig-latency"')[1].split("</svg>")[0]
    assert r"box$x^$ · Python 3.12 $\frac{$ 50$ and 60$" in figure


def test_compare_pages_escape_every_string(tmp_path, capsys):
    """``ipcbench compare --format html`` (a standalone page) and ``--format md``: side labels (the paths
    given), machine ids, Python versions, presets, mechanism names and failure reasons."""
    a = write(tmp_path / "a<script>alert(1).json", evil_set("-A"))
    b = write(tmp_path / "b.json", evil_set("-B"))
    rc, _, err = call(["compare", str(a), str(b), "--format", "html", "-o", str(tmp_path / "c.html")], capsys)
    assert rc == 0, err
    html = (tmp_path / "c.html").read_text()
    assert_inert(html, own_scripts=0)
    assert "a&lt;script&gt;alert(1).json" in html
    for tag in ("[machine_id]", "[python.python_version]", "[run.preset]", "[mechanism]", "[error]"):
        assert escaped(tag) in html, tag
    rc, _, err = call(["compare", str(a), str(b), "--format", "md", "-o", str(tmp_path / "c.md")], capsys)
    assert rc == 0, err
    md = (tmp_path / "c.md").read_text()
    for raw in RAW:
        assert raw not in md, raw
    assert "[mechanism]&lt;script&gt;alert(1)&lt;/script&gt;" in md


def pytest_benchmark_file(tag=evil) -> dict:
    """A pytest-benchmark JSON file as ``pytest bench/ --benchmark-json`` writes it, with markup in every
    name: the benchmark's name, group, params and machine_info, and the case's own names."""
    from ipcbench.plan.cases import Case
    from ipcbench.results.formats import pytest_benchmark as pb

    def bench(mechanism: str) -> dict:
        case = Case(mechanism, "roundtrip", "bytes", 8, 1, "fork", "spread")
        data_s = [1e-6 * (1 + (i % 7)) for i in range(200)]
        samples = pb.seconds_to_ns(data_s)
        measured = {"samples_ns": samples, "ops": len(samples), "window_ns": sum(samples), "bytes_per_op": 16,
                    "cpu_s": None, "placement": {}, "calls": len(samples)}
        return {"group": tag("[group]"), "name": tag("[name]"), "fullname": tag("[fullname]"),
                "params": {"case": tag("[params]")}, "param": tag("[param]"), "options": {"timer": "perf_counter"},
                "extra_info": pb.extra_info(case, measured, tag("[op]"), "latency", tag("[pb preset]"), 0.5),
                "stats": {"min": min(data_s), "max": max(data_s), "mean": sum(data_s) / len(data_s),
                          "rounds": len(data_s), "data": data_s}}

    failed = Case("pipe_duplex", "roundtrip", "bytes", 64, 1, "fork", "spread").to_dict()
    return {"machine_info": {"node": tag("[node]"), "cpu": {"brand_raw": tag("[brand_raw]"), "count": 4},
                             "python_version": tag("[pb python_version]"),
                             "python_implementation": tag("[pb implementation]"),
                             "python_compiler": tag("[pb compiler]"), "system": tag("[system]"),
                             "release": tag("[release]"), "machine": tag("[pb machine]")},
            "commit_info": {"id": tag("[commit]")}, "datetime": tag("[datetime]"), "version": tag("[version]"),
            "benchmarks": [bench(tag("[pb mechanism]")), bench("queue")],
            "ipcbench": {"format": 1, "failed": [{"case": failed, "error": tag("[pb error]")}]}}


PB_SHOWN = ["[node]", "[brand_raw]", "[pb python_version]", "[pb implementation]", "[pb compiler]", "[system]",
            "[release]", "[pb machine]", "[datetime]", "[pb mechanism]", "[pb error]", "[pb preset]"]
PB_HIDDEN = ["[group]", "[name]", "[fullname]", "[params]", "[param]", "[op]", "[commit]", "[version]"]


def test_report_escapes_names_from_pytest_benchmark_files(tmp_path, capsys):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(pytest_benchmark_file()))
    rc, _, err = call(["report", str(path), "-o", str(tmp_path / "site")], capsys)
    assert rc == 0, err
    html = (tmp_path / "site" / "index.html").read_text()
    assert_inert(html, own_scripts=1)
    for tag in PB_SHOWN:
        assert escaped(tag) in html, tag
    for tag in PB_HIDDEN:
        assert tag not in html, tag


def _bench(d: dict) -> dict:
    return d["benchmarks"][0]


PB_DAMAGE = {
    "format text": (lambda d: _bench(d)["extra_info"]["ipcbench"].update(format="1"),
                    "benchmark fullname: extra_info['ipcbench']['format'] is not a whole number"),
    "durations text": (lambda d: _bench(d)["stats"].update(data=[1e-6, "fast"]),
                       "benchmark fullname: stats.data holds something other than durations in seconds"),
    "durations 1e300 s": (lambda d: _bench(d)["stats"].update(data=[1e300]),
                          "benchmark fullname: stats.data holds something other than durations in seconds"),
    "samples text": (lambda d: (_bench(d)["stats"].pop("data"),
                                _bench(d)["extra_info"]["ipcbench"].update(samples_ns=["a"])),
                     "extra_info['ipcbench']['samples_ns'] is not a list of whole numbers of ns"),
    "ops text": (lambda d: _bench(d)["extra_info"]["ipcbench"].update(ops="200"),
                 "benchmark fullname: extra_info['ipcbench']['ops'] is not a number"),
    "failed entries text": (lambda d: d["ipcbench"].update(failed=["boom"]),
                            "its ipcbench.failed is not a list of {case, error} records"),
    "a failed case without dimensions": (lambda d: d["ipcbench"].update(failed=[{"case": {"mechanism": "q"}}]),
                                         "its ipcbench.failed is not a list of {case, error} records"),
    "a name with a newline": (lambda d: (_bench(d).update(fullname="line one\nline two"),
                                         _bench(d)["extra_info"]["ipcbench"].update(format=[1])),
                              "benchmark line one line two: extra_info['ipcbench']['format']"),
}


@pytest.mark.parametrize("name", list(PB_DAMAGE))
def test_damaged_pytest_benchmark_files_are_one_line_and_exit_2(tmp_path, capsys, name):
    """pytest-benchmark JSON is converted before it is checked: its numbers are checked on the way
    (they used to reach the statistics as text and end in a TypeError)."""
    change, message = PB_DAMAGE[name]
    data = pytest_benchmark_file(tag=lambda t: t.strip("[]"))
    change(data)
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    for args in (["report", str(path), "-o", str(tmp_path / "site")], ["export", str(path)]):
        rc, out, err = call(args, capsys)
        assert_user_error(rc, err, f"{path}: ", message, "not written by `pytest bench/`")
        assert out == "" and not (tmp_path / "site").exists()


def test_machine_ids_with_markup_are_refused_on_the_command_line(tmp_path, capsys, monkeypatch):
    """Where the CLI sets a machine id it must be a plain name (it names a folder); a free-text
    description may hold anything, and is escaped where the report shows it (test above)."""
    monkeypatch.setenv("IPCBENCH_MACHINE_FILE", str(tmp_path / "machine.json"))
    for bad in ("<script>alert(1)</script>", "../up", "a/b", "..", ".hidden", "x" * 65, "tab\there"):
        rc, _, err = call(["machine", "--id", bad], capsys)
        assert_user_error(rc, err, f"machine id {bad!r} is not usable")
    rc, out, err = call(["machine", "--description", evil("[description]")], capsys)
    assert rc == 0, err
    assert evil("[description]") in out            # a terminal shows text as it is


# ================================================================================================
# c. absurd values for `ipcbench run`: refused before anything is measured or written
# ================================================================================================
class MeasurementStarted(AssertionError):
    pass


@pytest.fixture
def no_measuring(monkeypatch, tmp_path):
    """`ipcbench run` in an empty folder, where writing a result file or starting a round fails the test."""
    from ipcbench.measure import runner

    def refuse(*args, **kwargs):
        raise MeasurementStarted("ipcbench run was not refused: it got as far as measuring")

    monkeypatch.setattr(runner, "ResultWriter", refuse)
    monkeypatch.setattr(runner, "run_cases", refuse)
    monkeypatch.setenv("IPCBENCH_MACHINE_FILE", str(tmp_path / "config" / "machine.json"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _memory() -> int:
    import psutil

    return psutil.virtual_memory().total


# (flags, message); every command also gets -m pipe_duplex -p roundtrip --payload-sizes 8 unless it sets them
ABSURD_RUNS = {
    "workers -2": (["--workers", "-2"], "worker count must be 1 or more, got -2"),
    "workers 1,0": (["--workers", "1,0"], "worker count must be 1 or more, got 0"),
    "workers 1.5": (["--workers", "1.5"], "worker count '1.5' is not a whole number"),
    "workers abc": (["--workers", "abc"], "worker count 'abc' is not a whole number"),
    "size -1": (["--payload-sizes", "-1"], "payload size '-1' is negative; sizes are 0 or more bytes"),
    "size 1.5": (["--payload-sizes", "1.5"], "payload size '1.5' is not a whole number of bytes"),
    "size abc": (["--payload-sizes", "abc"], "cannot read payload size 'abc'; use a number of bytes or units"),
    "size 8XB": (["--payload-sizes", "8XB"], "unknown size unit 'XB' in '8XB'; use B, KiB, MiB or GiB"),
    "size 1e3": (["--payload-sizes", "1e3"], "cannot read payload size '1e3'"),
    "sizes ,,": (["--payload-sizes", ",,"], "--payload-sizes is empty"),
    "size of all memory": (["--payload-sizes", f"8,{_memory()}"], "this machine's"),
    "size 10**26 GiB": (["--payload-sizes", "99999999999999999999999999GiB"], "this machine's"),
    "workers 10**8": (["--workers", "100000000", "-p", "fanin", "-m", "queue"], "this machine's"),
    "start method fork,teleport": (["--start-method", "fork,teleport"], "start method 'teleport' is not available"),
    "placement moon": (["--placement", "moon"], "unknown placement 'moon'; choose from spread, shared, os"),
    "mechanism queue,nope": (["-m", "queue,nope"], "unknown mechanism 'nope'"),
    "pattern <script>": (["-p", "roundtrip,<script>"], "unknown pattern '<script>'"),
    "preset ../smoke": (["--preset", "../smoke"], "unknown preset '../smoke'; choose from smoke, quick, full"),
    "rounds 0": (["--rounds", "0"], "--rounds must be 1 or more, got 0"),
    "rounds -1": (["--rounds", "-1"], "--rounds must be 1 or more, got -1"),
    "rounds abc": (["--rounds", "abc"], "argument --rounds: invalid int value: 'abc'"),
    "timeout 0": (["--timeout", "0"], "--timeout must be positive, got 0"),
    "timeout -5": (["--timeout", "-5"], "--timeout must be positive, got -5"),
    "timeout abc": (["--timeout", "abc"], "argument --timeout: invalid float value: 'abc'"),
    "target-ci 0": (["--target-ci", "0"], "--target-ci must be a fraction between 0 and 1 (0.05 = +-5 %), got 0"),
    "target-ci 1.5": (["--target-ci", "1.5"], "--target-ci must be a fraction between 0 and 1 (0.05 = +-5 %), got 1.5"),
    "target-ci nan": (["--target-ci", "nan"], "--target-ci must be a fraction between 0 and 1"),
    "target-ci -0.1": (["--target-ci", "-0.1"], "--target-ci must be a fraction between 0 and 1"),
    "seed -1": (["--seed", "-1"], "--seed must be 0 or more, got -1"),
    "seed abc": (["--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    "run-budget -1": (["--run-budget", "-1"], "--run-budget must be 0 (no limit) or more, got -1"),
    "max-rounds 0": (["--max-rounds", "0"], "--max-rounds (0) must be at least --min-rounds"),
    "machine id <script>": (["--machine-id", "<script>alert(1)</script>"],
                            "machine id '<script>alert(1)</script>' is not usable"),
    "machine id ../": (["--machine-id", "../evil"], "machine id '../evil' is not usable"),
    "machine id ..": (["--machine-id", ".."], "machine id '..' is not usable"),
    "machine id with a newline": (["--machine-id", "ok\nnot"], "machine id 'ok\\nnot' is not usable"),
}
# NaN passed `timeout <= 0`-style checks and reached the measurement (found by this module, fixed)
NOT_REFUSED = {
    "timeout inf": (["--timeout", "inf"], "--timeout"),
    "timeout nan": (["--timeout", "nan"], "--timeout"),
    "case-budget nan": (["--case-budget", "nan"], "--case-budget"),
    "run-budget nan": (["--run-budget", "nan"], "--run-budget"),
}


def _run_args(flags: list[str], out: Path) -> list[str]:
    base = {"-m": "pipe_duplex", "-p": "roundtrip", "--payload-sizes": "8"}
    extra = [x for k, v in base.items() if k not in flags for x in (k, v)]
    return ["run", *extra, *flags, "-o", str(out)]


def _assert_refused_before_measuring(folder: Path, flags: list[str], message: str, capsys) -> None:
    out = folder / "r.json"
    rc, _, err = call(_run_args(flags, out), capsys)       # MeasurementStarted if it was not refused
    assert_user_error(rc, err, message)
    assert sorted(p.name for p in folder.iterdir()) == []        # nothing written, not even a folder


@pytest.mark.parametrize("name", list(ABSURD_RUNS))
def test_absurd_run_values_are_refused_before_measuring(no_measuring, capsys, name):
    flags, message = ABSURD_RUNS[name]
    _assert_refused_before_measuring(no_measuring, flags, message, capsys)


@pytest.mark.parametrize("name", list(NOT_REFUSED))
def test_absurd_run_values_that_reach_the_measurement(no_measuring, capsys, name):
    flags, message = NOT_REFUSED[name]
    _assert_refused_before_measuring(no_measuring, flags, message, capsys)


@pytest.mark.parametrize("content", [
    pytest.param(b"\x80\xfe\xff garbage", id="binary"),
    pytest.param(b"[" * 100_000, id="nested 100,000 deep"),
])
def test_a_damaged_machine_file_is_one_line(tmp_path, monkeypatch, capsys, content):
    path = tmp_path / "machine.json"
    path.write_bytes(content)
    monkeypatch.setenv("IPCBENCH_MACHINE_FILE", str(path))
    rc, _, err = call(["machine"], capsys)
    assert_user_error(rc, err, f"{path}: ")


# ================================================================================================
# d. loading never unpickles or evaluates
# ================================================================================================
class _Pwn:
    """Unpickling this runs ``touch PATH``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _mentions(obj, needle: str, depth: int = 0) -> bool:
    if isinstance(obj, str):
        return needle in obj
    if isinstance(obj, (bytes, bytearray)):
        return needle.encode() in obj
    if isinstance(obj, types.CodeType) and depth < 20:
        return any(_mentions(c, needle, depth + 1) for c in obj.co_consts)
    return False


@pytest.fixture
def never_evaluated(monkeypatch, tmp_path):
    """pickle refuses to load anything; eval/exec/compile refuse any code that mentions the marker file
    (Python itself compiles namedtuples, dataclasses and templates with them, so they stay usable)."""
    marker = tmp_path / "PWNED-marker"

    def refuse(*args, **kwargs):
        raise AssertionError("something unpickled data")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    for name in ("eval", "exec", "compile"):
        real = getattr(builtins, name)

        def guarded(source, *args, _real=real, _name=name, **kwargs):
            if _mentions(source, marker.name):
                raise AssertionError(f"{_name}() was given data from a result file")
            return _real(source, *args, **kwargs)

        monkeypatch.setattr(builtins, name, guarded)
    return marker


def payloads(marker: Path) -> dict[str, str]:
    pickled = pickle.dumps(_Pwn(marker), protocol=2)
    return {
        "base64 pickle": base64.b64encode(pickled).decode(),
        "raw pickle": pickled.decode("latin-1"),
        "python": f"__import__('os').system('touch {marker}')",
        "exec": f"exec(\"open('{marker}', 'w')\")",
        "jinja": "{{ 12345 * 11 }}{% for x in range(3) %}{{ x }}{% endfor %}",
        "format": "{0.__class__.__mro__} %(x)s ${7*7}",
    }


def test_loading_reporting_and_exporting_never_unpickle_or_evaluate(tmp_path, capsys, never_evaluated):
    marker = never_evaluated
    p = payloads(marker)
    data = good_set(machine_id=p["python"], cpu_model=p["base64 pickle"], preset=p["jinja"])
    data["machine"]["machine_id"] = p["python"]
    data["machine"]["description"] = p["raw pickle"]
    data["machine"]["hostname"] = p["exec"]
    data["python"]["executable"] = p["exec"]
    data["python"]["packages"] = {p["python"]: p["base64 pickle"]}
    data["run"]["argv"] = [p["format"], p["base64 pickle"]]
    data["cases"].append(case_record(mechanism="queue", pattern="fanin", workers=2, status="failed",
                                     error=p["raw pickle"] + p["python"]))
    data["cases"][0]["rounds"][0]["pickled"] = p["base64 pickle"]          # an unknown field
    path = write(tmp_path / "r.json", data)

    from ipcbench.results.frame import load_sets

    loaded = load_sets([path])
    assert loaded.sets[0]["machine"]["description"] == p["raw pickle"]         # plain text, as stored
    assert loaded.sets[0]["cases"][0]["rounds"][0]["pickled"] == p["base64 pickle"]
    assert set(loaded.tidy["machine_id"]) == {p["python"]}

    rc, _, err = call(["report", str(path), "-o", str(tmp_path / "site")], capsys)
    assert rc == 0, err
    html = (tmp_path / "site" / "index.html").read_text()
    from markupsafe import escape

    for text in (p["python"], p["base64 pickle"], p["jinja"], p["format"]):
        assert str(escape(text)) in html, text
    assert "135795" not in html                     # {{ 12345 * 11 }} was not rendered as a template

    rc, out, err = call(["export", str(path)], capsys)
    assert rc == 0, err
    assert f"{p['python']},{p['python'].split()[0]}" not in out and f"\n{p['python']}," in out      # first column
    rc, _, err = call(["export", str(path), "--format", "pyperf", "-o", str(tmp_path / "p.json")], capsys)
    assert rc == 0, err
    pyperf_md = (tmp_path / "p.json").read_text()
    assert json.dumps(p["base64 pickle"]) in pyperf_md                   # cpu_model_name, as text

    twin = write(tmp_path / "twin.json", copy.deepcopy(data))
    rc, out, err = call(["compare", str(path), str(twin)], capsys)
    assert rc == 0, err
    assert "2 failed case(s) not compared" in out and p["python"] in out
    assert not marker.exists()


def test_the_reading_side_has_no_way_to_unpickle_or_evaluate():
    """What reads result files (results, reporting, analysis, plots and the commands report, compare,
    export, aa, list, machine) imports no pickle-like module and calls no eval, exec or compile; the
    measuring side (measure/) pickles payloads, which is what it measures, and never reads result files."""
    reading = [*SRC.glob("results/**/*.py"), *SRC.glob("reporting/**/*.py"), *SRC.glob("analysis/**/*.py"),
               *SRC.glob("plots/**/*.py"),
               *(SRC / "commands" / f"{c}.py" for c in ("report", "compare", "export", "aa", "list", "machine"))]
    assert len(reading) > 20
    unsafe_modules = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "yaml",
                      "jsonpickle", "joblib"}
    found = []
    for path in reading:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                names = [node.func.id] if node.func.id in ("eval", "exec", "compile", "__import__") else []
                found += [f"{path.relative_to(SRC)}:{node.lineno} {n}()" for n in names]
                continue
            elif isinstance(node, ast.Attribute) and node.attr in ("read_pickle", "load_pickle"):
                found.append(f"{path.relative_to(SRC)}:{node.lineno} .{node.attr}")
                continue
            else:
                continue
            found += [f"{path.relative_to(SRC)}:{node.lineno} import {n}" for n in names if n in unsafe_modules]
    assert found == []
