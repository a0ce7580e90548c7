"""Figures tested through what they draw: line data, scales, labels, texts; never image files."""

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from ipcbench.plots import figures
from ipcbench.results.frame import samples_frame
from tests import factories

KiB, MiB = 1024, 1024**2


rs = factories.named_set
tidy = factories.tidy_of


def case(mech, pattern, size=8, workers=1, samples_ns=None, **metrics):
    return factories.case_record(samples_ns=samples_ns, mechanism=mech, pattern=pattern, payload_bytes=size,
                                 workers=workers, metrics=metrics or None)


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def panels(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


# ------------------------------------------------------------------------------------------------
def test_latency_vs_size_draws_p50_and_p99_per_mechanism_log_log():
    cases = [case(m, "roundtrip", s, latency_p50=v * (1 + s / KiB), latency_p99=3 * v * (1 + s / KiB))
             for m, v in (("queue", 50e-6), ("pipe_duplex", 30e-6)) for s in (8, KiB, 64 * KiB)]
    cases.append(case("queue", "stream", 8, latency_p50=1.0))       # another pattern: not drawn
    fig = figures.latency_vs_size(tidy(rs(cases)))
    assert isinstance(fig, Figure)
    (ax,) = panels(fig)
    lines = lines_by_label(ax)
    assert set(lines) == {"queue", "queue p99", "pipe_duplex", "pipe_duplex p99"}
    xy = lines["pipe_duplex"].get_xydata()
    np.testing.assert_allclose(xy[:, 0], [8, KiB, 64 * KiB])
    np.testing.assert_allclose(xy[:, 1], [30e-6 * (1 + s / KiB) for s in (8, KiB, 64 * KiB)])
    np.testing.assert_allclose(lines["queue p99"].get_xydata()[:, 1], [150e-6 * (1 + s / KiB) for s in (8, KiB, 64 * KiB)])
    assert lines["queue p99"].get_linestyle() == "--" and lines["queue"].get_linestyle() == "-"
    assert lines["queue"].get_color() == lines["queue p99"].get_color() != lines["pipe_duplex"].get_color()
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "(s, log scale)" in ax.get_ylabel() and "payload size" in ax.get_xlabel()
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["8 B", "1 KiB", "64 KiB"]
    assert ax.get_title() == "test-machine · Python 3.11.7 · fork · spread"


def test_oneway_latency_draws_the_paced_p50_of_streams_with_its_ci():
    cases = []
    for m, v in (("queue", 40e-6), ("pipe_simplex", 10e-6)):
        for s in (8, KiB, 64 * KiB):
            rec = case(m, "stream", s, latency_p50=1.0, latency_oneway_p50=v * (1 + s / KiB))
            rec["noise"]["ci"]["latency_oneway_p50"] = [0.9 * v * (1 + s / KiB), 1.1 * v * (1 + s / KiB)]
            cases.append(rec)
    cases.append(case("queue", "roundtrip", 8, latency_oneway_p50=5.0))     # not a stream: not drawn
    fig = figures.oneway_latency_vs_size(tidy(rs(cases)))
    (ax,) = panels(fig)
    lines = lines_by_label(ax)
    assert set(lines) == {"queue", "pipe_simplex"}                          # the backlog latency_p50 is not drawn
    np.testing.assert_allclose(lines["queue"].get_xydata()[:, 0], [8, KiB, 64 * KiB])
    np.testing.assert_allclose(lines["queue"].get_xydata()[:, 1], [40e-6 * (1 + s / KiB) for s in (8, KiB, 64 * KiB)])
    bands = [c for c in ax.collections if c.get_label() == "_ci"]
    assert len(bands) == 2                                                   # one shaded CI per mechanism
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and "one-way latency" in ax.get_ylabel()
    assert "light load" in fig.get_suptitle() and "paced at 1/10" in fig.get_suptitle()
    with pytest.raises(figures.NoData, match="latency_oneway_p50"):
        figures.oneway_latency_vs_size(tidy(rs([case("queue", "stream", 8, latency_p50=1.0)])))


def test_latency_and_throughput_figures_shade_the_round_level_ci():
    cases = [case("queue", "roundtrip", s) for s in (8, KiB, 64 * KiB)]
    cases += [case("queue", "stream", s) for s in (8, KiB)]
    t = tidy(rs(cases))
    (ax,) = panels(figures.latency_vs_size(t))
    (band,) = ax.collections                                    # one band: queue's p50
    p50 = t[(t.metric == "latency_p50") & (t.pattern == "roundtrip")].sort_values("payload_bytes")
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(p50.ci_low.min()) and ys.max() == pytest.approx(p50.ci_high.max())
    assert (p50.ci_low < p50.value).all() and (p50.value < p50.ci_high).all()
    fig = figures.throughput_vs_size(t)
    mb, msgs = panels(fig)
    tput = t[(t.metric == "throughput_msgs") & (t.pattern == "stream")]
    assert msgs.collections[0].get_paths()[0].vertices[:, 1].max() == pytest.approx(tput.ci_high.max())
    assert len(mb.collections) == 1
    no_ci = t.assign(ci_low=np.nan, ci_high=np.nan)             # fewer than two rounds: no band, no guess
    (ax,) = panels(figures.latency_vs_size(no_ci))
    assert not ax.collections


def test_latency_vs_size_one_panel_per_setup_with_its_own_values():
    a = rs([case("queue", "roundtrip", 8, latency_p50=1e-5, latency_p99=2e-5)], "a.json", machine_id="laptop")
    b = rs([case("queue", "roundtrip", 8, latency_p50=7e-5, latency_p99=9e-5)], "b.json", machine_id="server")
    fig = figures.latency_vs_size(tidy(a, b))
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["laptop · Python 3.11.7 · fork · spread", "server · Python 3.11.7 · fork · spread"]
    assert [lines_by_label(ax)["queue"].get_xydata()[0, 1] for ax in axes] == pytest.approx([1e-5, 7e-5])


def test_figures_without_data_raise_nodata():
    only_pipe = tidy(rs([case("pipe_duplex", "roundtrip")]))
    for fn in (figures.throughput_vs_size, figures.scaling, figures.pool_apply_vs_async, figures.startup_cost,
               figures.winner_map):
        with pytest.raises(figures.NoData):
            fn(only_pipe)
    with pytest.raises(figures.NoData, match="no roundtrip cases"):
        figures.latency_vs_size(tidy(rs([case("queue", "stream")])))
    with pytest.raises(figures.NoData):
        figures.latency_distributions(samples_frame([rs([])]))


def test_throughput_vs_size_mb_and_msgs_with_fanin_fallback():
    cases = [case("pipe_duplex", "stream", s, throughput_bytes=b, throughput_msgs=b / s)
             for s, b in ((8, 4e6), (64 * KiB, 900e6))]
    cases += [case("manager_queue", "fanin", s, workers=1, throughput_bytes=b, throughput_msgs=b / s)
              for s, b in ((8, 1e5), (64 * KiB, 50e6))]
    cases.append(case("manager_queue", "fanin", 8, workers=2, throughput_bytes=1.0, throughput_msgs=1.0))
    fig = figures.throughput_vs_size(tidy(rs(cases)))
    mb_ax, msg_ax = panels(fig)
    mb, msgs = lines_by_label(mb_ax), lines_by_label(msg_ax)
    assert set(mb) == {"pipe_duplex", "manager_queue (fanin)"}
    np.testing.assert_allclose(mb["pipe_duplex"].get_xydata(), [[8, 4.0], [64 * KiB, 900.0]])
    np.testing.assert_allclose(msgs["manager_queue (fanin)"].get_xydata()[:, 1], [1e5 / 8, 50e6 / (64 * KiB)])
    assert mb["manager_queue (fanin)"].get_linestyle() == ":"
    assert "MB/s" in mb_ax.get_ylabel() and "msg/s" in msg_ax.get_ylabel()
    assert all(ax.get_yscale() == "log" and ax.get_xscale() == "log" for ax in (mb_ax, msg_ax))


def test_scaling_throughput_against_workers_per_pattern():
    cases = [case("queue", "fanin", 8, w, throughput_msgs=v) for w, v in ((1, 1000), (2, 1800), (4, 2500))]
    cases += [case("pool_apply", "dispatch", 8, w, throughput_msgs=v) for w, v in ((1, 300), (2, 550))]
    cases += [case("manager_dict", "rpc", 8, 1, throughput_msgs=5000)]         # one worker count: no rpc panel
    fig = figures.scaling(tidy(rs(cases)))
    fanin, dispatch = panels(fig)
    assert fanin.get_title().startswith("fanin") and dispatch.get_title().startswith("dispatch")
    np.testing.assert_allclose(lines_by_label(fanin)["queue 8 B"].get_xydata(), [[1, 1000], [2, 1800], [4, 2500]])
    np.testing.assert_allclose(lines_by_label(dispatch)["pool_apply 8 B"].get_xydata(), [[1, 300], [2, 550]])
    assert [t.get_text() for t in fanin.get_xticklabels()] == ["1", "2", "4"]
    assert fanin.get_yscale() == "log" and "msg/s" in fanin.get_ylabel()


def test_representative_sizes():
    sizes = [8, 64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, MiB, 16 * MiB]
    assert figures.representative_sizes(sizes) == [8, 16 * KiB, 16 * MiB]
    assert figures.representative_sizes([8, MiB]) == [8, MiB]


def test_pool_apply_vs_async_latency_and_throughput_per_worker_count():
    """Latency per task only: pool_apply_async's latency is one batch's (plan.cases.PER_CALL_LATENCY), so it
    is drawn in the throughput panel only; the window form's is per task."""
    cases = [case(m, "dispatch", s, w, latency_p50=lat * w, throughput_msgs=tp * w)
             for m, lat, tp in (("pool_apply", 1e-3, 100), ("pool_apply_async", 9e-2, 300),
                                ("pool_apply_async_window", 2e-3, 150))
             for s in (8, 64 * KiB) for w in (1, 2)]
    fig = figures.pool_apply_vs_async(tidy(rs(cases)))
    lat_ax, tp_ax = panels(fig)
    lat, tp = lines_by_label(lat_ax), lines_by_label(tp_ax)
    assert set(lat) == {"pool_apply w1", "pool_apply w2", "pool_apply_async_window w1", "pool_apply_async_window w2"}
    assert {"pool_apply_async w1", "pool_apply_async w2"} <= set(tp)
    np.testing.assert_allclose(lat["pool_apply_async_window w2"].get_xydata(), [[8, 4e-3], [64 * KiB, 4e-3]])
    np.testing.assert_allclose(tp["pool_apply_async w2"].get_xydata()[:, 1], [600, 600])
    np.testing.assert_allclose(tp["pool_apply w2"].get_xydata()[:, 1], [200, 200])
    assert lat["pool_apply w1"].get_linestyle() != lat["pool_apply w2"].get_linestyle()
    assert "tasks/s" in tp_ax.get_ylabel()


def cell_texts(ax) -> list[str]:
    return sorted(t.get_text() for t in ax.texts)


def test_winner_map_names_fastest_with_margin_per_size_and_workers():
    cases = [case("pipe_duplex", "roundtrip", 8, latency_p50=10e-6), case("queue", "roundtrip", 8, latency_p50=17e-6),
             case("pipe_duplex", "roundtrip", MiB, latency_p50=2e-3), case("queue", "roundtrip", MiB, latency_p50=1e-3),
             case("manager_dict", "rpc", 8, 2, latency_p50=1e-4), case("manager_list", "rpc", 8, 2, latency_p50=1.02e-4),
             case("pool_apply", "dispatch", 8, 1, latency_p50=1e-3)]                  # alone in its row: no row
    fig = figures.winner_map(tidy(rs(cases)), "latency")
    (ax,) = panels(fig)
    assert cell_texts(ax) == ["manager_dict\n≈ 1.0x", "pipe_duplex\n1.7x", "queue\n2.0x"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["roundtrip, 1 worker", "rpc, 2 workers"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8 B", "1 MiB"]


def test_winner_grid_throughput_higher_wins_and_lone_cells():
    cases = [case("queue", "fanin", 8, 2, throughput_msgs=3000), case("manager_queue", "fanin", 8, 2, throughput_msgs=1000),
             case("queue", "fanin", MiB, 2, throughput_msgs=30)]
    rows, sizes, cells = figures.winner_grid(tidy(rs(cases)), "throughput")
    assert rows == [("fanin", 2)] and sizes == [8, MiB]
    assert cells[(("fanin", 2), 8)] == ("queue", pytest.approx(3.0), True)
    assert cells[(("fanin", 2), MiB)] == ("queue", None, True)
    fig = figures.winner_map(tidy(rs(cases)), "throughput")
    assert cell_texts(panels(fig)[0]) == ["queue\n3.0x", "queue\nonly"]
    with pytest.raises(ValueError, match="kind must be one of"):
        figures.winner_map(tidy(rs(cases)), "speed")


def test_ecdf_thins_to_max_points_keeping_extremes():
    x, y = figures.ecdf(np.arange(10_000, 0, -1), max_points=500)
    assert len(x) == 500 and x[0] == 1 and x[-1] == 10_000
    assert np.all(np.diff(x) > 0) and 0 < y[0] < y[-1] < 1
    assert y[0] == pytest.approx(0.5 / 10_000) and y[-1] == pytest.approx(1 - 0.5 / 10_000)
    x, y = figures.ecdf([3.0, 1.0, 2.0])
    np.testing.assert_allclose(x, [1, 2, 3]) and np.testing.assert_allclose(y, [1 / 6, 1 / 2, 5 / 6])


def test_latency_distributions_ecdf_of_smallest_payload_with_bimodal_shape():
    fast = [30_000] * 150 + [80_000] * 150                # two modes
    cases = [case("pipe_duplex", "roundtrip", 8, samples_ns=fast),
             case("pipe_duplex", "roundtrip", 64 * KiB, samples_ns=[500_000] * 50),      # not small: not drawn
             case("queue", "roundtrip", 8, samples_ns=list(range(40_000, 43_000, 10))),
             case("manager_dict", "rpc", KiB, samples_ns=[100_000] * 60)]
    fig = figures.latency_distributions(samples_frame([rs(cases)]))
    rt_ax, rpc_ax = panels(fig)
    assert rt_ax.get_title().startswith("roundtrip, 8 B, 1 worker") and rpc_ax.get_title().startswith("rpc, 1 KiB")
    lines = lines_by_label(rt_ax)
    assert set(lines) == {"pipe_duplex", "queue"}
    x, y = lines["pipe_duplex"].get_xdata(), lines["pipe_duplex"].get_ydata()
    assert set(np.round(x * 1e9).astype(int)) == {30_000, 80_000}
    assert y[x < 50e-6].max() == pytest.approx(149.5 / 300)           # half the messages in the fast mode
    assert len(lines["queue"].get_xdata()) == 300          # every sample: fewer than MAX_POINTS
    assert rt_ax.get_xscale() == "log" and rt_ax.get_yscale() == "logit"


def test_cpu_per_message_per_pattern_panel():
    cases = [case(m, "roundtrip", s, cpu_per_msg=v * (1 + s / KiB))
             for m, v in (("queue", 40e-6), ("pipe_duplex", 20e-6)) for s in (8, KiB)]
    cases += [case("queue", "stream", 8, cpu_per_msg=5e-6)]
    fig = figures.cpu_per_message(tidy(rs(cases)))
    rt_ax, stream_ax = panels(fig)
    np.testing.assert_allclose(lines_by_label(rt_ax)["pipe_duplex"].get_xydata(), [[8, 20e-6 * (1 + 8 / KiB)], [KiB, 40e-6]])
    assert list(lines_by_label(stream_ax)) == ["queue"]
    assert "CPU per message (s, log scale)" == rt_ax.get_ylabel()


def test_startup_cost_per_start_method_with_values_written():
    cases = [factories.case_record(mechanism="process_start", pattern="startup", payload_bytes=s, start_method=m,
                                   metrics={"latency_p50": v, "latency_p99": 2 * v})
             for m, v in (("fork", 2e-3), ("spawn", 40e-3)) for s in (8, MiB)]
    fig = figures.startup_cost(tidy(rs(cases)))
    (ax,) = panels(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fork", "spawn"]
    assert sorted(t.get_text() for t in ax.texts) == ["2 ms", "2 ms", "40 ms", "40 ms"]
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [list(np.asarray(line.get_ydata(), dtype=float)) for line in dots] == [[0.002, 0.04], [0.002, 0.04]]
    assert ax.get_yscale() == "log"


def test_figure_registry_ids_unique_and_figures_module_avoids_pyplot():
    ids = [spec.id for spec in figures.FIGURES]
    assert len(ids) == len(set(ids)) >= 8
    assert {spec.source for spec in figures.FIGURES} == {"tidy", "samples"}
    code = "import sys, ipcbench.plots.figures; sys.exit('matplotlib.pyplot' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_mechanism_order_lists_every_registered_mechanism_and_unknown_ones_sort_after(monkeypatch):
    from ipcbench.measure import mechanisms
    from ipcbench.plots.base import MECHANISM_ORDER, mechanism_color, mechanism_sort_key

    monkeypatch.delenv("IPCBENCH_PLUGINS", raising=False)     # ipcbench's own mechanisms, no test plugins
    monkeypatch.setattr(mechanisms, "_REGISTRY", None)
    assert {m.name for m in mechanisms.all_mechanisms()} <= set(MECHANISM_ORDER)
    assert len(set(MECHANISM_ORDER)) == len(MECHANISM_ORDER)
    assert sorted(["zz_mine", "lock", "aa_mine", "queue"], key=mechanism_sort_key) == [
        "queue", "lock", "aa_mine", "zz_mine"]
    assert len({mechanism_color(m) for m in MECHANISM_ORDER}) == len(MECHANISM_ORDER)


def test_winner_map_says_no_clear_winner_where_cis_overlap():
    def noisy(mech, seed, scale, round_sd):
        return factories.case_record(samples_ns=factories.hierarchical_samples(seed, 3, scale=scale, round_sd=round_sd),
                                     rounds=3,
                                     mechanism=mech, pattern="roundtrip", payload_bytes=8)

    frame = tidy(rs([noisy("pipe_duplex", 1, 1.0, 0.3), noisy("queue", 2, 1.1, 0.3)]))
    rows, sizes, cells = figures.winner_grid(frame, "latency")
    (winner, margin, clear), = cells.values()
    assert clear is False and margin == pytest.approx(1.1, abs=0.3)
    (ax,) = panels(figures.winner_map(frame, "latency"))
    assert cell_texts(ax)[0].startswith("no clear\nwinner (")
