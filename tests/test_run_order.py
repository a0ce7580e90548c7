"""The run order (seeded interleaving of rounds, adaptive passes), the stopping rule with simulated rounds
and a fake clock, the runner's bookkeeping around them, progress and its forecast, and the steal/load
readings from /proc/stat. No processes, no speeds."""

import io
import json
import math
import random
from collections import Counter

import numpy as np
import pytest

from ipcbench.measure import harness, runner
from ipcbench.measure.harness import StealMeter, parse_procs_running, parse_steal
from ipcbench.measure.progress import Forecast, LineProgress, QuietProgress
from ipcbench.measure.runner import (
    Decision,
    ResultWriter,
    RunOptions,
    StopRule,
    affordable_min,
    decide,
    iter_order,
    round_ci,
    rounds_needed,
    run_cases,
    run_order,
    run_share,
)
from ipcbench.plan.cases import Case, RoundSpec
from ipcbench.results.round_stats import round_estimate
from ipcbench.results.schema import load_result
from ipcbench.results.summary import summarize

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


def _v1_order(n_cases, rounds, seed, block_cases=8):
    """Rule shuffled-blocks-v1 as it was written: the adaptive rule must give the same order without
    adaptive rounds, so seeds recorded by older runs still mean the same order."""
    rng = random.Random(seed)
    cases = list(range(n_cases))
    rng.shuffle(cases)
    n_blocks = max(1, n_cases // block_cases)
    order = []
    for b in range(n_blocks):
        block = cases[b * n_cases // n_blocks:(b + 1) * n_cases // n_blocks]
        last = None
        for r in range(rounds):
            rng.shuffle(block)
            if len(block) > 1 and block[0] == last:
                j = rng.randrange(1, len(block))
                block[0], block[j] = block[j], block[0]
            order.extend((c, r) for c in block)
            last = block[-1] if block else None
    return order


@pytest.mark.parametrize("n,rounds,block", [(1, 3, 8), (5, 2, 8), (17, 3, 8), (62, 2, 8), (40, 4, 4)])
def test_without_adaptive_rounds_the_order_is_that_of_rule_v1(n, rounds, block):
    for seed in range(5):
        assert run_order(n, rounds, seed, block) == _v1_order(n, rounds, seed, block)
        # a `more` that says yes exactly up to the minimum changes nothing either
        assert run_order(n, rounds, seed, block, max_rounds=9, more=lambda c, d: d < rounds) == \
            _v1_order(n, rounds, seed, block)


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
    _assert_block_by_block(order, n, block, {c: rounds for c in range(n)}, rounds)


def _assert_block_by_block(order, n, block, final, most):
    seen, finished_at = Counter(), {}
    for k, (c, _) in enumerate(order):
        seen[c] += 1
        if seen[c] == final[c]:
            finished_at[c] = k
    # between two completions there are never more than a block's passes, and at any moment fewer than
    # 2 * block cases (one more: a case carried into the next block) have started without finishing
    ends = sorted(finished_at.values())
    gaps = [b - a for a, b in zip([-1, *ends], ends)]
    assert max(gaps) <= min(n, 2 * block) * most
    started: set = set()
    for k, (c, _) in enumerate(order):
        started.add(c)
        open_cases = [x for x in started if finished_at[x] > k]
        assert len(open_cases) <= min(n, 2 * block)


def test_order_edge_cases():
    assert run_order(0, 3, seed=1) == []
    assert run_order(4, 0, seed=1) == []
    assert run_order(1, 3, seed=1) == [(0, 0), (0, 1), (0, 2)]
    assert run_order(1, 2, seed=1, max_rounds=4, more=lambda c, d: True) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    with pytest.raises(ValueError):
        run_order(3, 2, seed=1, block_cases=0)


# -- the adaptive order ---------------------------------------------------------------------------------
def _wanted(n, seed, min_rounds, max_rounds):
    """A deterministic 'stopping rule' for order tests: case c wants want[c] rounds in all."""
    rng = random.Random(seed * 7919 + n)
    return [rng.randint(min_rounds, max_rounds) for _ in range(n)]


@pytest.mark.parametrize("n,block", [(3, 8), (9, 8), (17, 8), (40, 4), (62, 8)])
def test_adaptive_order_gives_every_min_round_and_the_extra_rounds_asked_for(n, block):
    for seed in range(10):
        want = _wanted(n, seed, 3, 12)
        order = run_order(n, 3, seed, block, max_rounds=12, more=lambda c, d, want=want: d < want[c])
        assert sorted(order) == sorted((c, r) for c in range(n) for r in range(want[c]))
        for c in range(n):
            assert [r for cc, r in order if cc == c] == list(range(want[c]))
        # the minimum rounds come first, in passes, exactly as without adaptive rounds, block by block
        _assert_block_by_block(order, n, block, dict(enumerate(want)), 12)


def test_adaptive_order_never_goes_past_max_rounds():
    order = run_order(10, 2, seed=4, max_rounds=5, more=lambda c, d: True)
    assert Counter(c for c, _ in order) == {c: 5 for c in range(10)}


@pytest.mark.parametrize("n,block", [(2, 8), (3, 8), (9, 8), (17, 8), (40, 4), (62, 8)])
def test_adaptive_order_runs_no_case_twice_in_a_row_unless_it_is_the_last_one_left(n, block):
    for seed in range(20):
        want = _wanted(n, seed, 2, 15)
        order = run_order(n, 2, seed, block, max_rounds=15, more=lambda c, d, want=want: d < want[c])
        done = Counter()
        for k, ((a, _), (b, _)) in enumerate(zip(order, order[1:])):
            done[a] += 1
            if a == b:
                # allowed only when every other case has had all its rounds
                remaining = [c for c in range(n) if c != a and done[c] + (c == b) < want[c]]
                assert not remaining, (seed, k, a)


def test_adaptive_order_is_reproducible_from_the_seed_and_the_rounds_each_case_got():
    """What the result file allows: the seed, block size and each case's number of rounds rebuild it."""
    n, seed = 23, 99
    decisions = np.random.default_rng(0)
    done_by_case = Counter()
    stop_after = {c: int(decisions.integers(3, 11)) for c in range(n)}
    ran = []
    for c, r in iter_order(n, 3, seed, 8, 10, more=lambda c, d: d < stop_after[c]):
        ran.append((c, r))
        done_by_case[c] += 1
    rebuilt = run_order(n, 3, seed, 8, 10, more=lambda c, d: d < done_by_case[c])
    assert rebuilt == ran


def test_more_is_asked_only_once_every_earlier_round_has_run():
    asked_after = []
    ran = []

    def more(c, d):
        asked_after.append((c, d, len(ran)))
        # every round of c so far has run by the time the order asks
        assert sum(1 for cc, _ in ran if cc == c) == d
        return d < 4

    for pair in iter_order(6, 2, seed=3, max_rounds=6, more=more):
        ran.append(pair)
    assert Counter(c for c, _ in ran) == {c: 4 for c in range(6)}
    # a case that said no is never asked again
    for c in range(6):
        assert [d for cc, d, _ in asked_after if cc == c][-1] == 4


def test_a_lone_case_moves_on_into_the_next_block():
    """Case x alone wants more rounds at the end of its block: its extra rounds interleave with the
    next block's cases instead of running back to back; only once every other case is done does it run
    alone."""
    n, block, seed = 16, 8, 2
    first_block = [c for c, _ in run_order(n, 1, seed, block)][:8]
    lone = first_block[0]
    want = {c: (8 if c == lone else 2) for c in range(n)}
    order = run_order(n, 2, seed, block, max_rounds=8, more=lambda c, d, want=want: d < want[c])
    second_block = set(range(n)) - set(first_block)
    lone_rounds = [k for k, (c, _) in enumerate(order) if c == lone]
    second = [k for k, (c, _) in enumerate(order) if c in second_block]
    # rounds 3 and 4 of the lone case ran among the second block's passes
    assert len([k for k in lone_rounds if second[0] < k < second[-1]]) == 2
    # back to back only at the very end, when nothing else is left
    pairs = [k for k, (a, b) in enumerate(zip(order, order[1:])) if a[0] == b[0]]
    assert pairs and all(k > second[-1] for k in pairs)
    assert all(order[k][0] == lone for k in pairs)


# -- the stopping rule: a pure function, with simulated rounds and a fake clock -----------------------
def _lognormal_rounds(seed, n, cv, level=50e-6):
    return list(np.exp(np.log(level) + np.random.default_rng(seed).normal(0, cv, n)))


def test_round_ci_is_the_wider_of_the_two_round_level_cis_as_summary_computes_it():
    p50s, tputs = _lognormal_rounds(1, 8, 0.05), _lognormal_rounds(2, 8, 0.2, 2e4)
    want = max(round_estimate(p50s).rel_half_width, round_estimate(tputs).rel_half_width)
    assert round_ci(p50s, tputs) == pytest.approx(want)
    assert round_ci(p50s, []) == pytest.approx(round_estimate(p50s).rel_half_width)   # startup: no tput
    assert round_ci([1e-5], [3.0]) is None               # one round: no CI yet
    assert round_ci([], []) is None
    # the same number summary writes into noise.ci_rel
    rounds = [{"samples_ns": [int(p * 1e9)] * 3, "ops": 3, "window_ns": int(3 / t * 1e9), "bytes_per_op": 8,
               "cpu_s": None} for p, t in zip(p50s, tputs)]
    _, noise = summarize(rounds)
    assert round_ci(p50s, tputs) == pytest.approx(max(noise["ci_rel"].values()), rel=1e-3)


def test_ctrl_c_between_a_case_s_last_round_and_its_decision_ends_it_as_max_rounds():
    """The signal can land after a round's result is kept and before the decision on it: a case that then
    has all its rounds is finished ("max rounds", not resumed); one with fewer, or a failure, is not."""
    from ipcbench.plan.cases import Case

    case = Case("pipe_duplex", "roundtrip", "bytes", 8, 1, "fork")
    rule = StopRule(0.05, 2, 2, None)
    full, short, failed = (runner._CaseRun(case, rule) for _ in range(3))
    full.results = [{}, {}]
    short.results = [{}]
    failed.results, failed.failure = [{}, {}], {"ok": False}
    for st in (full, short, failed):
        st.interrupt()
    assert (full.stop_reason, short.stop_reason, failed.stop_reason) == ("max rounds", "interrupted", "interrupted")
    done = runner._CaseRun(case, rule)
    done.stop_reason = "target met"
    done.interrupt()
    assert done.stop_reason == "target met"


def test_decide_below_min_rounds_always_goes_on():
    rule = StopRule(target_ci=0.05, min_rounds=5, max_rounds=10, budget_s=1.0)
    tight = [50e-6] * 4
    for n in range(1, 5):
        d = decide(n, tight[:n], tight[:n], elapsed_s=100.0, rule=rule)     # even far past the budget
        assert d.more and d.reason is None


def test_decide_stops_when_the_target_is_met():
    rule = StopRule(0.05, 3, 30, None)
    p = _lognormal_rounds(3, 30, 0.03)
    t = [1 / x for x in p]
    stops = [n for n in range(1, 31) if not decide(n, p[:n], t[:n], 0.0, rule).more]
    first = stops[0]
    d = decide(first, p[:first], t[:first], 0.0, rule)
    assert d == Decision(False, "target met", d.ci) and d.ci <= 0.05
    assert first >= 3
    assert decide(first - 1, p[:first - 1], t[:first - 1], 0.0, rule).more


def test_decide_needs_both_cis_within_target():
    rule = StopRule(0.05, 3, 50, None)
    p = [50e-6] * 10                                    # no spread at all
    t = _lognormal_rounds(4, 10, 0.5, 2e4)              # throughput all over the place
    d = decide(10, p, t, 0.0, rule)
    assert d.more and d.ci > 0.05


def test_decide_stops_at_max_rounds_and_says_so():
    rule = StopRule(0.05, 3, 12, None)
    p = _lognormal_rounds(5, 12, 0.4)
    assert decide(11, p[:11], p[:11], 0.0, rule).more
    d = decide(12, p, p, 0.0, rule)
    assert (d.more, d.reason) == (False, "max rounds") and d.ci > 0.05


def test_decide_target_met_wins_over_max_rounds():
    rule = StopRule(0.05, 3, 3, None)
    d = decide(3, [50e-6, 50.1e-6, 49.9e-6], [], 0.0, rule)
    assert d.reason == "target met"


class FakeClock:
    """Stands in for the ``time`` module in runner: ``monotonic`` moves only when a round says so."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_decide_with_a_fake_clock_stops_on_the_time_budget():
    """Noisy rounds of 0.3 s each, a 2 s budget: after 6 rounds (1.8 s) a 7th would end at 2.1 s."""
    clock = FakeClock()
    rule = StopRule(0.05, 3, 100, budget_s=2.0)
    p = _lognormal_rounds(6, 100, 0.5)
    start, n = clock.now, 0
    while True:
        clock.sleep(0.3)                  # one round
        n += 1
        d = decide(n, p[:n], p[:n], clock.now - start, rule)
        if not d.more:
            break
    assert (n, d.reason) == (6, "time budget")
    assert clock.now - start <= rule.budget_s


def test_decide_budget_uses_the_mean_round_so_far():
    rule = StopRule(0.05, 2, 100, budget_s=1.0)
    noisy = _lognormal_rounds(7, 5, 0.5)
    assert decide(4, noisy[:4], [], 0.79, rule).more                 # 0.79 + 0.2 <= 1.0
    assert decide(4, noisy[:4], [], 0.81, rule).reason == "time budget"   # 0.81 + 0.2 > 1.0


# -- run_cases with simulated rounds -------------------------------------------------------------------
def _cases(n):
    return [Case("pipe_duplex", "roundtrip", "bytes", 8 * (i + 1), 1, "fork") for i in range(n)]


class FakeRounds:
    """Stands in for runner.run_round: a successful round with samples around a level that varies between
    rounds by ``cv`` (per payload size, default none), a failure for chosen (payload size, round) pairs,
    Ctrl-C at a chosen call, and ``seconds`` of a fake clock per round."""

    def __init__(self, fail=(), interrupt_at=None, cv=None, clock=None, seconds=0.1):
        self.calls: list[tuple[int, int]] = []
        self.fail, self.interrupt_at = set(fail), interrupt_at
        self.per_case = Counter()
        self.cv = cv or {}
        self.clock, self.seconds = clock, seconds
        self.launchers = set()

    def __call__(self, case, spec, timeout_s, workdir, launcher=None, env=None):
        self.launchers.add(launcher)
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        if self.clock is not None:
            self.clock.sleep(self.seconds)
        r = self.per_case[case.payload_bytes]
        self.per_case[case.payload_bytes] += 1
        self.calls.append((case.payload_bytes, r))
        if (case.payload_bytes, r) in self.fail:
            return {"ok": False, "error": "broken on purpose"}
        cv = self.cv.get(case.payload_bytes, 0.0)
        level = math.exp(np.random.default_rng(case.payload_bytes * 1000 + r).normal(0, cv)) if cv else 1.0
        samples = [int((1000 + 10 * i) * level) for i in range(50)]
        return {"ok": True, "result": {"samples_ns": samples, "ops": 50, "window_ns": sum(samples),
                                       "bytes_per_op": 16, "cpu_s": 1e-4, "placement": {},
                                       "steal_s": 0.0, "steal_span_s": 0.01, "steal_cpus": 2}}


class RecordingProgress(QuietProgress):
    def __init__(self):
        self.events = []

    def start(self, cases, round_weights, min_rounds=1, max_rounds=None, run_budget_s=None, floor_rounds=None):
        super().start(cases, round_weights, min_rounds, max_rounds, run_budget_s, floor_rounds)
        self.events.append(("start", len(cases), min_rounds, max_rounds))

    def round_done(self, i):
        super().round_done(i)
        self.events.append(("round", i))

    def case_done(self, i, record):
        super().case_done(i, record)
        self.events.append(("case", i, record["status"], record["stop_reason"]))


@pytest.fixture
def fake_machine(monkeypatch):
    monkeypatch.setattr(runner, "machine_metadata", lambda mid: {"machine_id": mid or "m"})
    monkeypatch.setattr(runner, "python_metadata", lambda: {"version": "3"})


def _run(tmp_path, monkeypatch, fake, n=5, rounds=3, seed=11, block_cases=2, progress=None, **opts):
    monkeypatch.setattr(runner, "run_round", fake)
    writer = ResultWriter(tmp_path / "r.json", "m", {"rounds": rounds})
    writes = []
    original = writer._write
    monkeypatch.setattr(writer, "_write", lambda: (writes.append([c["case"]["payload_bytes"]
                                                                  for c in writer.data["cases"]]), original()))
    opts = RunOptions(spec=SPEC, rounds=rounds, seed=seed, block_cases=block_cases, fresh_rounds=True, **opts)
    return writer, writes, opts, (lambda: run_cases(_cases(n), opts, writer, progress or QuietProgress()))


def test_rounds_run_in_the_seeded_order_and_cases_are_written_as_they_finish(tmp_path, monkeypatch,
                                                                           fake_machine):
    fake = FakeRounds(cv={8: 0.5, 16: 0.5, 24: 0.5, 32: 0.5, 40: 0.5})
    writer, writes, opts, go = _run(tmp_path, monkeypatch, fake)
    data = go()
    order = run_order(5, 3, seed=11, block_cases=2)
    assert fake.calls == [(8 * (c + 1), r) for c, r in order]
    assert fake.launchers == {None}                      # fresh_rounds: no launcher
    assert data["run"]["order"]["seed"] == 11 and data["run"]["order"]["rule"] == runner.ORDER_RULE
    assert data["run"]["order"]["rule"] == "shuffled-blocks-adaptive-v1"
    assert data["run"]["order"]["block_cases"] == 2 and data["run"]["status"] == "complete"
    assert data["run"]["launcher"] == "fresh-interpreter"
    assert data["run"]["adaptive"] == {"rounds_min": 3, "rounds_max": 3, "target_ci": 0.05, "case_budget_s": None,
                                       "run_budget_s": None, "reach_factor": None, "rounds_floor": None}
    # the file lists cases in grid order, whatever order they finished in
    assert [c["case"]["payload_bytes"] for c in data["cases"]] == [8, 16, 24, 32, 40]
    # written progressively: one more case after each finish, not all at the end
    counts = [len(w) for w in writes]
    assert sorted(set(counts)) == [0, 1, 2, 3, 4, 5]
    for i, rec in enumerate(data["cases"]):
        assert rec["status"] == "ok" and rec["rounds_planned"] == 3 and len(rec["rounds"]) == 3
        assert (rec["rounds_min"], rec["rounds_max"], rec["target_ci"]) == (3, 3, 0.05)
        assert rec["stop_reason"] == "max rounds" and rec["target_met"] is False and rec["ci_reached"] > 0.05
        assert rec["ci_reached"] == pytest.approx(max(rec["noise"]["ci_rel"].values()))
        positions = [k for k, (c, _) in enumerate(order) if c == i]
        assert [r["order"] for r in rec["rounds"]] == positions
        assert all(r["start_s"] >= 0 and "load1" in r and "procs_running" in r for r in rec["rounds"])
        assert all(r["steal_s"] == 0.0 and r["steal_span_s"] == 0.01 for r in rec["rounds"])
        assert "latency_p50" in rec["metrics"]
    again = load_result(tmp_path / "r.json")
    assert again["run"]["order"]["seed"] == 11


def test_adaptive_rounds_go_on_only_for_the_cases_whose_ci_is_wide(tmp_path, monkeypatch, fake_machine):
    """Steady cases (no spread between rounds) stop at the minimum with the target met; noisy ones get
    more rounds up to the maximum; the order is rebuilt from the seed and the rounds each case got."""
    fake = FakeRounds(cv={16: 0.3, 40: 0.3})
    writer, writes, opts, go = _run(tmp_path, monkeypatch, fake, rounds=3, max_rounds=9)
    data = go()
    by_size = {c["case"]["payload_bytes"]: c for c in data["cases"]}
    for size in (8, 24, 32):
        rec = by_size[size]
        assert (len(rec["rounds"]), rec["stop_reason"], rec["target_met"]) == (3, "target met", True)
        assert rec["ci_reached"] == 0.0 and "wide_ci" not in rec["noise"]["flags"]
    for size in (16, 40):
        rec = by_size[size]
        assert (len(rec["rounds"]), rec["stop_reason"], rec["target_met"]) == (9, "max rounds", False)
        assert "wide_ci" in rec["noise"]["flags"] and rec["noise"]["target_ci"] == 0.05
    got = Counter(size for size, _ in fake.calls)
    rebuilt = run_order(5, 3, 11, 2, 9, more=lambda c, d: d < got[8 * (c + 1)])
    assert [(8 * (c + 1), r) for c, r in rebuilt] == fake.calls
    assert sorted(r["order"] for c in data["cases"] for r in c["rounds"]) == list(range(len(fake.calls)))
    assert data["run"]["adaptive"]["rounds_max"] == 9


def test_the_time_budget_stops_a_case_on_a_fake_clock(tmp_path, monkeypatch, fake_machine):
    clock = FakeClock()
    monkeypatch.setattr(runner, "time", clock)
    fake = FakeRounds(cv={8: 0.5, 16: 0.5, 24: 0.5}, clock=clock, seconds=0.25)
    writer, writes, opts, go = _run(tmp_path, monkeypatch, fake, n=3, rounds=2, max_rounds=50,
                                    case_budget_s=1.0)
    data = go()
    for rec in data["cases"]:
        # 0.25 s a round: 4 rounds reach 1.0 s, a 5th would pass it
        assert (len(rec["rounds"]), rec["stop_reason"], rec["target_met"]) == (4, "time budget", False)
        assert rec["wall_s"] == pytest.approx(1.0)
    assert data["run"]["adaptive"]["case_budget_s"] == 1.0


def test_a_case_whose_rounds_vary_too_much_stops_out_of_reach():
    rule = StopRule(0.05, 5, 30, None, reach_factor=2.0)
    wild = _lognormal_rounds(8, 5, 0.4)                   # ~40 % between rounds: hundreds of rounds needed
    assert rounds_needed(wild, [], 0.05) > 60
    assert decide(5, wild, [], 0.0, rule) == Decision(False, "out of reach", decide(5, wild, [], 0.0, rule).ci)
    assert decide(4, wild[:4], [], 0.0, rule).more                      # the minimum comes first
    mild = [50e-6 * (1 + 0.08 * (-1) ** i) for i in range(5)]          # ~8 %: about 10-20 rounds
    assert rounds_needed(mild, [1.0] * 5, 0.05) == pytest.approx((1.96 * np.std(np.log(mild), ddof=1) / 0.05) ** 2)
    assert decide(5, mild, [], 0.0, rule).more
    assert rounds_needed([1.0], [], 0.05) == 0.0
    assert decide(5, wild, [], 0.0, StopRule(0.05, 5, 30, None)).more         # no reach_factor: never


def test_run_share_divides_what_is_left_among_unfinished_cases():
    assert run_share(None, 50.0, 3) is None
    assert run_share(12.0, 3.0, 3) == pytest.approx(3.0)
    assert run_share(12.0, 15.0, 3) == 0.0 and run_share(12.0, 0.0, 0) == 12.0
    rule = StopRule(0.05, 2, 100, budget_s=None)
    noisy = _lognormal_rounds(7, 5, 0.5)
    assert decide(4, noisy[:4], [], 0.8, rule, run_share_s=0.21).more          # next round ~0.2 s fits
    assert decide(4, noisy[:4], [], 0.8, rule, run_share_s=0.19).reason == "run budget"
    assert decide(1, noisy[:1], [], 0.8, rule, run_share_s=0.0).more            # minimum rounds first


def test_the_run_budget_keeps_a_noisy_run_to_its_time_on_a_fake_clock(tmp_path, monkeypatch, fake_machine):
    """Five noisy cases, 0.25 s a round, minimum 2 rounds (2.5 s in all), a 5 s run budget: the rounds
    beyond the minimum share the other 2.5 s, and the run ends within its budget plus one round."""
    clock = FakeClock()
    monkeypatch.setattr(runner, "time", clock)
    fake = FakeRounds(cv={8 * (i + 1): 0.5 for i in range(5)}, clock=clock, seconds=0.25)
    start = clock.now
    writer, writes, opts, go = _run(tmp_path, monkeypatch, fake, n=5, rounds=2, max_rounds=50,
                                    case_budget_s=100.0, run_budget_s=5.0)
    data = go()
    assert clock.now - start <= 5.0 + 0.25
    assert {rec["stop_reason"] for rec in data["cases"]} == {"run budget"}
    assert sum(len(rec["rounds"]) for rec in data["cases"]) == len(fake.calls) >= 18
    assert all(len(rec["rounds"]) >= 3 for rec in data["cases"])                 # every case got extra rounds
    assert data["run"]["adaptive"]["run_budget_s"] == 5.0


def test_affordable_min_is_the_most_rounds_every_unfinished_case_can_still_get():
    # three cases not started, 0.2 s a round: 5 rounds each cost 3 s, 4 cost 2.4 s, 3 cost 1.8 s
    owed = [(0, 0.2)] * 3
    assert affordable_min(3.0, owed, 5, 3) == 5
    assert affordable_min(2.99, owed, 5, 3) == 4
    assert affordable_min(2.41, owed, 5, 3) == 4
    assert affordable_min(2.39, owed, 5, 3) == 3
    assert affordable_min(0.0, owed, 5, 3) == 3 and affordable_min(-5.0, owed, 5, 3) == 3   # the floor runs
    # rounds already done are not owed again: a case with 4 done owes 1 round for m = 5
    assert affordable_min(1.0, [(4, 0.5), (3, 0.25)], 5, 3) == 5        # 0.5 + 0.5
    assert affordable_min(0.99, [(4, 0.5), (3, 0.25)], 5, 3) == 4       # 0 + 0.25
    assert affordable_min(1.0, [], 5, 3) == 5
    assert affordable_min(0.0, owed, 2, 3) == 3        # a minimum under the floor: the floor (decide never cuts)


def test_decide_cuts_the_minimum_only_down_to_the_floor_and_only_with_one():
    rule = StopRule(0.05, 5, 30, None, floor_rounds=3)
    noisy = _lognormal_rounds(7, 5, 0.5)
    assert decide(2, noisy[:2], [], 0.4, rule, run_share_s=0.0, min_now=3).more      # below the floor: go on
    d = decide(3, noisy[:3], [], 0.6, rule, run_share_s=0.0, min_now=3)
    assert (d.more, d.reason) == (False, "run budget") and d.ci is not None and d.ci > 0.05
    assert decide(3, noisy[:3], [], 0.6, rule, run_share_s=0.0, min_now=4).more       # 4 still affordable
    assert decide(4, noisy[:4], [], 0.8, rule, run_share_s=0.0, min_now=4).reason == "run budget"
    assert decide(3, noisy[:3], [], 0.6, rule, run_share_s=0.0, min_now=5).more       # the budget pays 5
    assert decide(3, noisy[:3], [], 0.6, rule, run_share_s=0.0, min_now=1).reason == "run budget"   # floor 3
    no_floor = StopRule(0.05, 5, 30, None)
    assert decide(3, noisy[:3], [], 0.6, no_floor, run_share_s=0.0, min_now=3).more   # the minimum runs
    # tight rounds below the minimum are not "target met" early: the cut says it was the budget
    tight = [50e-6, 50.1e-6, 49.9e-6]
    assert decide(3, tight, tight, 0.6, rule, run_share_s=0.0, min_now=3).reason == "run budget"


def test_a_run_budget_with_a_floor_caps_the_minimum_rounds_on_a_fake_clock(tmp_path, monkeypatch, fake_machine):
    """Six noisy cases, 0.25 s a round, a minimum of 5 rounds (7.5 s in all), a 5 s run budget and a floor
    of 3: every case gets 3 or 4 rounds (the budget pays 3.33 a case), the run ends within its budget plus
    a round, and each cut case says "run budget"; without the floor every case gets its 5."""
    for floor, budget_ok in ((3, True), (None, False)):
        clock = FakeClock()
        monkeypatch.setattr(runner, "time", clock)
        fake = FakeRounds(cv={8 * (i + 1): 0.5 for i in range(6)}, clock=clock, seconds=0.25)
        start = clock.now
        sub = tmp_path / str(floor)
        sub.mkdir()
        writer, writes, opts, go = _run(sub, monkeypatch, fake, n=6, rounds=5, max_rounds=30,
                                        run_budget_s=5.0, floor_rounds=floor)
        data = go()
        got = [len(rec["rounds"]) for rec in data["cases"]]
        assert data["run"]["adaptive"]["rounds_floor"] == floor
        assert {rec["stop_reason"] for rec in data["cases"]} == {"run budget"}
        assert all(rec["rounds_min"] == 5 for rec in data["cases"])
        if budget_ok:
            assert all(3 <= n <= 4 for n in got) and sum(got) == len(fake.calls) >= 18, got
            assert clock.now - start <= 5.0 + 0.25
        else:
            assert got == [5] * 6 and clock.now - start == pytest.approx(7.5)


def test_a_failed_round_ends_its_case_and_the_others_go_on(tmp_path, monkeypatch, fake_machine):
    fake = FakeRounds(fail={(16, 1)})
    progress = RecordingProgress()
    writer, writes, opts, go = _run(tmp_path, monkeypatch, fake, progress=progress)
    data = go()
    assert [r for size, r in fake.calls if size == 16] == [0, 1]            # no third round
    assert len(fake.calls) == 5 * 3 - 1
    failed = data["cases"][1]
    assert failed["status"] == "failed" and failed["error"] == "broken on purpose"
    assert failed["stop_reason"] == "failed" and failed["target_met"] is False and failed["ci_reached"] is None
    assert [r["ok"] for r in failed["rounds"]] == [True, False] and failed["metrics"] == {}
    assert failed["rounds"][1]["order"] == [k for k, (c, r) in enumerate(run_order(5, 3, 11, 2))
                                            if (c, r) == (1, 1)][0]
    assert all(c["status"] == "ok" for i, c in enumerate(data["cases"]) if i != 1)
    # progress: every round is counted once, and the failed case's forecast ends where it stopped
    assert progress.events[0] == ("start", 5, 3, 3)
    assert sum(1 for e in progress.events if e[0] == "round") == 14
    assert ("case", 1, "failed", "failed") in progress.events
    assert progress.forecast.rounds_done() == progress.forecast.rounds_expected() == 14


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
        assert rec["stop_reason"] == ("interrupted" if n < 3 else "target met")
        assert "latency_p50" in rec["metrics"]                  # from the rounds it has
        assert rec["noise"]["rounds"] == n


def test_sigterm_raises_terminated_inside_the_block_only():
    import os
    import signal

    for sig in (signal.SIGTERM, signal.SIGHUP):
        before = signal.getsignal(sig)
        with pytest.raises(runner.Terminated) as exc, runner.sigterm_raises():
            os.kill(os.getpid(), sig)
            for _ in range(100):
                __import__("time").sleep(0.01)
        assert exc.value.signum == sig
        assert signal.getsignal(sig) is before
    assert issubclass(runner.Terminated, KeyboardInterrupt)     # every Ctrl-C path handles it


def test_writer_keeps_grid_order_and_knows_what_it_has(tmp_path, fake_machine):
    w = ResultWriter(tmp_path / "r.json", "m", {})
    w.add({"n": 3}, position=3)
    w.add({"n": 1}, position=1)
    w.add_many([({"n": 2}, 2), ({"n": 0}, 0)])
    w.add({"n": "end"})
    assert [c["n"] for c in json.loads((tmp_path / "r.json").read_text())["cases"]] == [0, 1, 2, 3, "end"]
    assert w.has(2) and not w.has(7)


# -- progress: a forecast of the rounds to come ---------------------------------------------------------
def test_forecast_before_any_case_finishes_expects_halfway_between_min_and_max():
    f = Forecast([1.0, 2.0], min_rounds=4, max_rounds=20)
    assert f.extra_rounds() == 8
    assert f.expected_rounds(0) == 12 and f.expected_weight() == 36
    assert f.max_weight() == 60 and f.rounds_max() == 40
    assert f.eta(10.0) == 0.0                      # nothing done: no speed to go by


def test_forecast_follows_the_observed_continuation_rate():
    f = Forecast([1.0] * 10, min_rounds=5, max_rounds=25)
    for i in range(6):                              # six cases stop at the minimum
        for _ in range(5):
            f.round_done(i)
        f.case_done(i)
    # observed extra 0 for six cases, prior 10 for two pseudo-cases -> 2.5 extra
    assert f.extra_rounds() == pytest.approx(2.5)
    assert f.expected_rounds(9) == pytest.approx(7.5)
    # a running case is expected to have at least one more round than it has had
    for _ in range(12):
        f.round_done(6)
    assert f.expected_rounds(6) == 13
    # a failed case's rounds end where it stopped and do not count as a continuation rate
    f.round_done(7)
    f.case_done(7, counts=False)
    assert f.expected_rounds(7) == 1 and f.extra_rounds() == pytest.approx(2.5)
    # ETA: elapsed scaled by expected work left over work done
    done = f.done_weight()
    assert done == 30 + 12 + 1
    assert f.eta(43.0) == pytest.approx(f.expected_weight() - done)
    assert f.eta_max(43.0) >= f.eta(43.0)


def test_forecast_with_fixed_rounds_is_exact():
    f = Forecast([2.0, 1.0], min_rounds=3)
    assert f.expected_weight() == f.max_weight() == 9
    for i in (0, 1, 0, 1, 0, 1):
        f.round_done(i)
    f.case_done(0)
    f.case_done(1)
    assert f.eta(9.0) == 0 and f.rounds_expected() == f.rounds_done() == 6


def test_forecast_with_a_run_budget_expects_the_budget_or_the_rounds_still_owed():
    """quick's 240 s: rounds beyond the minimum fit the budget, and with a floor the minimum gives way too,
    so the run takes about max(budget, rounds it must run), not the adaptive rounds' expectation."""
    f = Forecast([1.0] * 10, min_rounds=5, max_rounds=30, run_budget_s=100.0, floor_rounds=3)
    assert f.expected_weight() == 100 and f.max_weight() == 100          # uncapped: 175 and 300
    assert f.rounds_expected() == 100 and f.rounds_max() == 100
    # a budget below the floor's rounds: those rounds (10 cases x 3) are the least the run does
    assert Forecast([1.0] * 10, 5, 30, run_budget_s=20.0, floor_rounds=3).expected_weight() == 30
    assert Forecast([1.0] * 10, 5, 30, run_budget_s=20.0).expected_weight() == 50     # no floor: 5 each
    # once rounds ran, the budget is in real seconds: 10 rounds took 20 s (2 s per estimated second)
    for i in range(10):
        f.round_done(i)
    assert f.scale(20.0) == 2.0
    assert f.eta(20.0) == pytest.approx(80.0)                           # the 100 s budget less 20 s
    assert f.eta_max(20.0) == pytest.approx(80.0)
    # without a budget the same run expects its adaptive rounds
    g = Forecast([1.0] * 10, min_rounds=5, max_rounds=30)
    for i in range(10):
        g.round_done(i)
    assert g.eta(20.0) == pytest.approx(2.0 * (175 - 10))


def test_line_progress_says_the_run_budget():
    out = io.StringIO()
    LineProgress(out).start(_cases(3), [1.0, 1.0, 1.0], 5, 25, 6.0, 3)
    assert out.getvalue().splitlines()[0] == ("ipcbench: 3 cases x 5-25 rounds, a run budget of 0m06s for rounds "
                                              "beyond the minimum, estimated 0m09s (at most 0m09s)")


def test_line_progress_counts_rounds_and_reports_each_finished_case():
    out = io.StringIO()
    p = LineProgress(out)
    cases = _cases(2)
    p.start(cases, [1.0, 2.0], 2)
    p.round_done(1)
    p.round_done(0)
    assert 0 < p.eta()
    p.round_done(1)
    p.case_done(1, {"status": "failed", "error": "peer died", "stop_reason": "failed"})
    p.round_done(0)
    p.case_done(0, {"status": "ok", "metrics": {}, "noise": None, "rounds": [{"ok": True}] * 2,
                    "ci_reached": 0.031, "target_met": True, "stop_reason": "target met"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "ipcbench: 2 cases x 2 rounds, estimated 0m06s"
    assert lines[1].startswith("[1/2] pipe_duplex roundtrip 16 B") and "FAILED: peer died" in lines[1]
    assert "(round 3/4, ETA" in lines[1]
    assert lines[2].startswith("[2/2]") and "2 rounds ±3.1 %" in lines[2] and "(round 4/4, ETA 0m00s)" in lines[2]


def test_line_progress_with_adaptive_rounds_shows_expected_and_most():
    out = io.StringIO()
    p = LineProgress(out)
    cases = _cases(3)
    p.start(cases, [1.0, 1.0, 1.0], 5, 25)
    assert out.getvalue().splitlines()[0] == "ipcbench: 3 cases x 5-25 rounds, estimated 0m45s (at most 1m15s)"
    for _ in range(30):
        p.round_done(0)
    p.case_done(0, {"status": "ok", "metrics": {}, "noise": None, "rounds": [{"ok": True}] * 25,
                    "ci_reached": 0.08, "target_met": False, "stop_reason": "max rounds"})
    line = out.getvalue().splitlines()[1]
    assert "25 rounds ±8.0 % (max rounds)" in line
    assert "(round 30 of ~" in line and "at most 80, ETA" in line


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


def test_the_terminal_bar_draws_at_rounds_only_never_on_a_timer():
    """RichProgress draws when a round starts or ends: no refresh thread wakes the machine during a round
    (a process waking every 0.1 s sped a round trip up by 6 % on the reference VM, tools/timer_wakeups.py)."""
    import threading
    import time

    from rich.console import Console

    from ipcbench.measure.progress import RichProgress

    out = io.StringIO()
    p = RichProgress()
    p.console = Console(file=out, force_terminal=True, width=160)
    before = set(threading.enumerate())
    p.start(_cases(2), [1.0, 1.0], 2)
    try:
        assert set(threading.enumerate()) == before          # rich's auto-refresh would start a thread
        p.round_started(0, 0)
        drawn = out.getvalue()
        assert "pipe_duplex roundtrip 8 B w1 fork spread round 1" in drawn
        time.sleep(0.3)                                      # a round: nothing is drawn meanwhile
        assert out.getvalue() == drawn
        p.round_done(0)
        assert "0/2 cases, 1/~4 rounds" in out.getvalue()[len(drawn):]
    finally:
        p.stop()
