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
from ipcbench.analysis.compare_stats import quantile_ci_ranks, sorted_quantile
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


# --- significance on raw samples --------------------------------------------------------------------

def test_a_30_percent_shift_is_significant_with_unequal_sample_sizes():
    comp = one_case_pair(lognormal(1, 1500), lognormal(2, 900, scale=1.3))
    r = row(comp, "latency_p50")
    assert (r.n_base, r.n_other) == (1500, 900)
    assert r.ratio == pytest.approx(1.3, rel=0.05)
    assert r.p_value < 1e-20
    assert r.ratio_ci_low < r.ratio < r.ratio_ci_high
    assert r.ratio_ci_low > 1.2 and r.ratio_ci_high < 1.4
    assert bool(r.significant) and r.better == "base"          # other is slower: base wins
    assert row(comp, "latency_p99").significant                 # the whole distribution moved
    assert not row(comp, "latency_max").significant             # no CI for one extreme sample


@pytest.mark.parametrize("seeds", [(3, 4), (5, 6), (7, 8), (9, 10)])
def test_the_same_distribution_is_not_significant(seeds):
    comp = one_case_pair(lognormal(seeds[0], 1200), lognormal(seeds[1], 700))
    lat = comp.frame[comp.frame.samples_of == "messages"]
    assert not lat.significant.any()
    p50 = row(comp, "latency_p50")
    assert abs(p50.ratio - 1) < MIN_EFFECT
    assert p50.ratio_ci_low < 1 < p50.ratio_ci_high


def test_a_small_but_certain_difference_is_not_significant():
    """3 % apart on 2000 samples a side: the test is sure, the effect is below MIN_EFFECT."""
    comp = one_case_pair(lognormal(11, 2000, sigma=0.05), lognormal(12, 2000, sigma=0.05, scale=1.03))
    r = row(comp, "latency_p50")
    assert r.p_value < ALPHA
    assert r.ratio == pytest.approx(1.03, abs=0.01)
    assert not r.significant and r.better == ""


def test_the_median_ratio_ci_stays_honest_on_bimodal_latencies():
    """50/50 mixtures of 29 us and 80 us (placement): the sample median jumps between modes. A normal
    approximation of the log median covers the true ratio (1) only about half the time; ours ~95 %."""
    def mixture(seed, n):
        rng = np.random.default_rng(seed)
        near = rng.random(n) < 0.5
        return np.where(near, rng.normal(29_000, 1_500, n), rng.normal(80_000, 4_000, n)).astype(np.int64)

    covered = []
    for seed in range(10):
        r = row(one_case_pair(mixture(2 * seed, 1000), mixture(2 * seed + 1, 600)), "latency_p50")
        covered.append(r.ratio_ci_low < 1 < r.ratio_ci_high)
        assert not r.significant
    assert sum(covered) >= 9


def test_order_statistics_are_those_of_scipy_quantile_test():
    rng = np.random.default_rng(0)
    for n in (6, 20, 101, 2000):
        x = np.sort(rng.random(n))
        for q in (0.5, 0.9, 0.99):
            lo, hi = quantile_ci_ranks(np.array([n]), q)
            ci = sps.quantile_test(x, q=float(np.quantile(x, q)), p=q).confidence_interval(0.95)
            assert (x[lo[0]] if lo[0] >= 0 else np.nan) == pytest.approx(ci.low, nan_ok=True)
            assert (x[hi[0]] if hi[0] < n else np.nan) == pytest.approx(ci.high, nan_ok=True)


def test_sorted_quantile_interpolates_like_numpy():
    rng = np.random.default_rng(0)
    xs = [np.sort(rng.integers(0, 100, n)) for n in (1, 2, 7, 2000)]
    for q in (0.5, 0.9, 0.999):
        np.testing.assert_allclose(sorted_quantile(xs, q), [np.quantile(x, q) for x in xs])


