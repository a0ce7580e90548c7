"""ipcbench.analysis.compare (statistics, matching), report.compare_table (formats) and the `compare` command."""

import csv
import io

import numpy as np
import pytest
from scipy import stats as sps

from ipcbench import cli
from ipcbench.analysis.compare import (
    ALPHA,
    COLUMNS,
    DEFAULT_METRICS,
    METRICS,
    MIN_EFFECT,
    Side,
    compare,
    match_dimensions,
)
from ipcbench.errors import UserError
from ipcbench.reporting.compare_table import to_csv, to_html, to_markdown, to_table
from ipcbench.results.frame import read_set
from tests import factories as f


def lognormal(seed, n, median_ns=50_000, sigma=0.2, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.lognormal(np.log(median_ns * scale), sigma, n)).astype(np.int64)


def one_case_pair(base_samples, other_samples, rounds=3, **case):
    base = f.result_set([f.case_record(samples_ns=base_samples, rounds=rounds, **case)], machine_id="m-base")
    other = f.result_set([f.case_record(samples_ns=other_samples, rounds=rounds, **case)], machine_id="m-other")
    return compare(Side("base.json", [base]), [Side("other.json", [other])])


def row(comp, metric):
    r = comp.frame[comp.frame.metric == metric]
    assert len(r) == 1
    return r.iloc[0]


# --- significance on round-level values ------------------------------------------------------------

rounds_of = f.hierarchical_samples


def round_pair(base_rounds, other_rounds, seeds=(1, 2), scale=1.0, **kw):
    return one_case_pair_rounds(rounds_of(seeds[0], base_rounds, **kw), base_rounds,
                                rounds_of(seeds[1], other_rounds, scale=scale, **kw), other_rounds)


def one_case_pair_rounds(base_samples, base_rounds, other_samples, other_rounds):
    base = f.result_set([f.case_record(samples_ns=base_samples, rounds=base_rounds)], machine_id="m-base")
    other = f.result_set([f.case_record(samples_ns=other_samples, rounds=other_rounds)], machine_id="m-other")
    return compare(Side("base.json", [base]), [Side("other.json", [other])])


def test_a_30_percent_shift_is_significant_with_unequal_numbers_of_rounds():
    comp = round_pair(8, 5, scale=1.3, round_sd=0.03)
    r = row(comp, "latency_p50")
    assert (r.n_base, r.n_other, r.samples_of) == (8, 5, "rounds")
    assert r.ratio == pytest.approx(1.3, rel=0.05)
    assert r.p_value < 0.01
    assert r.ratio_ci_low < r.ratio < r.ratio_ci_high
    assert r.ratio_ci_low > 1.15 and r.ratio_ci_high < 1.45      # 13 rounds: about +-7 %
    assert bool(r.significant) and r.better == "base"          # other is slower: base wins
    assert row(comp, "latency_p99").significant                 # the whole distribution moved
    mx = row(comp, "latency_max")
    assert np.isnan(mx.p_value) and not mx.significant          # no test for one extreme sample


@pytest.mark.parametrize("seeds", [(3, 4), (5, 6), (7, 8), (9, 10)])
def test_the_same_distribution_is_not_significant(seeds):
    comp = round_pair(6, 4, seeds=seeds)
    lat = comp.frame[comp.frame.metric.str.startswith("latency")]
    assert not lat.significant.any()
    p50 = row(comp, "latency_p50")
    assert p50.ratio_ci_low < 1 < p50.ratio_ci_high


def test_between_round_variation_is_not_mistaken_for_a_difference():
    """Rounds that differ by placement (sd 10 %) with thousands of messages each: pooled messages made a
    Mann-Whitney test 'certain' of differences that were only the rounds' luck (the A/A failure). On
    round values, A/A pairs come out significant about as often as the 5 % level allows."""
    hits = 0
    for seed in range(20):
        comp = round_pair(5, 5, seeds=(100 + 2 * seed, 101 + 2 * seed), per_round=2000, round_sd=0.10)
        r = row(comp, "latency_p50")
        pooled_p = sps.mannwhitneyu(*(np.concatenate(x) for x in (
            [rounds_of(100 + 2 * seed, 5, per_round=2000, round_sd=0.10)],
            [rounds_of(101 + 2 * seed, 5, per_round=2000, round_sd=0.10)]))).pvalue
        hits += bool(r.significant)
        if seed == 0:
            assert pooled_p < 1e-6 < r.p_value               # the pooled test's false certainty, for contrast
    assert hits <= 2


