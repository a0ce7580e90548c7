"""Key findings against hand-built frames where the right answer is known."""

import subprocess
import sys

import pytest

from ipcbench import units
from ipcbench.analysis import findings
from ipcbench.analysis.setups import setups
from ipcbench.results.frame import failures_frame
from tests import factories

KiB, MiB = 1024, 1024**2


rs = factories.named_set
tidy = factories.tidy_of


def rt(mech, size, p50, **kw):
    return factories.case_record(mechanism=mech, pattern="roundtrip", payload_bytes=size,
                                 metrics={"latency_p50": p50, **kw.pop("metrics", {})}, **kw)


def test_roundtrip_leader_bands_name_winner_margin_and_runner_up():
    cases = []
    for size in (8, KiB, 16 * KiB):
        cases += [rt("pipe_duplex", size, 10e-6), rt("queue", size, 17e-6), rt("manager_queue", size, 90e-6)]
    cases += [rt("pipe_duplex", MiB, 2e-3), rt("queue", MiB, 1e-3), rt("manager_queue", MiB, 5e-3)]
    out = findings.roundtrip_latency(tidy(rs(cases)))
    assert [f.text for f in out] == [
        "Up to 16 KiB, pipe_duplex has the lowest round-trip latency (p50): 1.7x lower than queue (the runner-up).",
        "At 1 MiB, queue has the lowest round-trip latency (p50): 2.0x lower than pipe_duplex (the runner-up).",
    ]
    assert out[0].setup == "test-machine · Python 3.11.7 · fork · spread"
    assert out[0].data["winner"] == "pipe_duplex"
    assert (out[0].data["from_bytes"], out[0].data["to_bytes"]) == (8, 16 * KiB)
    assert [r["ratio"] for r in out[0].data["rows"]] == pytest.approx([1.7, 1.7, 1.7])


def test_margin_range_ties_and_mixed_runners_up():
    cases = [rt("pipe_duplex", 8, 10e-6), rt("queue", 8, 12e-6), rt("pipe_simplex", 8, 30e-6),
             rt("pipe_duplex", KiB, 10e-6), rt("queue", KiB, 30e-6), rt("pipe_simplex", KiB, 17e-6),
             rt("pipe_simplex", MiB, 1.00e-3), rt("pipe_duplex", MiB, 1.02e-3)]
    texts = [f.text for f in findings.roundtrip_latency(tidy(rs(cases)))]
    assert texts == [
        "Up to 1 KiB, pipe_duplex has the lowest round-trip latency (p50): 1.2x–1.7x lower than queue or pipe_simplex.",
        "At 1 MiB, pipe_simplex and pipe_duplex are within 5% of each other in round-trip latency (p50).",
    ]


def test_every_size_phrase_and_single_mechanism_gives_no_leader():
    cases = [rt("pipe_duplex", s, 10e-6) for s in (8, KiB)] + [rt("queue", s, 40e-6) for s in (8, KiB)]
    assert findings.roundtrip_latency(tidy(rs(cases)))[0].text.startswith(
        "At every payload size measured (8 B to 1 KiB), pipe_duplex has the lowest round-trip latency (p50): 4.0x")
    assert findings.roundtrip_latency(tidy(rs([rt("pipe_duplex", 8, 1e-5)]))) == []


def test_setups_are_never_mixed():
    a = rs([rt("pipe_duplex", 8, 10e-6), rt("queue", 8, 20e-6)], source="a.json", machine_id="laptop")
    b = rs([rt("pipe_duplex", 8, 30e-6), rt("queue", 8, 10e-6)], source="b.json", machine_id="server")
    out = findings.roundtrip_latency(tidy(a, b))
    assert [(f.setup, f.data["winner"]) for f in out] == [
        ("laptop · Python 3.11.7 · fork · spread", "pipe_duplex"), ("server · Python 3.11.7 · fork · spread", "queue")]
    assert "2.0x lower than queue" in out[0].text and "3.0x lower than pipe_duplex" in out[1].text


def test_same_setup_in_two_files_is_two_parts_named_by_file():
    a = rs([rt("pipe_duplex", 8, 10e-6), rt("queue", 8, 20e-6)], source="/r/m/monday.json")
    b = rs([rt("pipe_duplex", 8, 10e-6), rt("queue", 8, 20e-6)], source="/r/m/tuesday.json")
    labels = [label for label, _ in setups(tidy(a, b))]
    assert labels == ["test-machine · Python 3.11.7 · fork · spread · monday.json",
                      "test-machine · Python 3.11.7 · fork · spread · tuesday.json"]


def stream(mech, size, bps):
    return factories.case_record(mechanism=mech, pattern="stream", payload_bytes=size,
                                 metrics={"throughput_bytes": bps, "throughput_msgs": bps / size})