def test_rounds_are_pooled_in_proportion_to_the_messages_they_timed():
    """Round 1 timed 3000 messages at ~50 us and stored 1000; round 2 timed 100 at ~100 us, all stored.
    Pooled as stored, round 2 would be 9 % of the sample instead of 3 %: p90 would sit in the slow round
    and its CI would widen to about 0.98..1.7."""
    base = f.case_record(samples_ns=lognormal(1, 2000, sigma=0.05), rounds=2)
    other = f.case_record(samples_ns=lognormal(2, 1100, sigma=0.05), rounds=2)
    r1, r2 = other["rounds"]
    r1["samples_ns"], r1["samples_total"] = [int(x) for x in lognormal(3, 1000, sigma=0.05)], 3000
    r2["samples_ns"], r2["samples_total"] = [int(x) for x in lognormal(4, 100, sigma=0.05, scale=2)], 100
    everything = np.concatenate([np.repeat(r1["samples_ns"], 3), r2["samples_ns"]])   # what the runner saw
    other["metrics"]["latency_p90"]["value"] = float(np.percentile(everything, 90)) / 1e9
    comp = compare(Side("a", [f.result_set([base])]), [Side("b", [f.result_set([other], machine_id="n")])])
    r = row(comp, "latency_p90")
    assert r.n_other == 1000 + 33
    assert r.ratio_ci_low <= r.ratio <= r.ratio_ci_high
    assert r.ratio_ci_high / r.ratio_ci_low < 1.05
    assert r.ratio == pytest.approx(1.0, abs=0.05)


def test_round_metrics_with_two_rounds_are_not_tested():
    comp = one_case_pair(lognormal(1, 400), lognormal(2, 400, scale=0.5), rounds=2)
    r = row(comp, "throughput_msgs")
    assert r.ratio == pytest.approx(2.0, rel=0.1)
    assert (r.n_base, r.n_other, r.samples_of) == (2, 2, "rounds")
    assert np.isnan(r.p_value) and np.isnan(r.ratio_ci_low) and not r.significant


def test_round_metrics_with_five_rounds_can_be_significant():
    comp = one_case_pair(lognormal(1, 500, sigma=0.05), lognormal(2, 500, sigma=0.05, scale=0.5), rounds=5)
    r = row(comp, "throughput_msgs")
    assert r.p_value == pytest.approx(2 / 252)                  # exact U test, 5 v 5, complete separation
    assert r.ratio_ci_low > 1.8 and r.ratio_ci_high < 2.2
    assert bool(r.significant) and r.better == "other"          # higher throughput wins
    b = row(comp, "throughput_bytes")                           # same test, scaled by the payload
    assert b.p_value == r.p_value and b.ratio == pytest.approx(r.ratio)


def test_three_rounds_give_a_p_value_that_cannot_be_significant():
    comp = one_case_pair(lognormal(1, 300, sigma=0.05), lognormal(2, 300, sigma=0.05, scale=0.5), rounds=3)
    r = row(comp, "throughput_msgs")
    assert r.p_value == pytest.approx(0.1)                      # the smallest exact p for 3 v 3
    assert not r.significant


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
            cases.append(f.case_record(samples_ns=lognormal(size + len(sm), 200), status=status,
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
    assert "1 failed case(s) not compared: pipe_duplex roundtrip 1 KiB w1 fork in n.json (peer died)" \
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
    assert row(comp, "latency_p50").n_base == 400
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
    rng_shift = f.result_set([f.case_record(samples_ns=lognormal(size + 4, 200, scale=1.3), payload_bytes=size,
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
    assert {r["metric"] for r in rows} == set(METRICS) - {"cpu_per_msg"}     # no CPU time in these sets
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

    assert Case("queue", "roundtrip", "bytes", 65536, 1, "fork").label() == "queue roundtrip 64 KiB w1 fork"
    row = {"mechanism": "queue", "pattern": "rpc", "payload_kind": "numpy", "payload_bytes": 8, "workers": 2,
           "base_start_method": "spawn", "python_version": "3.12.1"}
    assert case_label(row, ["start_method", "python_version"]) == "queue rpc 8 B w2 numpy spawn Python 3.12.1"
    assert case_name("lock", "contention", workers=4, payload_kind="bytes") == "lock contention w4"