def test_a_small_but_certain_difference_is_not_significant():
    """3 % apart with tight rounds: the test is sure, the effect is below MIN_EFFECT."""
    comp = round_pair(10, 10, scale=1.03, round_sd=0.003, sigma=0.05)
    r = row(comp, "latency_p50")
    assert r.p_value < ALPHA
    assert r.ratio == pytest.approx(1.03, abs=0.01)
    assert not r.significant and r.better == ""


def test_rounds_weigh_equally_in_the_round_values():
    """A short slow round is one round of evidence, however few messages it stored."""
    base = f.case_record(samples_ns=rounds_of(1, 3, per_round=500, round_sd=0.0), rounds=3)
    other = f.case_record(samples_ns=rounds_of(2, 3, per_round=500, round_sd=0.0), rounds=3)
    other["rounds"][2]["samples_ns"] = [int(x) for x in rounds_of(3, 1, per_round=20, scale=2, round_sd=0.0)]
    comp = compare(Side("a", [f.result_set([base])]), [Side("b", [f.result_set([other], machine_id="n")])],
                   metrics=("latency_p90",))
    r = row(comp, "latency_p90")
    assert (r.n_base, r.n_other) == (3, 3)
    # one of three rounds is 2x slower: the CI of the ratio of geometric means reaches past 2^(1/3) = 1.26
    assert r.ratio_ci_high / r.ratio > 1.2 and not r.significant


def test_one_round_is_not_tested_two_are():
    comp = one_case_pair(lognormal(1, 400), lognormal(2, 400, scale=0.5), rounds=1)
    r = row(comp, "throughput_msgs")
    assert r.ratio == pytest.approx(2.0, rel=0.1)
    assert (r.n_base, r.n_other, r.samples_of) == (1, 1, "rounds")
    assert np.isnan(r.p_value) and np.isnan(r.ratio_ci_low) and not r.significant
    two = row(round_pair(2, 2, scale=0.5, round_sd=0.01), "throughput_msgs")
    assert (two.n_base, two.n_other) == (2, 2) and np.isfinite(two.p_value)


def test_round_metrics_with_five_rounds_can_be_significant():
    comp = round_pair(5, 5, scale=0.5, round_sd=0.02, sigma=0.05)
    r = row(comp, "throughput_msgs")
    assert r.p_value < 1e-4
    assert r.ratio == pytest.approx(2.0, rel=0.05)
    assert r.ratio_ci_low > 1.8 and r.ratio_ci_high < 2.2
    assert bool(r.significant) and r.better == "other"          # higher throughput wins
    b = row(comp, "throughput_bytes")                           # same test, scaled by the payload
    assert b.p_value == r.p_value and b.ratio == pytest.approx(r.ratio)


def test_p_values_are_adjusted_for_the_number_of_cases_and_chance_hits_are_not_significant():
    """40 noisy cases that did not change (some look different by chance) and 2 that got 3x slower."""
    sizes = [8 * (i + 1) for i in range(42)]

    def side(seed, scale):
        return [f.case_record(samples_ns=lognormal(seed + i, 400 if i >= 40 else 100, sigma=1.0,
                                                   scale=scale if i >= 40 else 1.0), payload_bytes=s)
                for i, s in enumerate(sizes)]

    base = f.result_set(side(100, 1.0), machine_id="m-base")
    other = f.result_set(side(200, 3.0), machine_id="m-other")
    comp = compare(Side("base.json", [base]), [Side("other.json", [other])], metrics=("latency_p50",))
    df = comp.frame
    assert len(df) == 42
    assert np.allclose(df.q_value, sps.false_discovery_control(df.p_value))
    assert (df.q_value >= df.p_value).all()
    moved = df.payload_bytes.isin(sizes[40:])
    assert df[moved].significant.all()
    chance = df[~moved & (df.p_value < ALPHA) & ((df.ratio - 1).abs() >= MIN_EFFECT)]
    assert len(chance) >= 1                                     # what an unadjusted p would have called real
    assert not df[~moved].significant.any()
    from ipcbench.reporting.compare_table import verdict
    assert verdict(chance.iloc[0].to_dict()).startswith("n.s.: q >= 0.05")


