"""References in the report (issues 12 and 13): floors and baseline drawn as reference lines, throughput as a
fraction of the floor with round-level CIs, Celery beside Pool, and the mechanisms a run did not measure."""

import re

import numpy as np
import pytest

from ipcbench.analysis import references as refs
from ipcbench.analysis.compare_stats import round_tests
from ipcbench.plots import figures
from ipcbench.plots.base import NoData, mechanism_color
from ipcbench.reporting import page as report
from ipcbench.reporting.references import format_fraction, not_measured_rows
from ipcbench.results.frame import load_sets
from tests import factories

KiB = 1024
MACHINE = "test-machine · Python 3.11.7 · fork · spread"


def case(mech, pattern, size=8, workers=1, rounds=3, kind="bytes", samples_ns=None, **metrics):
    return factories.case_record(samples_ns=samples_ns, mechanism=mech, pattern=pattern, payload_bytes=size,
                                 workers=workers, rounds=rounds, payload_kind=kind, metrics=metrics or None)


def named(cases, source="set.json", **kw):
    return factories.named_set(cases, source, **kw)


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def html_of(tmp_path, *sets, **kw) -> str:
    paths = [factories.write(tmp_path / f"set{i}.json", {k: v for k, v in s.items() if k != "_source"})
             for i, s in enumerate(sets)]
    return report.render_html(load_sets(paths), **kw)


def section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}"')
    return html[start:html.index("</section>", start)]


def text_of(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))


# throughputs (msg/s) at 8 B and 64 KiB: os_pipe is the best floor at 8 B, socketpair at 64 KiB
THROUGHPUT = {"os_pipe": (100_000, 10_000), "socketpair": (80_000, 12_500), "queue": (20_000, 5_000),
              "thread_queue": (150_000, 60_000)}


def floor_set(patterns=("roundtrip", "stream"), source="floors.json", **kw):
    cases = [case(m, p, s, throughput_msgs=v) for m, values in THROUGHPUT.items() for p in patterns
             for s, v in zip((8, 64 * KiB), values, strict=True)]
    cases += [case("manager_queue", "fanin", 8, 1, throughput_msgs=4_000),       # no stream case: its fanin w1
              case("manager_queue", "fanin", 8, 2, throughput_msgs=7_000),       # 2 producers: not held
              case("pool_apply", "dispatch", 8, 2, throughput_msgs=3_000)]       # no floor runs dispatch
    return named(cases, source, **kw)


