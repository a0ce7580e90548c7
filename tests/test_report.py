"""The HTML report: self-contained, escaped, accessible, built from sections; CLI errors are one line."""

import copy
import functools
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from markupsafe import Markup

from ipcbench.cli import main
from ipcbench.reporting import page as report
from ipcbench.results.frame import load_sets
from tests import factories

KiB = 1024
SIZES = (8, KiB, 64 * KiB)
# (mechanism, pattern) -> latency factor; a small but complete matrix, like a smoke run
MATRIX = {("queue", "roundtrip"): 1.0, ("pipe_duplex", "roundtrip"): 0.6, ("pipe_simplex", "roundtrip"): 0.7,
          ("manager_queue", "roundtrip"): 3.0, ("queue", "stream"): 0.5, ("pipe_duplex", "stream"): 0.3,
          ("pipe_simplex", "stream"): 0.35, ("queue", "fanin"): 0.6, ("manager_queue", "fanin"): 2.0,
          ("manager_dict", "rpc"): 2.5, ("manager_list", "rpc"): 2.6, ("pool_apply", "dispatch"): 8.0,
          ("pool_apply_async", "dispatch"): 5.0, ("process_start", "startup"): 60.0, ("lock", "contention"): 0.01}
MULTI = {"fanin", "rpc", "dispatch", "contention"}


def rich_set(machine_id="test-machine", source="rich.json", scale=1.0, seed=0, failed=True, patterns=None) -> dict:
    """A result set with every figure's data; latencies lognormal around 30 µs x factor x size effect."""
    return copy.deepcopy(_rich_set(machine_id, source, scale, seed, failed, patterns))


@functools.cache
def _rich_set(machine_id, source, scale, seed, failed, patterns) -> dict:
    rng = np.random.default_rng(seed)
    cases = []
    for (mech, pattern), factor in MATRIX.items():
        if patterns and pattern not in patterns:
            continue
        for size in ((0,) if pattern == "contention" else SIZES):
            for workers in ((1, 2) if pattern in MULTI else (1,)):
                center = 30_000 * factor * scale * (1 + size / (16 * KiB)) * (1 + 0.2 * (workers - 1))
                samples = rng.lognormal(np.log(center), 0.15, 240).astype(np.int64)
                paced = {"latency_oneway_p50": center * 0.5e-9} if pattern == "stream" else None
                cases.append(factories.case_record(samples_ns=samples, cpu_per_op=center * 1.5e-9, mechanism=mech,
                                                   pattern=pattern, payload_bytes=size, workers=workers,
                                                   metrics=paced))
    if failed:
        cases.append(factories.case_record(mechanism="manager_dict", pattern="rpc", payload_bytes=64 * KiB, workers=4,
                                           status="failed", error="peer died: <EOF> & no reply"))
    data = factories.result_set(cases, machine_id=machine_id)
    data["_source"] = source
    return data


def loaded_of(tmp_path, *sets):
    paths = []
    for i, data in enumerate(sets):
        data = {k: v for k, v in data.items() if k != "_source"}
        paths.append(factories.write(tmp_path / f"set{i}.json", data))
    return load_sets(paths)


class Page(HTMLParser):
    """Collects tags, attributes and text of a page, to check structure without a browser."""

    def __init__(self, html):
        super().__init__()
        self.tags, self.ids, self.text = [], [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.append(attrs["id"])

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag, **attrs):
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


@pytest.fixture(scope="module")
def rich_html(tmp_path_factory):
    return report.render_html(loaded_of(tmp_path_factory.mktemp("rich"), rich_set()))


EXTERNAL = [
    re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?!#|data:)[^"'\s>]+""", re.I),    # any non-local src/href
    re.compile(r"https?://", re.I), re.compile(r"<link\b", re.I), re.compile(r"@import", re.I),
    re.compile(r"url\(\s*(?!['\"]?#)", re.I), re.compile(r"<iframe|<object|<embed", re.I),
]