# --- matching --------------------------------------------------------------------------------------

def grid(sizes, start_methods=("fork",), machine_id="m", failed=(), python_version="3.11.7"):
    cases = []
    for sm in start_methods:
        for size in sizes:
            status = "failed" if (size, sm) in failed else "ok"
            cases.append(f.case_record(samples_ns=lognormal(size + len(sm), 10_000), status=status,   # p999: 10k
                                       error="peer died", payload_bytes=size, start_method=sm))
    rs = f.result_set(cases, machine_id=machine_id, python_version=python_version)
    rs["_source"] = f"{machine_id}.json"
    return rs


def test_mismatched_grids_compare_the_intersection_and_say_what_is_missing():
    base, other = grid([8, 1024, 4096]), grid([8, 65536])
    comp = compare(Side("a.json", [base]), [Side("b.json", [other])])
    assert sorted(comp.frame.payload_bytes.unique()) == [8]
    assert comp.matched == {"b.json": 1}
    assert sorted(comp.only_base.payload_bytes) == [1024, 4096]
    assert list(comp.only_other.payload_bytes) == [65536]
    text = "\n".join(comp.summary())
    assert "2 case(s) only in base (e.g. pipe_duplex roundtrip 1 KiB w1, pipe_duplex roundtrip 4 KiB w1)" in text
    assert "1 case(s) only in other (e.g. pipe_duplex roundtrip 64 KiB w1)" in text


def test_failed_cases_are_listed_not_compared():
    base = grid([8, 1024])
    other = grid([8, 1024], failed={(1024, "fork")}, machine_id="n")
    comp = compare(Side("a.json", [base]), [Side("b.json", [other])])
    assert list(comp.frame.payload_bytes.unique()) == [8]
    assert comp.only_base.empty and comp.only_other.empty        # failed is not "missing"
    assert comp.failed[["side", "payload_bytes", "error"]].values.tolist() == [["other", 1024, "peer died"]]
    assert "1 failed case(s) not compared: pipe_duplex roundtrip 1 KiB w1 fork spread in n.json (peer died)" \
        in comp.summary()


def test_a_case_that_failed_in_one_file_and_was_measured_in_another_is_compared():
    base = grid([8, 1024])
    retry = grid([1024], machine_id="n")
    first = grid([8, 1024], failed={(1024, "fork")}, machine_id="n")
    comp = compare(Side("a.json", [base]), [Side("n/", [first, retry])])
    assert sorted(comp.frame.payload_bytes.unique()) == [8, 1024]
    assert comp.failed.empty and not any("failed" in line for line in comp.summary())


def test_a_fork_run_matches_a_spawn_run_across_start_methods():
    base, other = grid([8, 1024], ["fork"]), grid([8, 1024], ["spawn"])
    comp = compare(Side("fork.json", [base]), [Side("spawn.json", [other])])
    assert comp.across["spawn.json"] == ["start_method"]
    assert comp.matched["spawn.json"] == 2
    assert set(zip(comp.frame.base_start_method, comp.frame.other_start_method, strict=True)) == {("fork", "spawn")}
    assert "matched across start_method" in comp.summary()[0]


def test_a_spread_run_matches_an_unpinned_run_across_placement():
    base, other = grid([8, 1024]), grid([8, 1024])
    for rec in other["cases"]:
        rec["case"]["placement"] = "os"
    comp = compare(Side("spread.json", [base]), [Side("os.json", [other])])
    assert comp.across["os.json"] == ["placement"] and comp.matched["os.json"] == 2
    assert set(zip(comp.frame.base_placement, comp.frame.other_placement, strict=True)) == {("spread", "os")}
    assert "matched across placement" in comp.summary()[0]
    both = grid([8])
    both["cases"] += [{**rec, "case": {**rec["case"], "placement": "shared"}} for rec in both["cases"]]
    key, across = match_dimensions(Side("a", [both]), Side("b", [both]))
    assert "placement" in key and across == []                  # several placements a side: like for like


