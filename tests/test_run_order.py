"""The run order (seeded interleaving of rounds), the runner's bookkeeping around it with simulated
rounds, progress, and the steal/load readings from /proc/stat. No processes, no speeds."""

import io
import json
from collections import Counter

import pytest

from ipcbench.measure import harness, runner
from ipcbench.measure.harness import StealMeter, parse_procs_running, parse_steal
from ipcbench.measure.progress import LineProgress, QuietProgress
from ipcbench.measure.runner import ResultWriter, RunOptions, run_cases, run_order
from ipcbench.plan.cases import Case, RoundSpec
from ipcbench.results.schema import load_result

SPEC = RoundSpec(budget_s=0.005, min_messages=3, max_window_s=2, max_messages=300, warmup=2, warmup_s=0.01,
                 timeout_s=10)


# -- the order as a pure function --------------------------------------------------------------------
@pytest.mark.parametrize("n,rounds", [(1, 3), (2, 2), (3, 2), (7, 5), (8, 3), (17, 3), (62, 2), (150, 3)])
def test_order_is_a_permutation_of_all_case_round_pairs(n, rounds):
    order = run_order(n, rounds, seed=1)
    assert sorted(order) == [(c, r) for c in range(n) for r in range(rounds)]


def test_each_case_gets_its_rounds_in_round_order():
    order = run_order(30, 4, seed=3)
    for c in range(30):
        assert [r for cc, r in order if cc == c] == [0, 1, 2, 3]


def test_order_is_reproducible_from_the_seed_and_differs_between_seeds():
    assert run_order(40, 3, seed=123) == run_order(40, 3, seed=123)
    orders = {tuple(run_order(40, 3, seed=s)) for s in range(20)}
    assert len(orders) == 20
    assert run_order(40, 3, seed=1, block_cases=4) != run_order(40, 3, seed=1, block_cases=8)


@pytest.mark.parametrize("n,rounds", [(2, 2), (3, 5), (9, 2), (62, 2), (100, 3)])
def test_no_case_runs_two_rounds_back_to_back(n, rounds):
    for seed in range(30):
        order = run_order(n, rounds, seed)
        assert all(a[0] != b[0] for a, b in zip(order, order[1:]))
        # and every case's rounds are spread: between its first and last round other cases run
        for c in range(n):
            pos = [k for k, (cc, _) in enumerate(order) if cc == c]
            assert pos[-1] - pos[0] >= 2 * (rounds - 1)


def test_grid_order_does_not_survive():
    """Neighbours in the grid (usually one mechanism) are not neighbours in time."""
    order = run_order(64, 1, seed=9)
    assert [c for c, _ in order] != list(range(64))
    grid_neighbours = sum(1 for a, b in zip(order, order[1:]) if abs(a[0] - b[0]) == 1)
    assert grid_neighbours < 16


@pytest.mark.parametrize("n,block", [(62, 8), (150, 8), (17, 8), (5, 8), (40, 4)])
def test_cases_finish_block_by_block(n, block):
    """Blocks of block..2*block-1 cases: cases finish all along the run, not all at its end."""
    rounds = 3
    order = run_order(n, rounds, seed=5, block_cases=block)
    seen, finished_at = Counter(), {}
    for k, (c, _) in enumerate(order):
        seen[c] += 1
        if seen[c] == rounds:
            finished_at[c] = k
    # between two completions there are never more than one block's rounds, and at any moment fewer
    # than 2 * block cases have started without finishing
    ends = sorted(finished_at.values())
    gaps = [b - a for a, b in zip([-1, *ends], ends)]
    assert max(gaps) <= min(n, 2 * block - 1) * rounds
    started: set = set()
    for k, (c, _) in enumerate(order):
        started.add(c)
        open_cases = [x for x in started if finished_at[x] > k]
        assert len(open_cases) <= min(n, 2 * block - 1)