# ------------------------------------------------------------------------------------------------
# analysis: fractions of the floor
# ------------------------------------------------------------------------------------------------
def test_fraction_of_the_best_floor_per_size_with_round_level_ci():
    rs = floor_set()
    tidy = factories.tidy_of(rs)
    (table,) = refs.floor_tables(tidy, refs.RoundValues([rs]))
    assert table.setup == MACHINE and table.notes == []
    f = table.fractions.set_index(["table", "mechanism", "pattern", "payload_bytes"])
    # the best floor differs by size; each mechanism is held against it
    assert f.loc[("roundtrip", "queue", "roundtrip", 8), "floor"] == "os_pipe"
    assert f.loc[("roundtrip", "queue", "roundtrip", 64 * KiB), "floor"] == "socketpair"
    assert f.loc[("roundtrip", "queue", "roundtrip", 8), "fraction"] == pytest.approx(0.2)
    assert f.loc[("roundtrip", "queue", "roundtrip", 64 * KiB), "fraction"] == pytest.approx(0.4)
    assert f.loc[("stream", "thread_queue", "stream", 64 * KiB), "fraction"] == pytest.approx(4.8)   # baseline > floor
    assert f.loc[("roundtrip", "socketpair", "roundtrip", 8), "fraction"] == pytest.approx(0.8)     # the other floor
    best = f.loc[("roundtrip", "os_pipe", "roundtrip", 8)]
    assert bool(best["is_floor"]) and best["fraction"] == 1 and np.isnan(best["fraction_ci_low"])
    # one-way: stream cases, and fanin with 1 producer for a mechanism without a stream case
    mq = f.loc[("stream", "manager_queue", "fanin", 8)]
    assert mq["fraction"] == pytest.approx(0.04) and mq["workers"] == 1 and mq["floor"] == "os_pipe"
    assert not ((table.fractions.mechanism == "manager_queue") & (table.fractions.workers == 2)).any()
    assert "pool_apply" not in set(table.fractions.mechanism)
    # the CI is that of the ratio of the round values (compare_stats.round_tests), placed on the fraction
    row = f.loc[("roundtrip", "queue", "roundtrip", 8)]
    rounds = refs.RoundValues([rs])
    key = {c: tidy[c].iloc[0] for c in ("machine_id", "python_version", "start_method", "placement", "result_set")}
    base = rounds.get("throughput_msgs", refs.case_key({**key, "mechanism": "os_pipe", "pattern": "roundtrip",
                                                        "payload_kind": "bytes", "payload_bytes": 8, "workers": 1}))
    other = rounds.get("throughput_msgs", refs.case_key({**key, "mechanism": "queue", "pattern": "roundtrip",
                                                         "payload_kind": "bytes", "payload_bytes": 8, "workers": 1}))
    assert len(base) == len(other) == 3
    t = round_tests([base], [other])
    assert row["ci_from"] == "rounds"
    assert row["fraction_ci_low"] == pytest.approx(0.2 * t.lo_factor[0])
    assert row["fraction_ci_high"] == pytest.approx(0.2 * t.hi_factor[0])
    assert row["fraction_ci_low"] < 0.2 < row["fraction_ci_high"]


def test_fraction_ci_falls_back_to_the_cases_cis_and_is_absent_with_one_round():
    tidy = factories.tidy_of(floor_set(patterns=("roundtrip",)))
    (table,) = refs.floor_tables(tidy)                       # no result sets: no round values
    row = table.fractions.set_index(["mechanism", "payload_bytes"]).loc[("queue", 8)]
    thr = tidy[(tidy.metric == "throughput_msgs") & (tidy.pattern == "roundtrip") & (tidy.payload_bytes == 8)]
    q, fl = thr[thr.mechanism == "queue"].iloc[0], thr[thr.mechanism == "os_pipe"].iloc[0]
    assert row["ci_from"] == "case CIs"
    assert row["fraction_ci_low"] == pytest.approx(q.ci_low / fl.ci_high)
    assert row["fraction_ci_high"] == pytest.approx(q.ci_high / fl.ci_low)
    one = named([case(m, "roundtrip", 8, rounds=1, throughput_msgs=v) for m, v in (("os_pipe", 1e5), ("queue", 5e4))])
    (table,) = refs.floor_tables(factories.tidy_of(one), refs.RoundValues([one]))
    row = table.fractions.set_index("mechanism").loc["queue"]
    assert row["fraction"] == pytest.approx(0.5) and row["ci_from"] == "" and np.isnan(row["fraction_ci_high"])


def test_no_floor_in_a_setup_gives_no_table_and_a_sentence_why():
    bytes_only = named([case("queue", "roundtrip", 8), case("pipe_duplex", "stream", 8)], "a.json")
    objects = named([case("queue", "roundtrip", KiB, kind="object")], "b.json", machine_id="m2")
    dispatch = named([case("pool_apply", "dispatch", 8, 2)], "c.json", machine_id="m3")
    tables = refs.floor_tables(factories.tidy_of(bytes_only, objects, dispatch))
    assert [len(t.fractions) for t in tables] == [0, 0, 0]
    notes = {t.setup: t.notes for t in tables}
    assert notes[MACHINE] == ["No floor (os_pipe and socketpair) was measured in this setup, so no fraction of the "
                              "floor is shown: run them in the same invocation as the others "
                              "(ipcbench run -m ...,os_pipe,socketpair)."]
    assert "carry bytes and numpy payloads only (an object payload has" in notes["m2 · Python 3.11.7 · fork · spread · object payloads"][0]
    assert "it has dispatch cases only" in notes["m3 · Python 3.11.7 · fork · spread"][0]