def test_runs_with_several_start_methods_match_like_for_like():
    base = grid([8], ["fork", "spawn"])
    other = grid([8], ["fork", "spawn", "forkserver"], machine_id="n")
    key, across = match_dimensions(Side("a", [base]), Side("b", [other]))
    assert "start_method" in key and across == []
    comp = compare(Side("a", [base]), [Side("b", [other])])
    assert (comp.frame.base_start_method == comp.frame.other_start_method).all()
    assert comp.matched["b"] == 2
    assert comp.only_other[["payload_bytes", "start_method"]].values.tolist() == [[8, "forkserver"]]


def test_python_versions_differ_across_sets():
    comp = compare(Side("a", [grid([8], python_version="3.11.7")]),
                   [Side("b", [grid([8], python_version="3.13.1")])])
    assert comp.across["b"] == ["python_version"]
    assert set(comp.frame.other_python_version) == {"3.13.1"}


def test_files_of_one_machine_are_pooled_and_machines_are_not_mixed():
    first, second = grid([8]), grid([8])
    comp = compare(Side("dir-a", [first, second]), [Side("b", [grid([8], machine_id="n")])])
    assert row(comp, "latency_p50").n_base == 6                 # 3 rounds in each file
    with pytest.raises(UserError, match="2 machines"):
        compare(Side("mixed", [grid([8]), grid([8], machine_id="other")]), [Side("b", [grid([8])])])


def test_unknown_metric_is_refused():
    with pytest.raises(UserError, match="latency_p50"):
        compare(Side("a", [grid([8])]), [Side("b", [grid([8])])], ["latency_p42"])


# --- schema refusal --------------------------------------------------------------------------------

def test_a_newer_schema_is_refused_with_a_way_forward(tmp_path):
    data = grid([8])
    data["schema_version"] = 99
    path = f.write(tmp_path / "new.json", data)
    with pytest.raises(UserError, match=r"schema_version 99 .*upgrade ipcbench"):
        read_set(path)


