"""figures_compare: checked through what is drawn (line data, markers, cell values, texts)."""

import math

import numpy as np
import pytest
from markupsafe import Markup

from ipcbench.analysis.compare import Side, compare
from ipcbench.plots.base import NoData
from ipcbench.plots.compare import ZERO_X, ratio_plot, wins_map
from ipcbench.reporting.compare import comparison_of
from tests import factories as f

SIZES = (8, 1024, 65536)


def samples(seed, scale=1.0, n=1200):        # 1,200 samples support a p99
    rng = np.random.default_rng(seed)
    return rng.lognormal(np.log(50_000 * scale), 0.1, n).astype(np.int64)


def result_set(machine_id, slow_pipe=1.0, start_method="fork", lock=True):
    cases = []
    for i, size in enumerate(SIZES):
        cases.append(f.case_record(samples_ns=samples(i + len(machine_id), slow_pipe), payload_bytes=size,
                                   mechanism="pipe_duplex", start_method=start_method))
        cases.append(f.case_record(samples_ns=samples(i + 10 + len(machine_id)), payload_bytes=size,
                                   mechanism="queue", start_method=start_method))
    if lock:
        cases.append(f.case_record(samples_ns=samples(30 + len(machine_id)), payload_bytes=0, mechanism="lock",
                                   pattern="contention", start_method=start_method))
    rs = f.result_set(cases, machine_id=machine_id)
    rs["_source"] = f"results/{machine_id}/run.json"
    return rs


@pytest.fixture(scope="module")
def comp():
    """pipe_duplex is 1.3x slower on "slow"; queue and lock are the same."""
    return compare(Side("fast", [result_set("fast")]), [Side("slow", [result_set("slow", slow_pipe=1.3)])])


def test_ratio_plot_draws_each_ratio_against_payload_size(comp):
    fig = ratio_plot(comp.frame, "latency_p50")
    axes = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert sorted(ax.get_title(loc="left") for ax in axes) == ["contention: slow", "roundtrip: slow"]
    ax = next(ax for ax in axes if ax.get_title(loc="left") == "roundtrip: slow")
    lines = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_gid() == "ratio"}
    assert set(lines) == {"pipe_duplex", "queue"}
    p50 = comp.frame[comp.frame.metric == "latency_p50"]
    for mech, line in lines.items():
        expected = p50[p50.mechanism == mech].sort_values("payload_bytes")
        assert list(line.get_xdata()) == list(SIZES)
        np.testing.assert_allclose(line.get_ydata(), expected.ratio.to_numpy())
    np.testing.assert_allclose(lines["pipe_duplex"].get_ydata(), 1.3, rtol=0.05)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert any(list(ln.get_ydata()) == [1.0, 1.0] for ln in ax.get_lines())    # the line at 1
    filled = [c for c in ax.collections if c.get_gid() == "significant"]
    assert sum(len(c.get_offsets()) for c in filled) == 3                     # the three pipe sizes
    cis = [c for c in ax.collections if c.get_gid() == "ci"]
    assert len(cis) == 2                                                      # a CI per series
    pipe = p50[p50.mechanism == "pipe_duplex"].sort_values("payload_bytes")
    ends = np.array([seg[:, 1] for c in cis for seg in c.get_segments()])
    expected_ends = pipe[["ratio_ci_low", "ratio_ci_high"]].to_numpy(dtype=float)
    assert all(np.isclose(ends, e).all(axis=1).any() for e in expected_ends)   # drawn from end to end


def test_ratio_plot_draws_a_ci_whose_end_is_the_estimate(comp):
    """Seen on real data: a ratio equal to its CI's low end but for rounding (1e-16 below it)."""
    frame = comp.frame.copy()
    i = frame.index[frame.metric == "latency_p50"][0]
    frame.loc[i, "ratio_ci_low"] = np.nextafter(frame.loc[i, "ratio"], np.inf)
    fig = ratio_plot(frame, "latency_p50")
    assert fig.axes