def test_page_is_self_contained(rich_html):
    for pattern in EXTERNAL:
        assert not pattern.search(rich_html), pattern.pattern
    assert rich_html.startswith("<!doctype html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in rich_html


def test_all_figures_drawn_as_accessible_inline_svg_with_unique_ids(rich_html):
    page = Page(rich_html)
    svgs = page.find("svg", role="img")
    assert len(svgs) == len(report.FIGURES) == 10
    for svg in svgs:
        title_id = svg["aria-labelledby"]
        assert title_id == f"{svg['id']}-title" and title_id in page.ids
    assert len(page.ids) == len(set(page.ids)), "duplicate ids across inline SVGs"
    assert "<?xml" not in rich_html and "<!DOCTYPE svg" not in rich_html and "<metadata>" not in rich_html
    refs = set(re.findall(r'href="#([^"]+)"', rich_html)) | set(re.findall(r"url\(#([^)]+)\)", rich_html))
    assert refs and refs <= set(page.ids)
    assert "Not drawn" not in rich_html


def test_findings_tables_noise_failures_and_metadata(rich_html):
    page = Page(rich_html)
    text = " ".join(page.text)
    assert [s["id"] for s in page.find("section")] == ["answer", "findings", "figures", "cases", "noise", "failures", "metadata"]
    assert "pipe_duplex has the lowest round-trip latency (p50)" in text
    rows = rich_html.split('id="cases-table"')[1].split("</table>")[0].count("<tr>") - 1
    n_ok = sum(len((0,) if p == "contention" else SIZES) * (2 if p in MULTI else 1) for _, p in MATRIX)
    assert rows == n_ok
    assert len(page.find("th", scope="col")) >= 11 and page.find("th", scope="row")
    assert "peer died: &lt;EOF&gt; &amp; no reply" in rich_html
    assert "1 case failed" in text
    assert "Test CPU" in text and "test-machine" in text and "0.1 0.1 0.1" in text


def test_everything_from_the_data_is_escaped(tmp_path):
    evil = "<script>alert(1)</script>&"
    data = rich_set(machine_id=f"m{evil}")
    data["cases"].append(factories.case_record(mechanism=f"q{evil}", pattern="roundtrip", payload_bytes=8))
    data["cases"].append(factories.case_record(mechanism="pipe_duplex", pattern="rpc", status="failed",
                                               error=f"boom {evil}"))
    html = report.render_html(loaded_of(tmp_path, data))
    assert evil not in html and "<script>alert" not in html
    assert "q&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in html
    assert "boom &lt;script&gt;" in html
    assert html.count("<script>") == 1          # ours


def test_only_some_data_still_builds_and_says_what_was_skipped(tmp_path):
    data = factories.result_set([factories.case_record(mechanism="pipe_duplex", pattern="roundtrip", payload_bytes=s)
                                 for s in SIZES])
    out = report.build_report(load_sets([factories.write(tmp_path / "r.json", data)]), tmp_path / "site")
    html = out.read_text()
    assert out == tmp_path / "site" / "index.html"
    page = Page(html)
    assert len(page.find("svg", role="img")) == 2           # latency and distributions
    skipped = html.split('<ul class="skipped">')[1].split("</ul>")[0]
    assert skipped.count("<li>") == 8 and "Scaling with workers: no fanin, dispatch or rpc cases" in skipped
    assert "One-way latency at light load against payload size: no stream cases with a paced phase" in skipped
    assert "No case failed." in html and "No case carries a noise warning." in html
    assert "No findings: the results hold no cases that can be compared." in html


def test_extra_sections_hook_places_sections_after_figures(tmp_path):
    loaded = loaded_of(tmp_path, rich_set())
    extra = [report.Section("comparison", "Comparison <A & B>", Markup("<p id='cmp'>ratios</p>")),
             report.Section("notes", "Notes", "<b>plain text</b>")]
    page_html = report.render_html(loaded, extra_sections=extra)
    page = Page(page_html)
    assert [s["id"] for s in page.find("section")][:5] == ["answer", "findings", "figures", "comparison", "notes"]
    assert "<p id='cmp'>ratios</p>" in page_html and "&lt;b&gt;plain text&lt;/b&gt;" in page_html
    assert "Comparison &lt;A &amp; B&gt;" in page_html
    assert page.find("a", href="#comparison")


def test_several_machines_are_separate_panels_and_capped(tmp_path):
    sets = [rich_set(machine_id=f"m{i}", source=f"m{i}.json", scale=1 + i, seed=i, failed=False, patterns=("roundtrip",))
            for i in range(3)]
    loaded = loaded_of(tmp_path, *sets)
    html = report.render_html(loaded, max_setups=2)
    assert "The figures show 2 of 3 setups: m0 · Python 3.11.7 · fork · spread; m1 · Python 3.11.7 · fork · spread." in html
    latency_svg = html.split('id="fig-latency"')[1].split("</svg>")[0]
    assert "m0 · Python 3.11.7 · fork · spread" in latency_svg and "m1 · Python" in latency_svg and "m2 · Python" not in latency_svg
    table = html.split('id="cases-table"')[1]
    assert all(f"<td>m{i}</td>" in table for i in range(3))
    assert "<h3>m2 · Python 3.11.7 · fork · spread</h3>" in html           # findings cover every setup
    full = report.render_html(loaded, max_setups=0)
    assert "setups-note" not in full and "m2 · Python" in full.split('id="fig-latency"')[1].split("</svg>")[0]


def test_noise_rows_most_severe_first_and_capped(tmp_path):
    cases = []
    for mech, flags, spread in (("queue", ["noisy"], 0.3), ("pipe_duplex", ["noisy", "bimodal"], 0.25),
                                ("pipe_simplex", ["noisy"], 0.9), ("manager_queue", [], 0.0)):
        rec = factories.case_record(mechanism=mech, metrics={"latency_round_spread": spread})
        rec["noise"]["flags"] = flags
        cases.append(rec)
    loaded = load_sets([factories.write(tmp_path / "r.json", factories.result_set(cases))])
    rows, total = report.noise_rows(loaded.tidy, limit=2)
    assert total == 3 and [r["mechanism"] for r in rows] == ["pipe_duplex", "pipe_simplex"]
    assert rows[1]["flags"] == ["noisy"] and rows[1]["spread"].startswith("latency 90%")
    macros = report._env().get_template("sections.html.j2").module
    html = str(macros.noise(rows, total, report.FLAG_HELP, report.NOISE_FLAGS))
    assert "3 cases carry a warning; the 2 most severe are listed" in html and html.count("<tr>") == 3


def test_missing_metadata_still_lists_every_case(tmp_path):
    data = factories.result_set([factories.case_record(mechanism=m) for m in ("queue", "pipe_duplex")])
    del data["python"], data["machine"]["cpu_model"]
    html = report.render_html(load_sets([factories.write(tmp_path / "r.json", data)]))
    table = html.split('id="cases-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == 3 and "<td>queue</td>" in table
    assert "test-machine · Python ? · fork · spread" in html


def test_figure_svg_strips_prolog_and_prefixes_ids():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    ax.plot([1, 2], [3, 4], marker="o")
    svg = report.figure_svg(fig, "fig-x", "A line & a <dot>")
    assert svg.startswith('<svg id="fig-x" class="fig" role="img" aria-labelledby="fig-x-title"')
    assert '<title id="fig-x-title">A line &amp; a &lt;dot&gt;</title>' in svg
    ids = re.findall(r' id="([^"]+)"', svg)
    assert all(i.startswith("fig-x") for i in ids)
    assert re.search(r'href="#fig-x-m[0-9a-f]+"', svg) and "font-family" not in svg


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
def test_cli_writes_index_html(tmp_path, capsys):
    path = factories.write(tmp_path / "results" / "m" / "r.json", {k: v for k, v in rich_set().items() if k != "_source"})
    assert main(["report", str(path.parent.parent), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "index.html").stat().st_size > 10_000
    assert re.match(r"wrote .*index\.html \(\d+\.\d MB\) in \d+\.\d s\n$", capsys.readouterr().err)


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "no such file or folder"),
    ("empty", "no result files found"),
    ("truncated", "not valid JSON (truncated or not a result file?)"),
    ("not_result", 'not an ipcbench result file'),
    ("no_cases", "the result files hold no cases; nothing to report"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, setup, message):
    target = tmp_path / "in"
    if setup == "empty":
        target.mkdir()
    elif setup == "truncated":
        target.write_text(json.dumps(rich_set(failed=False)["cases"][0])[:50])
    elif setup == "not_result":
        target.write_text('{"hello": 1}')
    elif setup == "no_cases":
        factories.write(target, factories.result_set([]))
    assert main(["report", str(target), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipcbench: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_cli_default_results_folder_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 2
    assert "results/: no such folder; run `ipcbench run` first" in capsys.readouterr().err


def test_cli_max_setups_default_matches_library_and_is_checked(tmp_path, capsys):
    from ipcbench.commands import report as command

    assert command.MAX_SETUPS == report.MAX_SETUPS
    path = factories.write(tmp_path / "r.json", factories.result_set([factories.case_record()]))
    assert main(["report", str(path), "-o", str(tmp_path / "out"), "--max-setups", "-1"]) == 2
    assert "--max-setups must be 0 (all) or more, got -1" in capsys.readouterr().err


def test_output_that_is_a_file_is_a_user_error(tmp_path, capsys):
    path = factories.write(tmp_path / "r.json", {k: v for k, v in rich_set().items() if k != "_source"})
    (tmp_path / "taken").write_text("x")
    assert main(["report", str(path), "-o", str(tmp_path / "taken")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_several_result_sets_get_a_comparison_section(tmp_path):
    from ipcbench.reporting.page import build_report
    from ipcbench.results.frame import load_sets
    from tests.factories import case_record, result_set, write

    rng = np.random.default_rng(5)
    slow = rng.normal(60_000, 1_000, 600).astype(int)
    fast = rng.normal(40_000, 1_000, 600).astype(int)
    a = write(tmp_path / "a.json", result_set([case_record(slow, mechanism="queue")], machine_id="box-a"))
    b = write(tmp_path / "b.json", result_set([case_record(fast, mechanism="queue")], machine_id="box-<b>"))
    page = build_report(load_sets([a, b]), tmp_path / "site").read_text()
    section = page[page.index('id="comparison"'):]
    assert "Comparison between result sets" in page
    assert "box-&lt;b&gt;" in section and "box-<b>" not in page
    assert section.count("<svg") >= 2                      # ratio plot and wins map
    assert "1 case(s) compared" in section
    one = build_report(load_sets([a]), tmp_path / "one").read_text()
    assert 'id="comparison"' not in one


def test_start_methods_of_one_machine_are_compared_beside_the_machines(tmp_path):
    from ipcbench.reporting.page import build_report
    from ipcbench.results.frame import load_sets
    from tests.factories import case_record, result_set, write

    rng = np.random.default_rng(6)
    fork = rng.normal(40_000, 1_000, 600).astype(int)
    spawn = rng.normal(44_000, 1_000, 600).astype(int)
    ref = result_set([case_record(fork, mechanism="queue"), case_record(spawn, mechanism="queue",
                                                                       start_method="spawn")], machine_id="ref")
    mine = result_set([case_record(fork, mechanism="queue")], machine_id="mine")
    mine["run"]["started"] = "2026-11-27T00:00:00+00:00"          # the newest run: the machines' base
    files = [write(tmp_path / "ref.json", ref), write(tmp_path / "mine.json", mine)]
    page = build_report(load_sets(files), tmp_path / "site").read_text()
    section = page[page.index('id="comparison"'):]
    assert section.index('id="compare-machines"') < section.index('id="compare-start-methods"')
    assert "Start methods on ref" in section
    assert "ref vs mine: 1 case(s) compared" in section          # fork with fork only
    assert "ref · spawn vs ref · fork: 1 case(s) compared, matched across start_method" in section
    for prefix in ("compare-machines", "compare-start-methods"):
        assert f'id="{prefix}-ratio-latency_p50"' in section


def test_system_check_warnings_are_shown(tmp_path):
    from ipcbench.reporting.page import build_report
    from ipcbench.results.frame import load_sets
    from tests.factories import case_record, result_set, write

    data = result_set([case_record()])
    data["machine"]["system_checks"] = [
        {"check": "CPU scaling governor", "state": "warning", "message": "powersave <not performance>",
         "source": "pyperf"},
        {"check": "ASLR", "state": "ok", "message": "Full randomization", "source": "pyperf"}]
    data["machine"]["cpu_idle"] = {"driver": "haltpoll", "governor": "haltpoll", "guest_halt_poll_ns": 0}
    page = build_report(load_sets([write(tmp_path / "r.json", data)]), tmp_path / "site").read_text()
    assert "driver haltpoll, governor haltpoll, guest_halt_poll_ns 0" in page
    assert "system check warnings" in page
    assert "CPU scaling governor: powersave &lt;not performance&gt;" in page
    assert "Full randomization" not in page


def test_the_report_leads_with_which_mechanism_to_use(tmp_path):
    from ipcbench.reporting.page import answer_groups

    def rt(mech, size, scale, round_sd, seed):
        return factories.case_record(samples_ns=factories.hierarchical_samples(seed, 6, scale=scale, round_sd=round_sd),
                                     rounds=6, mechanism=mech, pattern="roundtrip", payload_bytes=size)

    cases = [rt("pipe_duplex", 8, 1.0, 0.01, 1), rt("queue", 8, 2.0, 0.01, 2),
             rt("pipe_duplex", 65536, 1.0, 0.3, 3), rt("queue", 65536, 1.05, 0.3, 4)]
    frame = factories.tidy_of(factories.named_set(cases))
    ((setup, rows),) = answer_groups(frame)
    assert setup == "test-machine · Python 3.11.7 · fork · spread"
    assert [(r["question"], r["payload"], r["use"], r["clear"]) for r in rows] == [
        ("round-trip latency (p50)", "8 B", "pipe_duplex", True),
        ("round-trip latency (p50)", "64 KiB", "no clear winner", False)]
    assert rows[0]["detail"].startswith("queue is 2.0x worse (1.9x–2.1x)")
    assert rows[1]["detail"].endswith("their 95 % CIs overlap")
    html = report.render_html(loaded_of(tmp_path, factories.result_set(cases)))
    assert html.index('id="answer"') < html.index('id="findings"')
    assert "<strong>pipe_duplex</strong>" in html
    assert '<tr class="unclear">' in html and "<strong>no clear winner</strong>" not in html