def test_order_edge_cases():
    assert run_order(0, 3, seed=1) == []
    assert run_order(4, 0, seed=1) == []
    assert run_order(1, 3, seed=1) == [(0, 0), (0, 1), (0, 2)]
    with pytest.raises(ValueError):
        run_order(3, 2, seed=1, block_cases=0)


# -- run_cases with simulated rounds -------------------------------------------------------------------
def _cases(n):
    return [Case("pipe_duplex", "roundtrip", "bytes", 8 * (i + 1), 1, "fork") for i in range(n)]


class FakeRounds:
    """Stands in for runner.run_round: a successful round with fixed samples, a failure for chosen
    (payload size, round) pairs, and Ctrl-C at a chosen call."""

    def __init__(self, fail=(), interrupt_at=None):
        self.calls: list[tuple[int, int]] = []
        self.fail, self.interrupt_at = set(fail), interrupt_at
        self.per_case = Counter()

    def __call__(self, case, spec, timeout_s, workdir):
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        r = self.per_case[case.payload_bytes]
        self.per_case[case.payload_bytes] += 1
        self.calls.append((case.payload_bytes, r))
        if (case.payload_bytes, r) in self.fail:
            return {"ok": False, "error": "broken on purpose"}
        samples = [1000 + 10 * i for i in range(50)]
        return {"ok": True, "result": {"samples_ns": samples, "ops": 50, "window_ns": sum(samples),
                                       "bytes_per_op": 16, "cpu_s": 1e-4, "placement": {},
                                       "steal_s": 0.0, "steal_span_s": 0.01, "steal_cpus": 2}}


class RecordingProgress(QuietProgress):
    def __init__(self):
        self.events = []

    def start(self, cases, weights, rounds=1):
        self.events.append(("start", len(cases), rounds, sum(weights)))

    def round_done(self, case, weight, rounds=1):
        self.events.append(("round", case.payload_bytes, weight, rounds))

    def case_done(self, case, record):
        self.events.append(("case", case.payload_bytes, record["status"]))


@pytest.fixture
def fake_machine(monkeypatch):
    monkeypatch.setattr(runner, "machine_metadata", lambda mid: {"machine_id": mid or "m"})
    monkeypatch.setattr(runner, "python_metadata", lambda: {"version": "3"})


def _run(tmp_path, monkeypatch, fake, n=5, rounds=3, seed=11, block_cases=2, progress=None):
    monkeypatch.setattr(runner, "run_round", fake)
    writer = ResultWriter(tmp_path / "r.json", "m", {"rounds": rounds})
    writes = []
    original = writer._write
    monkeypatch.setattr(writer, "_write", lambda: (writes.append([c["case"]["payload_bytes"]
                                                                  for c in writer.data["cases"]]), original()))
    opts = RunOptions(spec=SPEC, rounds=rounds, seed=seed, block_cases=block_cases)
    return writer, writes, opts, (lambda: run_cases(_cases(n), opts, writer, progress or QuietProgress()))


def test_rounds_run_in_the_seeded_order_and_cases_are_written_as_they_finish(tmp_path, monkeypatch,
                                                                           fake_machine):
    fake = FakeRounds()
    writer, writes, opts, go = _run(tmp_path, monkeypatch, fake)
    data = go()
    order = run_order(5, 3, seed=11, block_cases=2)
    assert fake.calls == [(8 * (c + 1), r) for c, r in order]
    assert data["run"]["order"]["seed"] == 11 and data["run"]["order"]["rule"] == runner.ORDER_RULE
    assert data["run"]["order"]["block_cases"] == 2 and data["run"]["status"] == "complete"
    # the file lists cases in grid order, whatever order they finished in
    assert [c["case"]["payload_bytes"] for c in data["cases"]] == [8, 16, 24, 32, 40]
    # written progressively: one more case after each finish, not all at the end
    counts = [len(w) for w in writes]
    assert sorted(set(counts)) == [0, 1, 2, 3, 4, 5]
    for i, rec in enumerate(data["cases"]):
        assert rec["status"] == "ok" and rec["rounds_planned"] == 3 and len(rec["rounds"]) == 3
        positions = [k for k, (c, _) in enumerate(order) if c == i]
        assert [r["order"] for r in rec["rounds"]] == positions
        assert all(r["start_s"] >= 0 and "load1" in r and "procs_running" in r for r in rec["rounds"])
        assert all(r["steal_s"] == 0.0 and r["steal_span_s"] == 0.01 for r in rec["rounds"])
        assert "latency_p50" in rec["metrics"]
    again = load_result(tmp_path / "r.json")
    assert again["run"]["order"]["seed"] == 11