def test_a_case_listed_twice_in_a_file_is_held_once():
    from ipcbench.reporting.references import floor_groups

    cases = [case("os_pipe", "roundtrip", 8, throughput_msgs=1e5), case("queue", "roundtrip", 8, throughput_msgs=5e4)]
    (table,) = refs.floor_tables(factories.tidy_of(named(cases + cases)))
    assert list(table.fractions.mechanism) == ["os_pipe", "queue"]
    (group,) = floor_groups([table])
    assert [r["cells"][0]["text"] for r in group["tables"][0]["rows"]] == ["50%", "floor"]


def test_a_pattern_or_size_without_a_floor_is_named():
    cases = [case("os_pipe", "roundtrip", 8, throughput_msgs=1e5), case("queue", "roundtrip", 8, throughput_msgs=5e4),
             case("queue", "roundtrip", 64 * KiB, throughput_msgs=1e4), case("queue", "stream", 8, throughput_msgs=1e5)]
    (table,) = refs.floor_tables(factories.tidy_of(named(cases)))
    assert set(table.fractions.table) == {"roundtrip"}
    assert table.notes == ["roundtrip: no floor at 64 KiB, so those sizes have no fraction.",
                           "stream: no floor was measured for this pattern, so its 1 case(s) are not held against one."]


def test_reference_names_match_the_registered_families():
    from ipcbench.measure import mechanisms

    family = {m.name: m.family for m in mechanisms.all_mechanisms()}
    assert {n for n, f in family.items() if f == "floor"} == set(refs.FLOORS)
    assert {n for n, f in family.items() if f == "baseline"} == set(refs.BASELINES)
    assert refs.reference_label("os_pipe") == "floor: os_pipe"
    assert refs.reference_label("thread_queue") == "baseline: thread_queue"


# ------------------------------------------------------------------------------------------------
# figures: reference lines
# ------------------------------------------------------------------------------------------------
def test_latency_figure_draws_floors_and_baseline_as_grey_reference_lines():
    cases = [case(m, "roundtrip", s, latency_p50=v * (1 + s / KiB), latency_p99=2 * v)
             for m, v in (("queue", 50e-6), ("os_pipe", 10e-6), ("socketpair", 12e-6), ("thread_queue", 8e-6))
             for s in (8, 64 * KiB)]
    fig = figures.latency_vs_size(factories.tidy_of(named(cases)))
    (ax,) = fig.axes
    lines = lines_by_label(ax)
    assert set(lines) == {"queue", "queue p99", "floor: os_pipe", "floor: socketpair", "baseline: thread_queue"}
    floor = lines["floor: os_pipe"]
    np.testing.assert_allclose(floor.get_xydata(), [[8, 10e-6 * (1 + 8 / KiB)], [64 * KiB, 10e-6 * 65]])
    for label in ("floor: os_pipe", "floor: socketpair", "baseline: thread_queue"):
        line = lines[label]
        r, g, b = _rgb(line.get_color())
        assert r == g == b and 0.3 < r < 0.8, f"{label} is not grey"
        assert line.get_marker() in ("", "None", None) and line.get_linestyle() != "-"
        assert line.get_linewidth() < lines["queue"].get_linewidth()
    assert lines["queue"].get_color() == mechanism_color("queue") and lines["queue"].get_marker() == "o"
    assert len({tuple(lines[k]._dash_pattern[1]) for k in lines if ": " in k}) == 3      # each its own dashes
    assert len(ax.collections) == 1                           # only queue's CI band, none for the references
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert legend[:1] == ["queue"] and legend[-3:] == ["floor: os_pipe", "floor: socketpair", "baseline: thread_queue"]
    assert "os_pipe" not in legend


def _rgb(color):
    from matplotlib.colors import to_rgb

    return to_rgb(color)