def test_cli_refuses_a_newer_schema_in_one_line(tmp_path, capsys):
    good = f.write(tmp_path / "good.json", grid([8]))
    data = grid([8])
    data["schema_version"] = 99
    bad = f.write(tmp_path / "new.json", data)
    assert cli.main(["compare", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("ipcbench: error: ")
    assert "upgrade ipcbench" in err and "Traceback" not in err


# --- output formats --------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    base = grid([8, 1024], machine_id="box-a")
    rng_shift = f.result_set([f.case_record(samples_ns=lognormal(size + 4, 10_000, scale=1.3), payload_bytes=size,
                                            start_method="fork") for size in (8, 1024)],
                             machine_id="<script>alert(1)</script>|x")
    return f.write(tmp_path / "a.json", base), f.write(tmp_path / "b.json", rng_shift)


def test_cli_csv_has_every_metric_and_the_documented_columns(files, capsys):
    a, b = files
    assert cli.main(["compare", str(a), str(b), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == COLUMNS
    for col in ("mechanism", "pattern", "payload_bytes", "workers", "metric", "base", "other", "ratio",
                "ratio_ci_low", "ratio_ci_high", "p_value", "significant", "base_set", "other_set",
                "base_start_method", "other_python_version", "other_machine_id"):
        assert col in rows[0]
    assert {r["metric"] for r in rows} == set(METRICS) - {"cpu_per_msg", "latency_first_call", "latency_oneway_p50"}
    assert len(rows) == 2 * 7
    p50 = [r for r in rows if r["metric"] == "latency_p50"]
    assert all(float(r["ratio"]) == pytest.approx(float(r["other"]) / float(r["base"])) for r in p50)
    assert {r["significant"] for r in p50} == {"True"}
    assert "2 case(s) compared" in err                                        # the summary, off stdout


def test_cli_writes_markdown_with_escaped_cells(files, tmp_path):
    a, b = files
    out = tmp_path / "cmp.md"
    assert cli.main(["compare", str(a), str(b), "--format", "md", "-o", str(out)]) == 0
    text = out.read_text()
    table = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert table[0] == "| case | metric | base | other | other/base | 95% CI | p | verdict |"
    assert len(table) == 2 + 2 * 3                              # header, rule, 2 cases x 3 default metrics
    assert all(ln.count(" | ") == 7 for ln in table[2:])
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;\\|x" in text
    assert "**other 1.3" in text and "slower**" in text


def test_html_is_standalone_and_escapes_the_data(files):
    a, b = files
    comp = compare(Side(str(a), [read_set(a)]), [Side(str(b), [read_set(b)])])
    html = to_html(comp, DEFAULT_METRICS)
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;|x" in html
    shown = comp.frame[comp.frame.metric.isin(DEFAULT_METRICS)]
    wins = int((shown.significant & (shown.better == "base")).sum())
    assert wins >= 2 and html.count('<tr class="better-base">') == wins
    assert "http" not in html.split("<body>")[0]                 # nothing fetched


def test_table_and_metrics_option(files, capsys):
    a, b = files
    assert cli.main(["compare", str(a), str(b), "--metrics", "latency_p90", "--significant"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("case "))
    body = [ln for ln in lines[head + 2:] if ln.strip()][:-1]    # last line: the notes
    assert len(body) == 2 and all("latency_p90" in ln and "slower" in ln for ln in body)
    assert "\033[" not in out                                    # no colour when not a terminal


def test_cli_refuses_unknown_metric_and_format(files, capsys):
    a, b = files
    assert cli.main(["compare", str(a), str(b), "--metrics", "latency_p42"]) == 2
    assert cli.main(["compare", str(a), str(b), "--format", "xlsx"]) == 2
    err = capsys.readouterr().err
    assert "latency_p42" in err and "choose from table, md, csv, html" in err


def test_cli_no_case_in_common(tmp_path, capsys):
    a = f.write(tmp_path / "a.json", grid([8]))
    b = f.write(tmp_path / "b.json", grid([64], machine_id="n"))
    assert cli.main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no case in common" in err


def test_render_functions_agree_on_rows():
    comp = compare(Side("a", [grid([8, 1024])]), [Side("b", [grid([8, 1024], machine_id="n")])])
    assert len(list(csv.reader(io.StringIO(to_csv(comp))))) == 1 + len(comp.frame)
    md_rows = [ln for ln in to_markdown(comp).splitlines() if ln.startswith("| pipe_duplex")]
    assert len(md_rows) == len(comp.frame) == 2 * 7                # every metric when none are picked
    assert to_table(comp, metrics=["latency_p50"]).count("pipe_duplex roundtrip") == 2


def test_case_names_come_from_one_function():
    from ipcbench.analysis.compare import case_label
    from ipcbench.plan.cases import Case, case_name

    assert Case("queue", "roundtrip", "bytes", 65536, 1, "fork").label() == "queue roundtrip 64 KiB w1 fork spread"
    assert Case("queue", "roundtrip", "bytes", 65536, 1, "fork", "os").id == "queue/roundtrip/64KiB/w1/fork/os"
    row = {"mechanism": "queue", "pattern": "rpc", "payload_kind": "numpy", "payload_bytes": 8, "workers": 2,
           "base_start_method": "spawn", "python_version": "3.12.1"}
    assert case_label(row, ["start_method", "python_version"]) == "queue rpc 8 B w2 numpy spawn Python 3.12.1"
    assert case_name("lock", "contention", workers=4, payload_kind="bytes") == "lock contention w4"


def test_verdicts_say_why_a_row_is_not_tested():
    from ipcbench.reporting.compare_table import verdict

    comp = one_case_pair(lognormal(1, 400), lognormal(2, 400, scale=0.5), rounds=1)
    assert verdict(row(comp, "throughput_msgs").to_dict()) == "n.s.: too few rounds to test (one a side)"
    assert verdict(row(comp, "latency_max").to_dict()) == "n.s.: not tested (one extreme sample)"