def test_a_failed_round_ends_its_case_and_the_others_go_on(tmp_path, monkeypatch, fake_machine):
    fake = FakeRounds(fail={(16, 1)})
    progress = RecordingProgress()
    writer, writes, opts, go = _run(tmp_path, monkeypatch, fake, progress=progress)
    data = go()
    assert [r for size, r in fake.calls if size == 16] == [0, 1]            # no third round
    assert len(fake.calls) == 5 * 3 - 1
    failed = data["cases"][1]
    assert failed["status"] == "failed" and failed["error"] == "broken on purpose"
    assert [r["ok"] for r in failed["rounds"]] == [True, False] and failed["metrics"] == {}
    assert failed["rounds"][1]["order"] == [k for k, (c, r) in enumerate(run_order(5, 3, 11, 2))
                                            if (c, r) == (1, 1)][0]
    assert all(c["status"] == "ok" for i, c in enumerate(data["cases"]) if i != 1)
    # progress: the failed case's skipped round is counted done, so the bar ends full
    start = progress.events[0]
    done = sum(e[2] for e in progress.events if e[0] == "round")
    assert done == pytest.approx(start[3])
    assert sum(e[3] for e in progress.events if e[0] == "round") == 15
    assert ("case", 16, "failed") in progress.events


@pytest.mark.parametrize("stop_after", [0, 1, 4, 7, 12])
def test_ctrl_c_keeps_finished_and_partial_cases(tmp_path, monkeypatch, fake_machine, stop_after):
    fake = FakeRounds(interrupt_at=stop_after)
    writer, writes, opts, go = _run(tmp_path, monkeypatch, fake)
    with pytest.raises(KeyboardInterrupt):
        go()
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["run"]["status"] == "interrupted"
    done = Counter(size for size, _ in fake.calls)
    assert [c["case"]["payload_bytes"] for c in data["cases"]] == sorted(done)    # nothing run is lost
    for rec in data["cases"]:
        n = done[rec["case"]["payload_bytes"]]
        assert rec["status"] == "ok" and rec["rounds_planned"] == 3 and len(rec["rounds"]) == n
        assert "latency_p50" in rec["metrics"]                  # from the rounds it has
        assert rec["noise"]["rounds"] == n


def test_writer_keeps_grid_order_and_knows_what_it_has(tmp_path, fake_machine):
    w = ResultWriter(tmp_path / "r.json", "m", {})
    w.add({"n": 3}, position=3)
    w.add({"n": 1}, position=1)
    w.add_many([({"n": 2}, 2), ({"n": 0}, 0)])
    w.add({"n": "end"})
    assert [c["n"] for c in json.loads((tmp_path / "r.json").read_text())["cases"]] == [0, 1, 2, 3, "end"]
    assert w.has(2) and not w.has(7)