def test_throughput_figure_draws_references_in_both_panels_and_only_in_their_setup():
    with_floor = [case(m, "stream", s, throughput_msgs=v) for m, v in (("queue", 1e4), ("socketpair", 5e4))
                  for s in (8, KiB)]
    without = [case("queue", "stream", s, throughput_msgs=2e4) for s in (8, KiB)]
    fig = figures.throughput_vs_size(factories.tidy_of(named(with_floor, "a.json", machine_id="a"),
                                                       named(without, "b.json", machine_id="b")))
    a_mb, a_msgs, b_mb, b_msgs = fig.axes
    np.testing.assert_allclose(lines_by_label(a_msgs)["floor: socketpair"].get_ydata(), [5e4, 5e4])
    assert "floor: socketpair" in lines_by_label(a_mb)
    assert set(lines_by_label(b_msgs)) == {"queue"} and set(lines_by_label(b_mb)) == {"queue"}
    assert "floors and baseline" in fig._suptitle.get_text()


def test_figures_without_references_are_unchanged():
    fig = figures.latency_vs_size(factories.tidy_of(named([case("queue", "roundtrip", s) for s in (8, KiB)])))
    assert "floors" not in fig._suptitle.get_text()
    assert [t.get_text() for leg in fig.legends for t in leg.get_texts()] == ["queue", "p50", "p99"]


# ------------------------------------------------------------------------------------------------
# Celery beside Pool
# ------------------------------------------------------------------------------------------------
def celery_set(source="celery.json", **kw):
    """Celery and Pool dispatch cases; each case's samples (rounds with their own levels, seeded) lie around
    its p50, so the round values agree with the recorded metrics."""
    cases = []

    def add(mech, size, workers, p50, throughput):
        samples = factories.hierarchical_samples(len(cases), 3, median_ns=p50 * 1e9)
        cases.append(case(mech, "dispatch", size, workers, samples_ns=samples, latency_p50=p50,
                          throughput_msgs=throughput))

    for w in (1, 2):
        for s in (64, 64 * KiB):
            add("celery", s, w, 2e-3 * (1 + s / (64 * KiB)), 400.0 * w)
            add("pool_apply", s, w, 100e-6 * (1 + s / (64 * KiB)), 8_000.0)
            add("pool_apply_async", s, w, 80e-6, 20_000.0 * w)
    add("celery", 64, 4, 2e-3, 1_500.0)                          # no pool case at 4 workers
    return named(cases, source, **kw)


def test_celery_tables_overhead_and_throughput_against_pool():
    rs = celery_set()
    (t,) = refs.celery_tables(factories.tidy_of(rs), refs.RoundValues([rs]))
    assert t.setup == MACHINE
    lat = t.latency.set_index(["payload_bytes", "workers"])
    r = lat.loc[(64, 1)]
    assert r["celery"] == pytest.approx(2e-3 * (1 + 1 / KiB)) and r["pool"] == pytest.approx(100e-6 * (1 + 1 / KiB))
    assert r["difference"] == pytest.approx(1.9e-3 * (1 + 1 / KiB)) and r["ratio"] == pytest.approx(20)
    assert r["ci_from"] == "rounds" and r["ratio_ci_low"] < 20 < r["ratio_ci_high"]
    assert lat.loc[(64 * KiB, 2), "difference"] == pytest.approx(3.8e-3)
    thr = t.throughput.set_index(["payload_bytes", "workers"])
    assert thr.loc[(64, 2), "ratio"] == pytest.approx(800 / 40_000) and thr.loc[(64, 2), "pool"] == 40_000
    assert len(t.latency) == len(t.throughput) == 4
    assert t.notes == [
        "pool_apply and pool_apply_async were not measured beside celery at 64 B w4 (same payload size and worker "
        "count) in this setup: run ipcbench run -m celery,pool_apply,pool_apply_async."]
    only_async = named([c for c in rs["cases"] if not (c["case"]["mechanism"] == "pool_apply"
                                                        and c["case"]["payload_bytes"] == 64 * KiB)])
    (t,) = refs.celery_tables(factories.tidy_of(only_async))
    assert len(t.latency) == 2 and len(t.throughput) == 4
    assert t.notes[0].startswith("pool_apply was not measured beside celery at 64 B w4, 64 KiB w1, 64 KiB w2 (")
    assert t.notes[1].startswith("pool_apply_async was not measured beside celery at 64 B w4 (")
    assert refs.celery_tables(factories.tidy_of(floor_set())) == []