def test_stream_throughput_leader_and_peak():
    cases = [stream("pipe_duplex", 8, 1e6), stream("queue", 8, 0.5e6),
             stream("pipe_duplex", 64 * KiB, 800e6), stream("queue", 64 * KiB, 1.2e9)]
    texts = [f.text for f in findings.stream_throughput(tidy(rs(cases)))]
    assert texts == [
        "At 8 B, pipe_duplex has the highest one-way throughput (stream): 2.0x higher than queue (the runner-up).",
        "At 64 KiB, queue has the highest one-way throughput (stream): 1.5x higher than pipe_duplex (the runner-up).",
        "Peak one-way throughput: 1.2 GB/s (queue at 64 KiB).",
    ]


def multi(mech, pattern, workers, msgs, size=8, p50=1e-4):
    return factories.case_record(mechanism=mech, pattern=pattern, workers=workers, payload_bytes=size,
                                 metrics={"throughput_msgs": msgs, "latency_p50": p50})


def test_scaling_ratio_from_fewest_to_most_workers_at_smallest_payload():
    cases = [multi("queue", "fanin", 1, 1000), multi("queue", "fanin", 4, 2500),
             multi("manager_queue", "fanin", 1, 400), multi("manager_queue", "fanin", 4, 200),
             multi("queue", "fanin", 1, 10, size=MiB), multi("queue", "fanin", 4, 99, size=MiB)]
    out = findings.scaling(tidy(rs(cases)))
    assert [f.text for f in out] == [
        "fanin at 8 B: 4 workers instead of 1 change throughput (msg/s) ×2.5 for queue, ×0.50 for manager_queue."]
    assert out[0].data["ratios"] == pytest.approx({"queue": 2.5, "manager_queue": 0.5})
    assert findings.scaling(tidy(rs([multi("queue", "fanin", 1, 1000)]))) == []


def test_pool_async_against_apply():
    cases = [multi("pool_apply", "dispatch", 1, 1000, p50=1e-3), multi("pool_apply_async", "dispatch", 1, 3000, p50=9e-2),
             multi("pool_apply", "dispatch", 2, 1000), multi("pool_apply_async", "dispatch", 2, 1500),
             multi("pool_apply_async_window", "dispatch", 1, 1100, p50=1.2e-3),
             multi("pool_apply_async_window", "dispatch", 2, 1900, p50=1e-3)]
    out = findings.pool_async(tidy(rs(cases)))
    # the batch form's p50 (one batch of tasks) is never set beside apply's; the window form's is, at 1 worker
    assert [f.text for f in out] == [
        "pool_apply_async completes 1.5x–3.0x as many tasks per second as pool_apply (dispatch, 8 B, 1 to 2 workers); "
        "one task at a time, pool_apply_async_window's latency per task (p50) is 1.2x that of pool_apply "
        "(at 8 B, 1 worker)."]
    assert sorted(out[0].data["throughput_ratios"]) == pytest.approx([1.5, 3.0])
    assert out[0].data["latency_ratio"] == pytest.approx(1.2)
    no_window = findings.pool_async(tidy(rs(cases[:4])))
    assert no_window[0].text.endswith("1 to 2 workers).") and no_window[0].data["latency_ratio"] is None


def startup_case(method, size, p50):
    return factories.case_record(mechanism="process_start", pattern="startup", payload_bytes=size,
                                 start_method=method, metrics={"latency_p50": p50})


def test_startup_per_start_method_in_one_sentence_per_machine():
    cases = [startup_case("fork", 8, 2e-3), startup_case("spawn", 8, 50e-3), startup_case("forkserver", 8, 5e-3),
             startup_case("fork", MiB, 9e-3)]
    out = findings.startup(tidy(rs(cases)))
    assert [f.text for f in out] == ["Starting a process (p50, 8 B argument): fork 2 ms, forkserver 5 ms, "
                                     "spawn 50 ms; fork is 25x faster than spawn."]
    assert out[0].setup == "test-machine · Python 3.11.7"


def test_cpu_cost_least_and_most():
    cases = [factories.case_record(mechanism=m, pattern="roundtrip", metrics={"cpu_per_msg": v})
             for m, v in (("queue", 40e-6), ("pipe_duplex", 10e-6), ("manager_queue", 200e-6))]
    out = findings.cpu_cost(tidy(rs(cases)))
    assert [f.text for f in out] == ["Per roundtrip op at 8 B, pipe_duplex uses the least CPU (10 µs across all "
                                     "processes) and manager_queue the most (200 µs, 20x)."]