# -- progress counts rounds ----------------------------------------------------------------------------
def test_line_progress_counts_rounds_and_reports_each_finished_case():
    out = io.StringIO()
    p = LineProgress(out)
    cases = _cases(2)
    p.start(cases, [2.0, 4.0], 2)
    p.round_done(cases[1], 2.0)
    p.round_done(cases[0], 1.0)
    assert 0 < p.eta()
    p.round_done(cases[1], 2.0)
    p.case_done(cases[1], {"status": "failed", "error": "peer died"})
    p.round_done(cases[0], 1.0)
    p.case_done(cases[0], {"status": "ok", "metrics": {}, "noise": None})
    lines = out.getvalue().splitlines()
    assert lines[0] == "ipcbench: 2 cases x 2 rounds, estimated 0m06s"
    assert lines[1].startswith("[1/2] pipe_duplex roundtrip 16 B") and "FAILED: peer died" in lines[1]
    assert "(round 3/4, ETA" in lines[1]
    assert lines[2].startswith("[2/2]") and "(round 4/4, ETA 0m00s)" in lines[2]


# -- steal and load from /proc/stat --------------------------------------------------------------------
PROC_STAT = """cpu  185594 492 20768 146937 992 0 411 {total} 0 0
cpu0 78200 222 9230 89480 174 0 163 {c0} 0 0
cpu1 107394 269 11537 57457 818 0 248 {c1} 0 0
intr 2414252 0 0 0
ctxt 5221254
btime 1700000000
processes 40000
procs_running 3
procs_blocked 0
"""


def _stat(c0, c1, total=None):
    return PROC_STAT.format(c0=c0, c1=c1, total=c0 + c1 if total is None else total)


def test_parse_steal_sums_the_allowed_cpus_or_falls_back_to_all():
    text = _stat(572, 556)
    assert parse_steal(text, [0, 1]) == (1128, 2)
    assert parse_steal(text, [1]) == (556, 1)
    assert parse_steal(text, None) == (1128, 2)
    assert parse_steal(text, [0, 5]) == (1128, 2)          # cpu5 not listed: the all-CPU line, all CPUs
    assert parse_steal(None, [0]) is None and parse_steal("", [0]) is None


def test_parse_steal_without_a_steal_column():
    old = "cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7\nprocs_running 1\n"
    assert parse_steal(old, [0]) is None


def test_parse_procs_running():
    assert parse_procs_running(_stat(0, 0)) == 3
    assert parse_procs_running("cpu 1 2\n") is None
    assert parse_procs_running(None) is None


def test_steal_meter_between_two_marks(tmp_path, monkeypatch):
    f = tmp_path / "stat"
    f.write_text(_stat(100, 200))
    m = StealMeter(str(f), cpus=[0, 1])
    m.mark()
    f.write_text(_stat(103, 205))
    m.mark()
    steal_s, span_s, cpus = m.result()
    assert steal_s == pytest.approx(8 * harness.CLOCK_TICK_S) and cpus == 2 and span_s >= 0
    assert StealMeter(str(tmp_path / "missing"), cpus=[0]).result() == (None, None, None)
    one = StealMeter(str(f), cpus=[0])
    one.mark()
    assert one.result() == (None, None, None)               # one reading is no span


def test_round_reads_steal_around_the_timed_window_only_when_asked(tmp_path):
    f = tmp_path / "stat"
    f.write_text(_stat(10, 10))
    case = Case("pipe_duplex", "roundtrip", "bytes", 8, 1, "fork")
    tracked, plain = harness.Round(case, SPEC, track_steal=True), harness.Round(case, SPEC)
    try:
        tracked._steal.path, tracked._steal.cpus = str(f), [1]
        for rnd in (tracked, plain):
            rnd.cpu_snapshot()
        f.write_text(_stat(99, 14))
        for rnd in (tracked, plain):
            rnd.cpu_snapshot()
        f.write_text(_stat(99, 15))
        for rnd in (tracked, plain):
            rnd.cpu_snapshot()                  # the last snapshot ends the window
        assert tracked.steal()[0] == pytest.approx(5 * harness.CLOCK_TICK_S)
        assert tracked.steal()[2] == 1
        assert plain.steal() == (None, None, None)
    finally:
        tracked.close()
        plain.close()


def test_load_now_has_both_readings():
    got = harness.load_now()
    assert set(got) == {"load1", "procs_running"}
    if hasattr(__import__("os"), "getloadavg"):
        assert got["load1"] >= 0