def test_ratio_plot_puts_payloadless_cases_at_the_left(comp):
    fig = ratio_plot(comp.frame, "latency_p50")
    ax = next(ax for ax in fig.axes if ax.get_title(loc="left") == "contention: slow")
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "ratio"]
    assert list(line.get_xdata()) == [ZERO_X]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0 B"]


def test_wins_map_cells_say_who_wins_and_by_how_much(comp):
    fig = wins_map(comp.frame, "latency_p50")
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    assert rows == ["queue roundtrip w1", "pipe_duplex roundtrip w1", "lock contention w1"]
    assert cols == ["0 B", "8 B", "1 KiB", "64 KiB"]
    grid = np.ma.filled(ax.images[0].get_array(), np.nan)
    p50 = comp.frame[comp.frame.metric == "latency_p50"]
    pipe = p50[p50.mechanism == "pipe_duplex"].sort_values("payload_bytes")
    np.testing.assert_allclose(grid[1, 1:], np.log2(pipe.ratio.to_numpy()) * -1)   # base (fast) wins
    assert (grid[0, 1:] == 0).all() and grid[2, 0] == 0                           # not significant
    assert math.isnan(grid[0, 0]) and math.isnan(grid[2, 1])                      # no such case
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert texts[(0, 1)] == "≈" and texts[(1, 2)] == f"{pipe.ratio.iloc[1]:.2g}x"
    assert texts[(1, 2)] in ("1.2x", "1.3x", "1.4x")
    assert (2, 1) not in texts                                                    # missing: no text


def test_wins_map_panel_per_other_set():
    sets = [result_set("a"), result_set("b", slow_pipe=0.5), result_set("c", slow_pipe=2.0)]
    comp = compare(Side("a", [sets[0]]), [Side("b", [sets[1]]), Side("c", [sets[2]])])
    fig = wins_map(comp.frame, "latency_p50")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2
    assert "other: b" in panels[0].get_title(loc="left") and "other: c" in panels[1].get_title(loc="left")
    b, c = (np.ma.filled(ax.images[0].get_array(), np.nan) for ax in panels)
    assert (b[1, 1:] > 0.9).all() and (c[1, 1:] < -0.9).all()      # b's pipe 2x faster, c's 2x slower


def test_figures_without_the_metric_raise_no_data(comp):
    frame = comp.frame[comp.frame.metric != "throughput_msgs"]
    with pytest.raises(NoData, match="throughput_msgs"):
        ratio_plot(frame, "throughput_msgs")
    with pytest.raises(NoData):
        wins_map(frame.iloc[0:0], "latency_p50")


def test_comparison_of_returns_figures_escaped_html_and_names_what_was_left_out():
    section = comparison_of(Side("fast", [result_set("fast")]),
                            [Side("<b>slow</b>", [result_set("<b>slow</b>", slow_pipe=1.3)])])
    assert [fig["id"] for fig in section["figures"]] == [
        "compare-ratio-latency_p50", "compare-wins-latency_p50",
        "compare-ratio-throughput_msgs", "compare-wins-throughput_msgs"]
    assert all(fig["figure"].axes for fig in section["figures"])
    assert isinstance(section["table_html"], Markup)
    assert "&lt;b&gt;slow&lt;/b&gt;" in section["table_html"] and "<b>slow" not in section["table_html"]
    assert section["comparison"].base == "fast"
    assert set(section["frame"].metric) == {"latency_p50", "latency_p99", "throughput_msgs"}
    assert section["summary"][0].startswith("<b>slow</b> vs fast: 7 case(s) compared")
    bounded = comparison_of(Side("fast", [result_set("fast")]), [Side("slow", [result_set("slow")])],
                            ("latency_p50",), max_rows=1, left_out=["m · spawn"], id_prefix="compare-x")
    assert [fig["id"] for fig in bounded["figures"]] == ["compare-x-ratio-latency_p50", "compare-x-wins-latency_p50"]
    assert "1 more not compared here: m · spawn (use `ipcbench compare`)" in bounded["summary"]
