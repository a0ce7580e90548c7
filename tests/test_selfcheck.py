"""``ipcbench selfcheck``: the paired ratio, its CI and the verdicts on made-up numbers; every user loop on a
tiny case; the command end to end (its output, its file, a gross gap fails it); reaping on a timeout and on
Ctrl-C; bad input."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipcbench.cli import main
from ipcbench.commands import selfcheck as sc
from ipcbench.commands.selfcheck import FAIL, INCONCLUSIVE, PASS, Ratio
from ipcbench.measure import user_loops

ROOT = Path(__file__).resolve().parent.parent
TOL = 0.10
LO, HI = 1 / 1.1, 1.1


def cli_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


# -- the statistics ------------------------------------------------------------------------------------
def test_paired_ratio_is_the_geometric_mean_with_a_t_interval_of_the_log_ratios():
    # log ratios 0, 0.1, 0.2: mean 0.1, sd 0.1, sem 0.1/sqrt(3); t(0.975, 2) = 4.302653
    hand = [100.0, 200.0, 50.0]
    ipc = [100.0, 200.0 * math.exp(0.1), 50.0 * math.exp(0.2)]
    r = sc.paired_ratio(ipc, hand)
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert r.n == 3
    assert r.ratio == pytest.approx(math.exp(0.1))
    assert r.low == pytest.approx(math.exp(0.1 - half), rel=1e-5)
    assert r.high == pytest.approx(math.exp(0.1 + half), rel=1e-5)
    assert (r.low, r.high) == pytest.approx((0.8621, 1.4168), abs=1e-4)


def test_paired_ratio_of_two_reps_and_its_edge_cases():
    # log ratios +0.1, -0.1: mean 0 (ratio 1), sem 0.1, t(0.975, 1) = 12.7062
    r = sc.paired_ratio([math.exp(0.1), math.exp(-0.1)], [1.0, 1.0])
    assert r.ratio == pytest.approx(1.0)
    assert (r.low, r.high) == pytest.approx((math.exp(-1.27062), math.exp(1.27062)), rel=1e-5)
    assert sc.paired_ratio([2.0, 4.0], [1.0, 2.0]) == Ratio(2.0, 2.0, 2.0, 2)     # identical ratios: a point
    assert sc.paired_ratio([3.0], [1.0]) == Ratio(pytest.approx(3.0), None, None, 1)
    assert sc.paired_ratio([], []) == Ratio(None, None, None, 0)
    # reps where a side has no usable value are left out, pairs stay pairs
    r = sc.paired_ratio([2.0, None, 0.0, float("nan"), 2.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert r.n == 2 and r.ratio == pytest.approx(2.0)


@pytest.mark.parametrize("ratio, low, high, expected, inside", [
    (1.00, 0.95, 1.05, PASS, True),             # estimate and CI in the band: a confirmed match
    (1.05, 0.50, 2.00, PASS, False),            # estimate in the band, CI wide: not contradicted
    (1.10, 1.00, 1.20, PASS, False),            # on the band's edge
    (1.30, 1.20, 1.40, FAIL, False),            # CI entirely above the band
    (0.50, 0.40, 0.60, FAIL, False),            # ... entirely below it
    (0.80, 0.70, 0.905, FAIL, False),           # just below 1/1.1 = 0.909
    (1.20, 1.05, 1.35, INCONCLUSIVE, False),    # estimate out, CI reaching in
    (0.85, 0.70, 0.95, INCONCLUSIVE, False),
    (1.00, None, None, INCONCLUSIVE, False),    # one rep: no CI
])
def test_verdicts(ratio, low, high, expected, inside):
    r = Ratio(ratio, low, high, 3)
    assert sc.verdict(r, TOL) == expected
    assert sc.ci_inside(r, TOL) is inside
    assert sc.band(TOL) == pytest.approx((LO, HI))


def test_pair_verdict_takes_the_worst():
    assert sc.pair_verdict([PASS, PASS]) == PASS
    assert sc.pair_verdict([PASS, INCONCLUSIVE]) == INCONCLUSIVE
    assert sc.pair_verdict([INCONCLUSIVE, FAIL]) == FAIL
    assert sc.pair_verdict([FAIL, "ERROR"]) == "ERROR"


def _rep(hand_rate, ipc_rate, hand_p50=None, ipc_p50=None, error=None):
    hand = {"ok": True, "rate": hand_rate, "p50_s": hand_p50}
    ipc = {"ok": True, "rate": ipc_rate, "p50_s": ipc_p50} if error is None else {"ok": False, "error": error}
    return {"hand": hand, "ipcbench": ipc}


def test_compare_reps_counts_and_exit_status():
    ok = [_rep(1000, 1000 * f, 1e-5, 1e-5 * f) for f in (0.98, 1.0, 1.02)]
    slow = [_rep(1000, 300 * f) for f in (0.98, 1.0, 1.02)]          # ipcbench at 0.3x: FAIL
    noisy = [_rep(1000, 1000 * f) for f in (0.6, 1.4, 0.9)]           # wide, estimate ~0.91..: see below
    broken = [_rep(1000, 1000), _rep(1000, None, error="peer died")]   # one good rep: ERROR
    a = sc.compare_reps(ok, p50=True, tolerance=TOL)
    assert a["verdict"] == PASS and set(a["comparisons"]) == {"throughput", "p50"}
    assert a["comparisons"]["throughput"]["ratio"] == pytest.approx(1.0, abs=1e-3)
    assert a["comparisons"]["throughput"]["hand"] == pytest.approx(1000)
    assert a["comparisons"]["p50"]["ipcbench"] == pytest.approx(1e-5, rel=1e-3)
    assert a["comparisons"]["throughput"]["ci_inside_band"]
    b = sc.compare_reps(slow, p50=False, tolerance=TOL)
    assert b["verdict"] == FAIL and list(b["comparisons"]) == ["throughput"]
    assert b["comparisons"]["throughput"]["ratio"] == pytest.approx(0.3, rel=1e-3)
    c = sc.compare_reps(noisy, p50=False, tolerance=TOL)
    g = (0.6 * 1.4 * 0.9) ** (1 / 3)                                  # 0.9109: inside the band
    assert c["comparisons"]["throughput"]["ratio"] == pytest.approx(g)
    assert c["verdict"] == PASS and not c["comparisons"]["throughput"]["ci_inside_band"]
    noisy_out = [_rep(1000, 1000 * f) for f in (0.5, 1.3, 0.8)]       # 0.80, CI reaching into the band
    d = sc.compare_reps(noisy_out, p50=False, tolerance=TOL)
    assert d["verdict"] == INCONCLUSIVE
    e = sc.compare_reps(broken, p50=False, tolerance=TOL)
    assert e["verdict"] == "ERROR" and e["reps_ok"] == 1 and e["errors"] == ["peer died"]
    pairs = [a, b, c, d]
    summary = sc.counts(pairs)
    assert summary["comparisons"] == {PASS: 3, FAIL: 1, INCONCLUSIVE: 1, "ERROR": 0}
    assert summary["pairs"] == {PASS: 2, FAIL: 1, INCONCLUSIVE: 1, "ERROR": 0}
    assert summary["pass_ci_inside_band"] == 2
    assert sc.exit_status(summary) == 1
    assert sc.exit_status(sc.counts([a, c])) == 0
    assert sc.exit_status(sc.counts([a, d])) == 0                    # INCONCLUSIVE does not fail the check
    assert sc.exit_status(sc.counts([a, e])) == 1                    # a pair that could not be measured does


def test_report_lines_say_what_the_verdicts_mean():
    pairs = []
    for mech, reps in (("pipe_duplex", [_rep(1000, 1000 * f, 1e-5, 1e-5) for f in (0.99, 1.0, 1.01)]),
                       ("lock", [_rep(1e6, 1e5 * f) for f in (0.99, 1.0, 1.01)]),
                       ("queue", [_rep(1000, 1000 * f) for f in (0.5, 1.3, 0.8)])):
        cmp = sc.compare_reps(reps, p50=mech == "pipe_duplex", tolerance=TOL)
        pairs.append({"mechanism": mech, "pattern": "roundtrip", "case": {"workers": 1}, **cmp})
    doc = {"settings": {"size": 8, "start_method": "fork", "placement": "os", "preset": "quick", "reps": 3,
                        "tolerance": TOL, "band": [LO, HI], "hand_seconds": 0.25},
           "pairs": pairs, "summary": sc.counts(pairs)}
    text = "\n".join(sc.report_lines(doc))
    assert "4 comparisons over 3 pairs: 2 PASS, 1 FAIL, 1 INCONCLUSIVE" in text
    assert "PASS (CI in band)" in text and "FAIL: the whole CI is outside the band" in text
    assert "INCONCLUSIVE: the estimate is outside the band but the CI reaches into it" in text
    row = next(line for line in text.splitlines() if line.startswith("lock"))
    assert "1M/s" in row and "100k/s" in row and " 0.10 " in row and row.endswith("FAIL")


def test_unregistered_or_undeclared_mechanisms_are_skipped_with_a_note(monkeypatch):
    loops = dict(user_loops.LOOPS)
    loops[("no_such_mechanism", "dispatch")] = user_loops.UserLoop("no_such_mechanism", "dispatch", False, "x",
                                                                    lambda *a: {})
    loops[("pipe_duplex", "fanin")] = user_loops.UserLoop("pipe_duplex", "fanin", False, "x", lambda *a: {})
    monkeypatch.setattr(user_loops, "LOOPS", loops)
    s = sc.Settings(8, 2, TOL, "os", "fork", "quick", None, 0.05, 30.0)
    pairs, notes = sc.select_pairs([], [], s)
    assert "no_such_mechanism dispatch: skipped, no mechanism 'no_such_mechanism' is registered" in notes
    assert "pipe_duplex fanin: skipped, pipe_duplex does not declare the fanin pattern" in notes
    by = {(p.case.mechanism, p.case.pattern): p.case for p in pairs}
    assert by[("queue", "fanin")].workers == 2 and by[("lock", "contention")].workers == 2
    assert by[("lock", "contention")].payload_bytes == 0 and by[("pool_apply", "dispatch")].workers == 1
    assert all(c.placement == "os" and c.start_method == "fork" for c in by.values())
    pairs, _ = sc.select_pairs(["queue"], ["stream", "fanin"], sc.Settings(64, 2, TOL, "spread", "fork", "quick",
                                                                           3, 0.05, 30.0))
    assert [(p.case.pattern, p.case.workers, p.case.payload_bytes) for p in pairs] == [("stream", 1, 64),
                                                                                        ("fanin", 3, 64)]


@pytest.mark.parametrize("args, message", [
    (["-m", "carrier_pigeon"], "unknown mechanism 'carrier_pigeon'"),
    (["-m", "process_start"], "mechanism 'process_start' has no user loop to check against"),
    (["-p", "gossip"], "unknown pattern 'gossip'"),
    (["-m", "lock", "-p", "roundtrip"], "nothing to check: no user loop matches -m lock -p roundtrip"),
    (["--size", "-8"], "payload size '-8' is negative"),
    (["--size", "0"], "--size must be at least 1 byte, got 0"),
    (["--reps", "1"], "--reps must be 2 or more"),
    (["--tolerance", "0"], "--tolerance must be a fraction above 0"),
    (["--tolerance", "nan"], "--tolerance must be a fraction above 0"),
    (["--placement", "moon"], "unknown placement 'moon'"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--workers", "0"], "--workers must be 1 or more"),
    (["--hand-seconds", "-1"], "--hand-seconds must be above 0"),
    (["--start-method", "teleport"], "start method 'teleport' is not available"),
    (["--json", "/no/such/folder/x.json"], "cannot write /no/such/folder/x.json: no folder /no/such/folder"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(["selfcheck", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("ipcbench: error: ") and message in err


@pytest.mark.parametrize("flag, fresh", [([], False), (["--fresh-rounds"], True)])
def test_fresh_rounds_reaches_the_rounds_and_the_record(flag, fresh, tmp_path, monkeypatch):
    """--fresh-rounds is passed to run_pairs (which then starts every ipcbench round as a fresh interpreter)
    and recorded in the JSON's settings; here run_pairs is stopped as by Ctrl-C before it measures."""
    seen = {}

    def fake_run_pairs(pairs, reps, spec, **kw):
        seen.update(kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(user_loops, "run_pairs", fake_run_pairs)
    out = tmp_path / "sc.json"
    assert main(["selfcheck", "-m", "os_pipe", "-p", "roundtrip", "-q", "--json", str(out), *flag]) == 130
    assert seen["fresh_rounds"] is fresh
    doc = json.loads(out.read_text())
    assert doc["status"] == "interrupted" and doc["settings"]["fresh_rounds"] is fresh


def test_the_hand_lock_loop_counts_the_cycles_while_every_client_ran():
    """Two clients of 4,096 cycles (a stamp every 1,024): client B ends at 10.0 s; client A, started
    at 1.0, had stamped 3 batches by then and ran its last alone. The rate is 7,168 / 9 s; the plain
    figure 8,192 / 11 s; the tail holds 1,024 of 8,192 cycles."""
    spans = [(1.0, 12.0), (2.0, 10.0)]
    stamps = [[3.0, 6.0, 9.0, 11.0], [4.0, 6.0, 8.0, 10.0]]
    got = user_loops.contended_cycles(spans, stamps, 4096, stamp=1024)
    assert got["ops"] == 3 * 1024 + 4096
    assert got["elapsed_s"] == pytest.approx(9.0)
    assert got["rate"] == pytest.approx(7168 / 9)
    assert got["plain_rate"] == pytest.approx(8192 / 11)
    assert got["tail_share"] == pytest.approx(1024 / 8192)


def test_needs_more_only_while_inconclusive():
    noisy_out = [_rep(1000.0, r) for r in (1000.0, 1400.0, 1300.0)]    # ~1.22, CI reaching into the band
    assert sc.compare_reps(noisy_out, p50=False, tolerance=TOL)["verdict"] == INCONCLUSIVE
    assert sc.needs_more(noisy_out, p50=False, tolerance=TOL)
    assert not sc.needs_more([_rep(1000.0, 1000.0, 1e-3, 1e-3)] * 3, p50=True, tolerance=TOL)      # PASS
    assert not sc.needs_more([_rep(1000.0, r) for r in (500.0, 501.0, 499.0)], p50=False, tolerance=TOL)  # FAIL
    assert not sc.needs_more([_rep(1000.0, 0, error="x")] * 3, p50=False, tolerance=TOL)  # ERROR: no retries
    half = {"hand": _rep(1000.0, 1000.0)["hand"]}               # a rep with one side only is not counted
    assert sc.needs_more([half] + noisy_out, p50=False, tolerance=TOL)
    assert not sc.needs_more([half, _rep(1000.0, 1000.0)], p50=False, tolerance=TOL)       # 1 rep: ERROR


def test_inconclusive_pairs_get_more_reps_up_to_max_reps(tmp_path, monkeypatch, capsys):
    """Three pairs with made-up figures: os_pipe's ratio hovers around 1.2 with a wide spread
    (INCONCLUSIVE at every rep), socketpair's is exactly 1 (PASS), pipe_duplex's 0.5 (FAIL). With --reps 3
    --max-reps 7 only os_pipe gets reps 4-7, in alternating order, and the table says how many each got."""
    import contextlib

    from ipcbench.measure import runner

    swing = {"os_pipe": [1.0, 1.45, 1.2, 0.95, 1.5, 1.1, 1.35], "socketpair": [1.0] * 7, "pipe_duplex": [0.5] * 7}
    calls = []

    caps = set()

    def hand(mech, pattern, size, workers, method, target_s, timeout, placement, env, tasks_cap):
        calls.append((mech, "hand"))
        caps.add(tasks_cap)
        return {"ok": True, "rate": 1000.0, "p50_s": 1e-3}

    def round_(case, spec, timeout, workdir, launcher, env):
        n = sum(1 for m, side in calls if m == case.mechanism and side == "ipcbench")
        calls.append((case.mechanism, "ipcbench"))
        f = swing[case.mechanism][n]
        return {"ok": True, "rate": 1000.0 * f, "p50_s": 1e-3 / f}

    monkeypatch.setattr(user_loops, "run_hand", hand)
    monkeypatch.setattr(user_loops, "ipcbench_round", round_)
    monkeypatch.setattr(runner, "open_launcher", lambda *a, **k: contextlib.nullcontext())
    out = tmp_path / "sc.json"
    rc = main(["selfcheck", "-m", "os_pipe,socketpair,pipe_duplex", "-p", "roundtrip", "--reps", "3",
               "--max-reps", "7", "--json", str(out)])
    assert rc == 1                                                        # pipe_duplex FAILs
    doc = json.loads(out.read_text())
    got = {p["mechanism"]: p for p in doc["pairs"]}
    assert [r["rep"] for r in got["os_pipe"]["reps"]] == list(range(7))
    assert [r["first"] for r in got["os_pipe"]["reps"]] == ["hand", "ipcbench"] * 3 + ["hand"]
    assert len(got["socketpair"]["reps"]) == 3 and len(got["pipe_duplex"]["reps"]) == 3
    assert got["os_pipe"]["verdict"] == INCONCLUSIVE and got["os_pipe"]["comparisons"]["throughput"]["n"] == 7
    assert got["socketpair"]["verdict"] == PASS and got["pipe_duplex"]["verdict"] == FAIL
    assert doc["settings"]["reps"] == 3 and doc["settings"]["max_reps"] == 7
    assert sum(1 for m, _ in calls if m == "os_pipe") == 14 and len(calls) == 14 + 6 + 6
    assert caps == {20_000 // 5}            # the quick preset's cap on K (patterns.tasks_cap), to every loop
    stdout, err = capsys.readouterr()
    assert "3 paired reps (up to 7 while INCONCLUSIVE)" in stdout
    row = next(line for line in stdout.splitlines() if line.startswith("os_pipe"))
    assert row.split()[-2:] == ["7", "INCONCLUSIVE"]
    assert "rep 7 (<= 7)" in err and "[26/26]" in err                     # the last step: all that ran
    assert "[ 4/18, at most 42] os_pipe roundtrip rep 1/3" in err        # before any pair is settled
    assert "[20/20, at most 26] os_pipe roundtrip rep 4 (<= 7)" in err    # the other two settled at 3


def test_max_reps_below_reps_is_refused(capsys):
    assert main(["selfcheck", "--reps", "5", "--max-reps", "4"]) == 2
    assert "--max-reps must be at least --reps (5), got 4" in capsys.readouterr().err


# -- in real processes ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("key", list(user_loops.LOOPS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_user_loop_runs_a_tiny_case(key, no_leftovers):
    """Each loop in a fresh interpreter (``run_hand``, as the command runs it), on a tiny case."""
    mech, pattern = key
    workers = 2 if pattern in ("fanin", "contention", "rpc") else 1
    out = user_loops.run_hand(mech, pattern, 64, workers, "fork", target_s=0.01, timeout_s=60)
    assert out["ok"], out["error"]
    assert math.isfinite(out["rate"]) and out["rate"] > 0
    assert out["ops"] >= user_loops.MIN_OPS and out["elapsed_s"] > 0 and out["start_method"] == "fork"
    assert ("p50_s" in out) == user_loops.LOOPS[key].p50
    if "p50_s" in out:
        assert 0 < out["p50_s"] < 1 and out["timed_ops"] > 0


@pytest.mark.slow
def test_a_hand_loop_past_its_timeout_is_killed_with_its_peers(no_leftovers):
    t0 = time.monotonic()
    got = user_loops.run_hand("shared_memory", "roundtrip", 64, 1, "fork", target_s=30.0, timeout_s=1.5)
    assert not got["ok"] and "timed out after 1.5 s" in got["error"]
    assert time.monotonic() - t0 < 10       # no_leftovers: no process, no /dev/shm segment outlives it


@pytest.mark.slow
def test_a_hand_loop_starts_in_the_allocator_state_asked_for(no_leftovers):
    """--allocator warm reaches the hand loop's interpreter (and, through the launcher, the rounds)."""
    from ipcbench.measure import allocator

    warm = user_loops.run_hand("pipe_duplex", "roundtrip", 64, 1, "fork", target_s=0.01, timeout_s=60,
                               env=allocator.environment("warm"))
    cold = user_loops.run_hand("pipe_duplex", "roundtrip", 64, 1, "fork", target_s=0.01, timeout_s=60,
                               env=allocator.environment("cold", {**os.environ, "MALLOC_ARENA_MAX_": "2"}))
    fresh = user_loops.run_hand("pipe_duplex", "roundtrip", 64, 1, "fork", target_s=0.01, timeout_s=60,
                                env=allocator.environment("fresh", {**os.environ, "MALLOC_ARENA_MAX_": "2"}))
    assert warm["ok"] and warm["malloc_env"] == allocator.WARM_ENV
    assert cold["ok"] and cold["malloc_env"] == {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
    assert fresh["ok"] and fresh["malloc_env"] == {}


@pytest.mark.slow
@pytest.mark.parametrize("mech", ["os_pipe", "socketpair"])
def test_raw_hand_loops_read_large_messages_into_their_buffer(mech, no_leftovers, monkeypatch):
    """Above 64 KiB the floors' hand loops read the mark, then the bytes into a bytearray of their size
    (as ipcbench's RawFd does); the echo sends back exactly what came, so the exchange completes and
    carries the payload's bytes."""
    monkeypatch.setattr(user_loops, "_WHOLE_MAX", 64 * 1024)
    size = 256 * 1024 + 3
    out = user_loops.run_hand(mech, "roundtrip", size, 1, "fork", target_s=0.01, timeout_s=60)
    assert out["ok"], out["error"]
    assert out["ops"] >= user_loops.MIN_OPS and 0 < out["p50_s"] < 1


def test_read_into_fills_the_buffer_from_pieces_and_stops_at_eof():
    pieces = [b"ab", b"cde", b"f"]

    def readinto(view):
        if not pieces:
            return 0
        chunk = pieces.pop(0)
        view[:len(chunk)] = chunk
        return len(chunk)
    assert user_loops._read_into(readinto, 6) == bytearray(b"abcdef")
    pieces[:] = [b"ab"]
    with pytest.raises(EOFError, match="the other end closed"):
        user_loops._read_into(readinto, 6)


@pytest.mark.slow
def test_selfcheck_end_to_end(tmp_path, no_leftovers):
    out = tmp_path / "sc.json"
    # quick's rounds (a 60 ms window): a smoke round's 5 ms window, where one stall of a loaded CI runner is
    # most of the window, read 0.09x the hand loop once (py313)
    proc = subprocess.run([sys.executable, "-m", "ipcbench", "selfcheck", "-m", "pipe_duplex", "-p", "roundtrip", "--reps", "2",
                           "--max-reps", "2", "--preset", "quick", "--hand-seconds", "0.05", "--json", str(out)],
                          capture_output=True, text=True, env=cli_env(), timeout=120)
    assert proc.returncode in (0, 1), proc.stderr      # 1: a FAIL, which a gross gap below also catches
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("ipcbench selfcheck: 8 B payloads, ") and "2 paired reps" in lines[0]
    assert any(line.startswith("mechanism") and line.endswith("verdict") for line in lines)
    rows = [line for line in lines if line.startswith("pipe_duplex")]
    assert len(rows) == 1 and " roundtrip " in rows[0] and " throughput " in rows[0]
    assert any(" p50 " in line and "µs" in line for line in lines)
    assert "2 comparisons over 1 pairs: " in proc.stdout
    assert "[4/4] pipe_duplex roundtrip rep 2/2" in proc.stderr and "ETA" in proc.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "ipcbench-selfcheck" and doc["schema_version"] == 1 and doc["status"] == "complete"
    (pair,) = doc["pairs"]
    assert pair["case_id"] == f"pipe_duplex/roundtrip/8B/w1/{doc['settings']['start_method']}/spread"
    assert len(pair["reps"]) == 2 and [r["first"] for r in pair["reps"]] == ["hand", "ipcbench"]
    for rep in pair["reps"]:
        assert rep["hand"]["ok"] and rep["ipcbench"]["ok"]
        assert rep["hand"]["rate"] > 0 and rep["ipcbench"]["rate"] > 0 and rep["hand"]["p50_s"] > 0
        placed = list(rep["hand"]["placed"].values())      # the hand loop placed as the round: spread
        assert len(placed) >= 2 and placed[0] == [min(os.sched_getaffinity(0))]
        if len(os.sched_getaffinity(0)) >= 2:
            assert placed[1] != placed[0]
    for metric in ("throughput", "p50"):
        c = pair["comparisons"][metric]
        assert 0.33 < c["ratio"] < 3, f"{metric}: ipcbench / hand = {c['ratio']:.2f}, a gross gap"
        assert c["ci_low"] <= c["ratio"] <= c["ci_high"] and c["verdict"] in (PASS, FAIL, INCONCLUSIVE)
    assert doc["summary"]["exit_status"] == proc.returncode


@pytest.mark.slow
def test_ctrl_c_reaps_everything_and_keeps_the_reps_measured(tmp_path, no_leftovers):
    out = tmp_path / "sc.json"
    proc = subprocess.Popen([sys.executable, "-m", "ipcbench", "selfcheck", "-m", "pipe_duplex,queue",
                             "--reps", "20", "--preset", "smoke", "--hand-seconds", "0.2", "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    deadline = time.monotonic() + 60
    seen = ""
    while time.monotonic() < deadline and "pipe_duplex roundtrip rep 1/20" not in seen and proc.poll() is None:
        seen += proc.stderr.readline()         # the first pair's first rep is done
    time.sleep(0.3)                 # in the middle of the next step
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "ipcbench: interrupted" in err and "Traceback" not in err
    doc = json.loads(out.read_text())
    assert doc["status"] == "interrupted"
    assert doc["pairs"][0]["reps"][0]["hand"]["ok"] and doc["pairs"][0]["reps"][0]["ipcbench"]["ok"]


def test_the_selfcheck_bar_on_a_terminal_draws_at_steps_only_never_on_a_timer(monkeypatch):
    """On a terminal the selfcheck's rich bar is drawn at each step, with no refresh thread waking the
    machine while a hand loop or a round runs (RichProgress of ipcbench run: the same reason)."""
    import io
    import threading

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    pairs, _ = sc.select_pairs(["pipe_duplex"], ["roundtrip"], sc.Settings(8, 2, TOL, "spread", "fork", "quick",
                                                                          None, 0.05, 30.0))
    before = set(threading.enumerate())
    prog = sc.Progress(pairs, 2)
    prog.start()
    try:
        assert prog.bar is not None and set(threading.enumerate()) == before
        drawn = tty.getvalue()
        time.sleep(0.3)
        assert tty.getvalue() == drawn                    # nothing drawn between steps
        prog.step(0, 0, "hand", {"ok": True, "wall_s": 0.5, "rate": 1.0})
        assert "pipe_duplex roundtrip rep 1/2 hand" in tty.getvalue()[len(drawn):]
    finally:
        prog.stop()