def test_celery_figure_latency_per_task_and_throughput_per_worker_count():
    fig = figures.celery_beside_pool(factories.tidy_of(celery_set()))
    lat_ax, thr_ax = fig.axes
    lat = lines_by_label(lat_ax)
    assert set(lat) == {"celery", "pool_apply"}
    np.testing.assert_allclose(lat["celery"].get_xydata(), [[64, 2e-3 * (1 + 1 / KiB)], [64 * KiB, 4e-3]])
    assert "1 worker" in lat_ax.get_title()
    thr = lines_by_label(thr_ax)
    assert set(thr) == {"celery 64 B", "celery 64 KiB", "pool_apply_async 64 B", "pool_apply_async 64 KiB"}
    np.testing.assert_allclose(thr["celery 64 B"].get_xydata(), [[1, 400], [2, 800], [4, 1500]])
    assert thr["celery 64 B"].get_color() == mechanism_color("celery") != mechanism_color("pool_apply_async")
    with pytest.raises(NoData, match="no celery"):
        figures.celery_beside_pool(factories.tidy_of(floor_set()))


# ------------------------------------------------------------------------------------------------
# the page
# ------------------------------------------------------------------------------------------------
def test_page_has_the_floor_table_and_says_which_setup_has_no_floor(tmp_path):
    html = html_of(tmp_path, floor_set(), named([case("queue", "roundtrip", 8)], "other.json", machine_id="m2"))
    ids = re.findall(r'<section id="([^"]+)"', html)
    assert ids[ids.index("figures") + 1] == "floors"
    floors = section(html, "floors")
    text = text_of(floors)
    assert "Round trips (roundtrip), at 1 worker" in text and "One-way delivery" in text
    assert "best floor os_pipe: 100k msg/s socketpair: 12.5k msg/s" in text
    assert re.search(r"queue 20% \([\d.]+%–[\d.]+%\) 40% \(", text)
    assert "thread_queue (baseline) 150% (" in text and "socketpair (floor) 80% (" in text
    assert "manager_queue (fanin, 1 producer) 4% (" in text
    assert "m2 · Python 3.11.7 · fork · spread" in text
    assert "No floor (os_pipe and socketpair) was measured in this setup" in text
    assert "no-floor-note" not in html
    svg = html.split('id="fig-latency"')[1].split("</svg>")[0]
    assert "floor: os_pipe" in svg and "baseline: thread_queue" in svg


def test_page_without_any_floor_says_so_under_the_figures(tmp_path):
    html = html_of(tmp_path, named([case("queue", "roundtrip", s) for s in (8, KiB)]))
    assert 'id="floors"' not in html and 'id="celery"' not in html and 'id="not-measured"' not in html
    note = section(html, "figures").split('id="no-floor-note">')[1].split("</p>")[0]
    assert note.startswith("No floor (os_pipe, socketpair) was measured in these results")


def test_page_celery_section_with_tables_figure_and_escaped_setup(tmp_path):
    html = html_of(tmp_path, celery_set(machine_id="m<1>&"))
    ids = re.findall(r'<section id="([^"]+)"', html)
    assert ids[ids.index("figures") + 1] == "celery"
    cel = section(html, "celery")
    assert "m&lt;1&gt;&amp; · Python 3.11.7" in cel and "m<1>" not in cel
    assert 'id="fig-celery"' in cel and 'role="img"' in cel
    text = text_of(cel)
    assert "64 B 1 2 ms 100 µs +1.9 ms 20× (" in text
    assert "64 B 2 800 40k 0.02× (" in text
    assert "pool_apply and pool_apply_async were not measured beside celery at 64 B w4" in text
    page_ids = re.findall(r' id="([^"]+)"', html)
    assert len(page_ids) == len(set(page_ids))