def test_noise_counts_flags_and_failures():
    cases = [factories.case_record(mechanism=m) for m in ("queue", "pipe_duplex", "pipe_simplex")]
    cases[0]["noise"]["flags"] = ["noisy", "bimodal"]
    cases[1]["noise"]["flags"] = ["few_samples"]
    cases[2]["noise"]["flags"] = []
    cases.append(factories.case_record(mechanism="manager_dict", pattern="rpc", status="failed", error="timeout"))
    data = rs(cases)
    out = findings.noise(tidy(data), failures_frame([data]))
    assert [f.text for f in out] == [
        "2 of 4 cases carry noise warnings (1 noisy, 1 bimodal, 1 few samples); read their numbers with care.",
        "1 of 4 cases failed; their reasons are listed below."]
    assert list(findings.flagged_cases(tidy(data))["mechanism"]) == ["queue", "pipe_duplex"]


def test_key_findings_on_empty_frame_is_empty():
    assert findings.key_findings(tidy(rs([]))) == []


@pytest.mark.parametrize(("lo", "hi", "sizes", "phrase"), [
    (8, 8, [8], "At 8 B"), (8, KiB, [8, KiB, MiB], "Up to 1 KiB"), (KiB, MiB, [8, KiB, MiB], "From 1 KiB up"),
    (KiB, 64 * KiB, [8, KiB, 64 * KiB, MiB], "From 1 KiB to 64 KiB"), (KiB, KiB, [8, KiB, MiB], "At 1 KiB"),
])
def test_size_phrases(lo, hi, sizes, phrase):
    assert findings._sizes_phrase(lo, hi, sizes) == phrase


def test_formatters():
    assert units.format_ratio(1.66) == "1.7x" and units.format_ratio(25.2) == "25x"
    assert units.format_count_rate(12345) == "12.3k" and units.format_count_rate(950) == "950"
    assert units.format_bytes_rate(1.2e9) == "1.2 GB/s" and units.format_bytes_rate(512) == "512 B/s"


def test_findings_do_not_import_matplotlib():
    code = ("import sys, ipcbench.analysis.findings, ipcbench.results.frame; "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_no_clear_winner_when_the_rounds_overlap():
    """pipe_duplex is 1.1x faster on average, but its three rounds and queue's scatter by ~30 %: the
    round-level CIs overlap, so no winner is named; at 1 KiB the rounds are tight and the winner is clear."""
    def noisy(mech, seed, scale, size, round_sd):
        return factories.case_record(samples_ns=factories.hierarchical_samples(seed, 3, scale=scale,
                                                                               round_sd=round_sd),
                                     rounds=3, mechanism=mech, pattern="roundtrip", payload_bytes=size)

    cases = [noisy("pipe_duplex", 1, 1.0, 8, 0.3), noisy("queue", 2, 1.1, 8, 0.3),
             noisy("pipe_duplex", 3, 1.0, KiB, 0.005), noisy("queue", 4, 1.7, KiB, 0.005)]
    out = findings.roundtrip_latency(tidy(rs(cases)))
    assert len(out) == 2
    assert out[0].text.startswith("At 8 B, no clear winner in round-trip latency (p50): ")
    assert out[0].text.endswith("but their 95 % confidence intervals overlap.")
    assert out[0].data["winner"] is None and out[0].data["rows"][0]["clear"] is False
    assert out[1].text.startswith("At 1 KiB, pipe_duplex has the lowest round-trip latency (p50): 1.7x lower")
    assert out[1].data["rows"][0]["clear"] is True


def test_no_winner_without_round_level_cis():
    """A set without CIs (one round each) names no winner, however large the gap."""
    one = [factories.case_record(mechanism=m, pattern="roundtrip", rounds=1, metrics={"latency_p50": v})
           for m, v in (("pipe_duplex", 10e-6), ("queue", 40e-6))]
    (f,) = findings.roundtrip_latency(tidy(rs(one)))
    assert "no clear winner" in f.text and "4.0x" in f.text


def test_a_batch_latency_is_never_ranked_beside_a_task_latency():
    """pool_apply_async's latency is one batch of tasks (here, absurdly, the lowest): the winner grid ranks the per-task
    dispatch latencies only (its throughput still competes)."""
    from ipcbench.analysis.winners import winner_grid

    cases = [multi("pool_apply", "dispatch", 1, 1000, p50=1e-3), multi("pool_apply_async", "dispatch", 1, 30000, p50=0.5e-3),
             multi("celery", "dispatch", 1, 300, p50=4e-3)]
    t = tidy(rs(cases))
    rows, sizes, cells = winner_grid(t, "latency_p50", ["dispatch"])
    assert {v[0] for v in cells.values()} == {"pool_apply"}
    rows, sizes, cells = winner_grid(t, "throughput_msgs", ["dispatch"])
    assert {v[0] for v in cells.values()} == {"pool_apply_async"}