# ------------------------------------------------------------------------------------------------
# not measured
# ------------------------------------------------------------------------------------------------
EVIL = "<script>alert(1)</script>&"


def test_skipped_mechanisms_are_listed_escaped_and_named_in_the_celery_section(tmp_path):
    data = named([case("queue", "roundtrip", 8), case("pool_apply", "dispatch", 8, 2)], "r.json")
    data["run"]["skipped_mechanisms"] = [
        {"mechanism": "celery", "reason": "celery is not installed: pip install 'ipcbench[celery]'"},
        {"mechanism": f"x{EVIL}", "reason": f"because {EVIL}"}]
    html = html_of(tmp_path, data)
    ids = re.findall(r'<section id="([^"]+)"', html)
    assert ids.index("noise") < ids.index("not-measured") < ids.index("failures")
    nm = section(html, "not-measured")
    assert EVIL not in html and "<script>alert" not in html and html.count("<script>") == 1
    assert "x&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in nm and "because &lt;script&gt;" in nm
    assert "celery is not installed: pip install &#39;ipcbench[celery]&#39;" in nm
    assert nm.count("<tr>") == 3                                   # header + two
    assert 'id="celery"' not in html                   # no celery cases: the reason is under "Not measured" only
    # beside a file with celery cases, the celery section names the file that skipped it
    html = html_of(tmp_path, data, celery_set(machine_id="m2"))
    cel = text_of(section(html, "celery"))
    assert "celery was not measured in set0.json (test-machine · Python 3.11.7): celery is not installed" in cel


@pytest.mark.parametrize("value, shown", [
    (None, []),
    ([], []),
    ("celery", [("?", "celery")]),
    ([{"mechanism": "celery"}], [("celery", "no reason recorded")]),
    ([{"reason": "gone"}, 7], [("?", "gone"), ("?", "7")]),
    ({"mechanism": "celery", "reason": "no redis-server"}, [("celery", "no redis-server")]),
])
def test_not_measured_tolerates_any_shape(value, shown):
    data = named([case("queue", "roundtrip", 8)])
    if value is not None:
        data["run"]["skipped_mechanisms"] = value
    rows = not_measured_rows([data, {"cases": [], "_source": "bare.json"}])
    assert [(r["mechanism"], r["reason"]) for r in rows] == shown
    assert all(r["file"] == "set.json" for r in rows)


def test_not_measured_names_the_file_an_entry_came_from_in_a_pooled_set():
    data = named([case("queue", "roundtrip", 8)], "results/m/a.json + results/m/b.json")
    data["run"]["skipped_mechanisms"] = [{"mechanism": "celery", "reason": "no redis", "source": "results/m/b.json"},
                                         {"mechanism": "celery", "reason": "no celery"}]
    assert [(r["file"], r["reason"]) for r in not_measured_rows([data])] == [("b.json", "no redis"),
                                                                             ("a.json + b.json", "no celery")]


def test_fraction_formatting():
    assert [format_fraction(v) for v in (0.42, 0.0042, 1.0, 13.6, float("nan"))] == ["42%", "0.42%", "100%",
                                                                                      "1,360%", "–"]


def test_the_answer_and_the_findings_never_name_a_floor_or_the_baseline(tmp_path):
    """thread_queue and os_pipe are faster than every mechanism here, yet they are references: the answer
    table names pipe_duplex, and they appear only where things are held against them."""
    cases = [case(m, "roundtrip", size, latency_p50=p50, throughput_msgs=1 / p50)
             for size in (8, 1024) for m, p50 in (("thread_queue", 5e-6), ("os_pipe", 9e-6), ("pipe_duplex", 30e-6),
                                                  ("queue", 60e-6))]
    html = html_of(tmp_path, named(cases))
    answer = html[html.index('id="answer"'):html.index('id="findings"')]
    findings = html[html.index('id="findings"'):html.index('id="figures"')]
    assert "pipe_duplex" in answer
    for ref in ("thread_queue", "os_pipe"):
        assert ref not in answer and ref not in findings
