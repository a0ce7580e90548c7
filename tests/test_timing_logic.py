"""The timed loops of the patterns, driven by a fake clock and an in-process echo: exact numbers."""

from array import array
from collections import deque
from contextlib import ExitStack
from types import SimpleNamespace

import pytest

from ipcbench.measure import patterns
from ipcbench.measure.harness import Round, RoundFailed
from ipcbench.measure.mechanisms import Mechanism
from ipcbench.plan.cases import Case, RoundSpec


class FakeClock:
    def __init__(self, step=1000):
        self.now, self.step = 0, step

    def __call__(self):
        self.now += self.step
        return self.now


class Echo:
    """Both ends of an in-process channel whose peer echoes at once (optionally mangling the reply)."""

    def __init__(self, mangle=None):
        self.q = deque()
        self.mangle = mangle or (lambda x: x)

    def send(self, obj):
        self.q.append(self.mangle(obj))

    def recv(self):
        return self.q.popleft()


class FakePool:
    def map(self, fn, it, chunksize=1):
        return [fn(x) for x in it]

    def apply(self, fn, args):
        return fn(*args)


class FakeRound:
    def __init__(self, spec, size=8):
        self.case = Case("fake", "roundtrip", "bytes", size, 1, "fork")
        self.spec, self.payload, self.stack = spec, b"x" * size, ExitStack()
        self.cpu = 0.0
        self.peers_started = 0

    warmup = Round.warmup
    cpu_delta = staticmethod(Round.cpu_delta)

    def start_peer(self, *a, **k):
        self.peers_started += 1

    def cpu_snapshot(self):
        self.cpu += 0.5
        return {1: self.cpu}

    def placement(self):
        return {}

    def stopping(self):
        pass

    def pool(self, n):
        return FakePool()


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock(1000)
    monkeypatch.setattr(patterns, "perf_counter_ns", c)
    return c


def channel(echo):
    """A mechanism declaration whose channel is the in-process echo."""
    return Mechanism("fake", "test", "in-process echo", patterns=("roundtrip",),
                     make_channel=lambda rnd, bounded: (echo, echo))


def test_roundtrip_stops_at_budget(clock):
    spec = RoundSpec(budget_s=0.001, min_messages=5, max_window_s=1, max_messages=10**6, warmup=3, warmup_s=1)
    rnd = FakeRound(spec)
    res = patterns.roundtrip(rnd, channel(Echo()))
    # each op reads the clock twice (1 µs apart), so the 1 ms budget holds 500 ops of exactly 1 µs
    assert res.samples_ns == [1000] * 500
    assert res.ops == 500 and res.window_ns == 1_000_000
    assert res.bytes_per_op == 16 and res.cpu_s == 0.5
    assert rnd.peers_started == 1


def test_roundtrip_min_messages_beats_budget(clock):
    spec = RoundSpec(budget_s=0, min_messages=7, max_window_s=1, max_messages=100, warmup=1)
    assert len(patterns.roundtrip(FakeRound(spec), channel(Echo())).samples_ns) == 7


def test_roundtrip_max_messages_and_hard_window(clock):
    spec = RoundSpec(budget_s=1, min_messages=1, max_window_s=1, max_messages=10, warmup=1)
    assert patterns.roundtrip(FakeRound(spec), channel(Echo())).ops == 10
    spec = RoundSpec(budget_s=1, min_messages=10**6, max_window_s=0.0001, max_messages=10**6, warmup=1)
    # the hard window (100 µs) ends the round even though min_messages is not reached
    assert patterns.roundtrip(FakeRound(spec), channel(Echo())).ops == 50


def test_roundtrip_rejects_a_wrong_echo(clock):
    spec = RoundSpec(budget_s=0.001, warmup=1)
    with pytest.raises(RoundFailed, match="echo returned 4 bytes, expected 8 bytes"):
        patterns.roundtrip(FakeRound(spec), channel(Echo(mangle=lambda x: x[:4] if x else x)))


def test_warmup_runs_until_the_timing_stops_improving():
    """Calls that get faster (10 ms, 9, 8 ... 5 ms, then 5 ms each) warm up until the median of the last 5
    is no longer 5 % below the median of the 5 before; never fewer than the minimum calls."""
    from ipcbench.measure.harness import stable_warmup

    durations = iter([10, 9, 8, 7, 6, 5] + [5] * 100)
    now = [0]

    def clock():
        return now[0]

    def op():
        now[0] += next(durations) * 1_000_000

    assert stable_warmup(op, min_calls=3, max_s=60, clock=clock) == 13     # medians 6 (calls 4-8) vs 5 (9-13): 0.83
    flat = iter([5] * 100)

    def op_flat():
        now[0] += next(flat) * 1_000_000

    assert stable_warmup(op_flat, min_calls=25, max_s=60, clock=clock) == 25     # the minimum still holds


def test_warmup_runs_at_least_its_minimum_time_even_when_stable_at_once():
    """A flat 5 ms op is stable after 10 calls, but with min_s = 0.1 the warm-up goes on until its calls
    have taken 100 ms (20 calls, the clock read after each); the cap is then max(max_s, min_s)."""
    from ipcbench.measure.harness import stable_warmup

    now = [0]

    def clock():
        return now[0]

    def op():
        now[0] += 5_000_000

    assert stable_warmup(op, min_calls=3, max_s=1, clock=clock) == 10              # no minimum: 2 windows of 5
    assert stable_warmup(op, min_calls=3, max_s=1, clock=clock, min_s=0.1) == 20   # 20 x 5 ms = 100 ms
    assert stable_warmup(op, min_calls=3, max_s=0.01, clock=clock, min_s=0.1) == 20   # max_s below the minimum
    falling = iter(range(1000, 0, -1))

    def op_falling():                   # never stable: ends at max(max_s, min_s)
        now[0] += next(falling) * 1_000_000

    assert stable_warmup(op_falling, min_calls=1, max_s=0.5, clock=clock, min_s=5) == 6    # 5 calls: 4.99 s


def test_round_warmup_passes_the_specs_minimum_time(monkeypatch):
    from ipcbench.measure import harness

    seen = {}

    def fake(op, min_calls, max_s, **kw):
        seen.update(min_calls=min_calls, max_s=max_s, **kw)
        return 7

    monkeypatch.setattr(harness, "stable_warmup", fake)
    rnd = SimpleNamespace(spec=RoundSpec(warmup=4, warmup_s=0.08, warmup_min_s=0.05))
    assert harness.Round.warmup(rnd, lambda: None) == 7
    assert seen == {"min_calls": 4, "max_s": 0.08, "min_s": 0.05}


def test_warmup_is_bounded_by_time():
    from ipcbench.measure.harness import stable_warmup

    now = [0]
    falling = iter(range(1000, 0, -1))

    def op():                           # always getting faster: only the time limit ends it
        now[0] += next(falling) * 1_000_000

    assert stable_warmup(op, min_calls=1, max_s=5, clock=lambda: now[0]) == 6      # 5 calls: 4.99 s; the 6th passes 5 s


def test_dispatch_apply_counts_tasks(clock):
    spec = RoundSpec(budget_s=0.0002, min_messages=1, max_window_s=1, max_messages=10**6, warmup=2)
    res = patterns.dispatch_apply(FakeRound(spec, size=100))
    assert res.samples_ns == [1000] * 100 and res.ops == 100 and res.bytes_per_op == 200


def test_in_flight_window():
    assert patterns.in_flight_window(2, 8) == 2                 # one task per worker
    assert patterns.in_flight_window(16, 64 * 1024**2) == 2     # 2 x 64 MiB x 2 directions = 256 MiB
    assert patterns.in_flight_window(1, 1024**3) == 1
    assert patterns.tasks_per_call(8, patterns.BATCH_TASKS) == 1024
    assert patterns.tasks_per_call(1024**2, patterns.BATCH_TASKS) == 16   # <= 32 MiB both ways


def test_the_submit_all_hand_loops_run_jobs_of_the_cases_k():
    """The selfcheck's hand loops for apply_async, its callback form and executor.submit run N tasks as
    jobs of ipcbench's K (the rate moves with K), as the map loops make ipcbench's calls of 64."""
    from ipcbench.measure import user_loops

    assert user_loops._job_tasks(b"x" * 8) == 1024
    assert user_loops._job_tasks(b"x" * 1024**2) == 16
    assert user_loops._calls(2500, 1024) == [1024, 1024, 452]


def test_the_hand_loops_take_the_round_s_cap_on_k(monkeypatch):
    """A round makes calls and jobs of at most max_messages / min_messages tasks (smoke: 32); the hand loops
    the selfcheck holds against it get the same cap (``run_pairs`` passes ``patterns.tasks_cap``)."""
    from ipcbench.measure import user_loops
    from ipcbench.plan.presets import PRESETS

    smoke, quick = PRESETS["smoke"].spec, PRESETS["quick"].spec
    assert patterns.tasks_cap(smoke) == 32
    small, large = patterns.tasks_cap(smoke), patterns.tasks_cap(quick)
    assert patterns.round_tasks(8, True, small) == patterns.round_tasks(8, False, small) == 32
    assert (patterns.round_tasks(8, True, large), patterns.round_tasks(8, False, large)) == (1024, 64)
    assert patterns.round_tasks(1024**2, True, large) == 16
    monkeypatch.setattr(user_loops, "TASKS_CAP", 32)
    assert (user_loops._job_tasks(b"x" * 8), user_loops._map_calls(b"x" * 8)) == (32, 32)
    assert user_loops._job_tasks(b"x" * 1024**2) == 16
    monkeypatch.setattr(user_loops, "TASKS_CAP", None)
    assert (user_loops._job_tasks(b"x" * 8), user_loops._map_calls(b"x" * 8)) == (1024, 64)


def test_counted_ops_end_at_the_last_op_that_finished_by_the_stop():
    """contention and rpc: an op still running at the stop is not counted, and the window ends at the last
    counted op (not at the parent's poll, which would add idle time to every round)."""
    client_a = (array("q", [100, 200, 300, 400]), array("q", [150, 250, 350, 450]))
    client_b = (array("q", [110, 260, 390]), array("q", [240, 380, 520]))
    samples, ops, last = patterns.counted_ops([client_a, client_b], t_stop=400)
    assert sorted(samples) == [50, 50, 50, 120, 130]
    assert ops == 5 and last == 380
    assert patterns.counted_ops([client_a], t_stop=99) == ([], 0, 0)


def test_counted_ops_end_where_the_first_client_stopped_before_the_stop():
    """A client that stopped on its cap before the parent's stop ends the counted window: the others' ops
    after its last one ran with one contender fewer and are not counted."""
    capped = (array("q", [100, 200]), array("q", [190, 290]))            # stopped at 290
    running = (array("q", [100, 180, 250, 300, 350]), array("q", [170, 240, 290, 340, 420]))
    samples, ops, last = patterns.counted_ops([capped, running], t_stop=400)
    assert ops == 5 and last == 290
    assert sorted(samples) == [40, 60, 70, 90, 90]
    # a client that never finished an op does not end the window
    samples, ops, last = patterns.counted_ops([running, (array("q"), array("q"))], t_stop=400)
    assert ops == 4 and last == 340


def test_the_cpu_of_a_round_is_omitted_where_the_others_ran_on_after_a_capped_client():
    """rpc and contention read CPU at the stop: where a client stopped on its cap earlier while another
    ran on, that CPU holds uncounted ops, so the round reports none and says why; where every client ran
    to the stop (its last op ends after it), or one client alone stopped on its cap and waited, it is the
    CPU of the counted ops (within one op)."""
    capped = (array("q", [100, 200]), array("q", [190, 290]))            # stopped at 290
    running = (array("q", [100, 180, 250, 300, 350]), array("q", [170, 240, 290, 340, 420]))
    why = patterns.cpu_omitted([capped, running], t_stop=400)
    assert why == ("a client stopped on its cap 0.0 ms before the stop; the CPU read there holds the "
                   "others' uncounted ops")
    assert patterns.cpu_omitted([capped, running], t_stop=3_000_290).startswith(
        "a client stopped on its cap 3.0 ms before")
    assert patterns.cpu_omitted([running], t_stop=400) is None                  # ran to the stop
    assert patterns.cpu_omitted([capped], t_stop=400) is None                   # alone: idle after its cap
    assert patterns.cpu_omitted([running, (array("q"), array("q"))], t_stop=400) is None
    assert patterns.cpu_omitted([(array("q"), array("q"))], t_stop=400) is None


def test_a_contention_sample_is_a_batch_of_cycles_divided_by_its_size():
    """contention: each (start, end) pair is LOCK_BATCH cycles (stamping each cycle cost more than one);
    a sample is the batch's time / the batch size, and every cycle of a counted batch is an op."""
    client = (array("q", [0, 1000, 2000]), array("q", [640, 1960, 2900]))
    samples, ops, last = patterns.counted_ops([client], t_stop=2000, per_sample=32)
    assert samples == [20, 30] and ops == 64 and last == 1960
    assert patterns.LOCK_BATCH == 1024      # 32 made the clients contend otherwise (tools/lock_tail.py)


def test_client_counters_sit_on_cache_lines_of_their_own():
    assert patterns.COUNT_STRIDE * 8 >= 128


def test_the_counted_window_of_a_stream_starts_after_the_channel_has_filled():
    """stream and fanin: receipts before t_steady (the channel filling) are not counted; the window starts
    at the first receipt after it, whichever producer it came from."""
    times = [[10, 20, 30, 40, 50], [15, 35, 55], []]
    first, starts = patterns.steady_start(times, t_steady=32)
    assert first == 35 and starts == [3, 1, 0]
    assert patterns.steady_start(times, t_steady=99) == (None, [5, 3, 0])
    assert 0 < patterns.STEADY_SKIP < 1


def test_a_stream_s_latency_samples_are_its_stamped_messages():
    """The producer stamps every stride-th message from its first; a sample is the receipt of such a
    message minus its send time, from the first stamped message at or after the counted window's start."""
    times = [100, 110, 120, 130, 140, 150, 160]
    sent = array("q", [5, 25, 45, 65])            # messages 0, 2, 4, 6
    assert patterns.one_way_samples(times, 0, sent, 2) == [95, 95, 95, 95]
    assert patterns.one_way_samples(times, 3, sent, 2) == [95, 95]       # messages 4 and 6
    assert patterns.one_way_samples(times, 1, sent[:2], 2) == [95]        # message 4 was not stamped (sent)
    assert patterns.one_way_samples(times, 2, array("q", range(7)), 1) == [118, 127, 136, 145, 154]
    assert patterns.stamp_stride(8) == patterns.STAMP_STRIDE and patterns.stamp_stride(1024**2) == 1


def test_a_stream_consumer_that_stamps_every_kth_receipt_matches_them_to_the_sends():
    """The stream's consumer keeps the receipt of every ``every``-th message only (times[r] is message
    r x every); a sample needs the message stamped on both sides, whatever the producer's stride."""
    times = [100, 140, 180, 220]                  # messages 0, 4, 8, 12
    sent = array("q", [5, 45, 85, 125])           # stride 4: messages 0, 4, 8, 12
    assert patterns.one_way_samples(times, 1, sent, 4, every=4) == [95, 95, 95]
    sent2 = array("q", [5, 85])                   # stride 8: messages 0, 8
    assert patterns.one_way_samples(times, 0, sent2, 8, every=4) == [95, 95]
    assert patterns.one_way_samples(times, 2, array("q", range(13)), 1, every=4) == [172, 208]  # stride 1
    # the counted window needs `need` messages, counted as stamped receipts x every
    assert patterns.counted_window([times], t_steady=150, exhausted=True, need=8, every=4) == (180, [2], False)
    assert patterns.counted_window([times], t_steady=150, exhausted=True, need=9, every=4)[2] is True


def test_the_prefix_of_a_drain_stamps_every_kth_message_counting_those_before():
    """Untagged, ``_receive_prefix`` stamps message i (counting ``received`` before this call) when
    i % every == 0, and counts every message; a producer's None ends it."""
    msgs = iter([b"m"] * 10 + [None])
    times = [array("q")]
    ended, got = patterns._receive_prefix(lambda: next(msgs), 10, times, False, 1, every=4, received=2)
    assert (ended, got) == (0, 10) and len(times[0]) == 2          # messages 4 and 8 of 2..11
    ended, got = patterns._receive_prefix(lambda: next(msgs), 10, times, False, 1, every=4, received=12)
    assert (ended, got) == (1, 0) and len(times[0]) == 2           # the None: the producer ended


def test_the_paced_phase_runs_at_a_tenth_of_the_rate_and_counts_from_the_schedule():
    """Open loop: a sample is receipt - scheduled send time (t0 + k x interval), so a stall delays the
    messages behind it and they count; the schedule is a tenth of the delivered rate, lasts half the
    budget, and has at least PACED_MIN messages."""
    spec = RoundSpec(budget_s=0.06, min_messages=5, max_window_s=3, max_messages=20000, warmup=10, warmup_s=0.03,
                     timeout_s=20)
    interval, count = patterns.paced_plan(100_000, spec)       # 100k/s delivered -> 10k/s paced
    assert interval == 100_000 and count == 300                # 30 ms / 100 us
    assert patterns.paced_plan(40, spec) == (250_000_000, patterns.PACED_MIN)     # 16 MiB: 4/s, 5 messages
    assert patterns.paced_plan(1e9, spec)[1] == 20000          # never more than max_messages
    t0 = 1_000
    receipts = [1_050, 1_150, 1_600, 1_650]                    # a stall before the third
    assert patterns.paced_samples(receipts, t0, 100) == [50, 50, 400, 350]


def test_a_stream_that_ends_before_the_channel_has_filled_skips_a_quarter_of_its_messages():
    """A fast channel with a small budget: all max_messages arrive (nearly) before t_steady. One receipt
    after it is no window; the first STEADY_SKIP of the receipts are skipped instead (seen in CI:
    os_pipe stream, 300 messages in about 1 ms)."""
    times = [[10, 20, 30, 40, 50, 60, 70, 80], [15, 95]]
    assert patterns.counted_window(times, t_steady=90, exhausted=False) == (95, [8, 1], False)
    first, starts, whole = patterns.counted_window(times, t_steady=90, exhausted=True)
    assert whole and first == 20 and starts == [1, 1]        # 10 receipts: skip the first 2 (10, 15)
    assert patterns.counted_window(times, t_steady=20, exhausted=True) == (20, [1, 1], False)
    assert patterns.counted_window([[], []], t_steady=5, exhausted=True) == (None, [0, 0], True)
    # with a stamp stride of 8 the window needs 16 receipts, so that it holds a stamped message
    assert patterns.counted_window(times, t_steady=20, exhausted=True, need=16)[2] is True


def test_the_stream_window_opens_after_the_minimum_warm_up_time():
    """A bounded stream's counted window opens STEADY_SKIP x budget_s or warmup_min_s after the go, the
    later; an unbounded queue's after its fill (0 here: its drain is held back by the consumer)."""
    quick_like = RoundSpec(budget_s=0.06, warmup_min_s=0.05)
    assert patterns.steady_skip_s(quick_like, fill_first=False) == 0.05
    assert patterns.steady_skip_s(RoundSpec(budget_s=0.4, warmup_min_s=0.05), fill_first=False) == 0.1
    assert patterns.steady_skip_s(RoundSpec(budget_s=0.06), fill_first=False) == 0.06 * patterns.STEADY_SKIP
    assert patterns.steady_skip_s(quick_like, fill_first=True) == 0.0


def _feed(items):
    """recv and clock for tagged_window: item k arrives at time 10 * (k + 1)."""
    it = iter(items)
    now = [0]

    def clock():
        now[0] += 10
        return now[0]

    return (lambda: next(it)), clock


def test_a_fan_in_window_ends_at_the_first_producer_s_end():
    """Two producers: once the window is open (t_steady 25), the first sentinel ends it; the messages
    after it (the other producer alone) are neither kept nor counted. A sentinel before the window opens
    does not; with one producer, its sentinel ends the loop as a stream's does. The count is of the
    messages received after the first counted receipt; ``marks`` number each stamped receipt."""
    opened = []
    msgs = [(0, b"x"), (1, b"x"), (0, b"x"), (1, b"x"), (0, b"x"), None, (1, b"x"), (1, b"x"), None]
    recv, clock = _feed(msgs)
    times, marks = [[], []], [[], []]
    ended, counted = patterns.tagged_window(recv, clock, times, marks, 2, 0, 25, 10**9, 10**9, 1,
                                            lambda: opened.append(1))
    assert (ended, counted) == (1, 2) and times == [[10, 30, 50], [20, 40]] and opened == [1]
    assert marks == [[1, 3, 5], [2, 4]]
    # a sentinel before t_steady: producer 0 ran out while the channel filled; the window goes on
    recv, clock = _feed([(0, b"x"), None, (1, b"x"), (1, b"x"), None])
    times, marks = [[], []], [[], []]
    assert patterns.tagged_window(recv, clock, times, marks, 2, 0, 25, 10**9, 10**9, 1, lambda: None) == (2, 1)
    assert times == [[10], [30, 40]] and marks == [[1], [2, 3]]
    # soft deadline (t >= 40) with min_messages counted ends it before any sentinel
    recv, clock = _feed([(0, b"x"), (1, b"x"), (0, b"x"), (1, b"x"), (0, b"x"), None, None])
    times, marks = [[], []], [[], []]
    assert patterns.tagged_window(recv, clock, times, marks, 2, 0, 15, 40, 10**9, 2, lambda: None) == (0, 2)
    # one producer (fan-in with 1 worker): its sentinel is the end
    recv, clock = _feed([(0, b"x"), (0, b"x"), None])
    times, marks = [[]], [[]]
    assert patterns.tagged_window(recv, clock, times, marks, 1, 0, 0, 10**9, 10**9, 1, lambda: None) == (1, 1)


def test_a_fan_in_consumer_stamps_only_what_its_producers_stamped():
    """Messages tagged ``index + UNSTAMPED`` were sent without a stamp: no clock read, no receipt kept,
    but they are numbered (counted) all the same; ``window_messages`` counts from the marks. Numbering
    goes on from the messages received before the loop (``received``)."""
    u = patterns.UNSTAMPED
    msgs = [(0, b"x"), (1 + u, b"x"), (1, b"x"), (0 + u, b"x"), (0 + u, b"x"), (0, b"x"), (1 + u, b"x"),
            (1, b"x"), None, None]
    recv, clock = _feed(msgs)           # the clock ticks only for stamped receipts: 10, 20, 30, 40
    times, marks = [[], []], [[], []]
    ended, counted = patterns.tagged_window(recv, clock, times, marks, 2, 0, 15, 10**9, 10**9, 1, lambda: None,
                                            received=100)
    assert times == [[10, 30], [20, 40]] and marks == [[101, 106], [103, 108]]
    assert (ended, counted) == (1, 5)   # messages 104-108 after the first counted receipt (103)
    starts = [1, 0]                     # producer 0's first counted receipt is its second, at 30
    assert patterns.window_messages(marks, starts) == 108 - 103
    # the producer's side: a stride of 4 sends the 1st of every 4 tagged with its index, the rest untagged
    sent_tags = []

    class End:
        def send(self, msg):
            sent_tags.append(None if msg is None else msg[0])

    go, stop = SimpleNamespace(wait=lambda timeout: True), SimpleNamespace(value=1)
    conn = SimpleNamespace(send_bytes=lambda b: None, close=lambda: None)
    patterns.producer_peer(End(), "bytes", 8, 1, True, 2, go, stop, conn, 8, 1.0, fill_first=True, stride=4)
    assert sent_tags == [1 + u, 1 + u, 1, 1 + u, 1 + u, 1 + u, 1, 1 + u, 1 + u, 1 + u, None]


def test_a_window_does_not_end_at_its_first_counted_receipt():
    """A consumer that stalls past the soft deadline before its first counted receipt (a loaded CI runner)
    goes on until ``min_messages`` are counted after that receipt: the delivered rate counts only those
    (a window of one receipt failed a round with 'only 1 stamped message(s)')."""
    # fan-in: t_steady 15, soft 15 (passed at the first counted receipt, time 20), min_messages 1
    recv, clock = _feed([(0, b"x"), (1, b"x"), (0, b"x"), (1, b"x"), None, None])
    times, marks = [[], []], [[], []]
    assert patterns.tagged_window(recv, clock, times, marks, 2, 0, 15, 15, 10**9, 1, lambda: None) == (0, 1)
    assert times == [[10, 30], [20]]
    # stream, every 4th receipt stamped: the second stamped receipt (4 counted after the first) ends it
    it = iter([b"x"] * 12 + [None])
    now = [0]

    def clock4():
        now[0] += 10
        return now[0]

    opened = []
    stamps: list = []
    ended, counted = patterns.stream_window(lambda: next(it), clock4, stamps, 0, 4, 15, 15, 10**9, 3,
                                            lambda: opened.append(1))
    assert (ended, counted, stamps, opened) == (0, 8, [10, 20, 30], [1])
    # the sentinel before that ends the loop, which says so (the round then takes counted_window's rule)
    it = iter([b"x"] * 5 + [None])
    now[0] = 0
    stamps = []
    assert patterns.stream_window(lambda: next(it), clock4, stamps, 0, 4, 15, 15, 10**9, 3, lambda: None) == (1, 4)
    assert stamps == [10, 20]


@pytest.mark.parametrize("stride, sends", [(1, 49 + 10), (4, 20 + 4)])
def test_a_producer_counts_its_max_messages_from_the_window_on(stride, sends):
    """With a ``counting`` flag the producer's max_messages (10 here) count only what it sends once the
    consumer has raised the flag (during the 50th send, or the 20th: the end of a group of 4), so a fast
    channel has not run out when the window opens; without one, from the go."""
    import threading

    flag = SimpleNamespace(value=0)
    raise_at = 50 if stride == 1 else 20

    class Sink:
        def __init__(self):
            self.sent = []

        def send(self, msg):
            self.sent.append(msg)
            if len(self.sent) == raise_at:
                flag.value = 1

        def send_bytes(self, data):
            self.report = data

        def close(self):
            pass

    go = threading.Event()
    go.set()
    sink, result = Sink(), Sink()
    patterns.producer_peer(sink, "bytes", 8, None, False, 0, go, SimpleNamespace(value=0), result, 10, 0.01,
                           False, stride, None, flag)
    assert len(sink.sent) == sends + 1 and sink.sent[-1] is None
    flag.value, raise_at, plain = 0, 0, Sink()
    patterns.producer_peer(plain, "bytes", 8, None, False, 0, go, SimpleNamespace(value=0), result, 12, 0.01,
                           False, stride, None, None)
    assert len(plain.sent) == 12 + 1                            # no flag: counted from the go


@pytest.mark.parametrize("costs_us, stride", [([500] + [2] * 9, 8), ([30] * 10, 1), ([2] * 10, 8), ([], 8)])
def test_a_producer_stamps_every_message_only_where_its_median_warm_up_send_is_slow(monkeypatch, costs_us,
                                                                                   stride):
    """The stamp stride gives way (to 1) where a send costs 20 us or more anyway, judged by the median of the
    warm-up sends: a channel's first send (a Queue's feeder thread starting: 500 us here) does not count."""
    import threading
    from itertools import accumulate, chain, count

    # the clock: the warm-up's reads (before, then after each send), then steady 1 us steps
    ticks = chain(accumulate([10**6] + [c * 1000 for c in costs_us]), count(10**9, 1000))
    monkeypatch.setattr(patterns, "perf_counter_ns", lambda: next(ticks))

    class Sink:
        def send(self, msg):
            pass

        def send_bytes(self, data):
            self.report = array("q", data)

        def close(self):
            pass

    go, result = threading.Event(), Sink()
    go.set()
    patterns.producer_peer(Sink(), "bytes", 8, None, False, len(costs_us), go, SimpleNamespace(value=0), result,
                           16, 0.01, False, 8, None, None)
    assert result.report[0] == stride


def test_a_peer_without_its_go_says_what_to_do():
    """600 fan-in producers on 2 vCPUs: the first waited past the round's timeout while the rest were still
    being started; its error says so and what to change."""
    import threading

    class Sink:
        def __init__(self):
            self.sent = []

        def send(self, msg):
            self.sent.append(msg)

        send_bytes = send

    sink, go = Sink(), threading.Event()
    with pytest.raises(TimeoutError) as err:
        patterns.producer_peer(sink, "bytes", 8, None, False, 3, go, None, None, 10, 0.01)
    assert str(err.value) == ("producer: no start signal from the consumer within 0.01 s (the round was still "
                              "starting its other peers, or hung: with many workers, fewer of them or a longer "
                              "--timeout)")
    assert len(sink.sent) == 3                    # its warm-up was sent first
    with pytest.raises(TimeoutError, match=r"client: no start signal within 0.01 s \(.*--timeout\)"):
        patterns.lock_client(threading.Lock(), 2, go, None, None, 0, Sink(), 10, 0.01)


def test_the_callback_form_waits_for_the_kth_callback_from_another_thread_and_fails_on_a_failed_task():
    """submit_all_callback: K submissions, then one wait until K callbacks (or error callbacks) came, as
    the pool's result thread delivers them, in any order."""
    import threading

    pending = []

    def apply_async(fn, args, callback, error_callback):
        pending.append((fn(*args), callback, error_callback))

    def deliver(fail_at=None):
        for i, (value, callback, error_callback) in enumerate(reversed(pending)):   # out of order
            if i == fail_at:
                error_callback(ValueError("worker raised"))
            else:
                callback(value)

    def run(fail_at=None):
        pending.clear()
        out = {}

        def caller():
            try:
                out["got"] = patterns.submit_all_callback(apply_async, b"abcd", 5)
            except RoundFailed as e:
                out["error"] = str(e)

        t = threading.Thread(target=caller)
        t.start()
        while len(pending) < 5:
            threading.Event().wait(0.001)
        assert t.is_alive()                 # waiting: nothing delivered yet
        deliver(fail_at)
        t.join(5)
        assert not t.is_alive()
        return out

    assert run() == {"got": [b"abcd"] * 5}
    assert run(fail_at=2) == {"error": "1 of 5 tasks failed: ValueError('worker raised')"}


def test_a_clients_window_ends_past_its_soft_end_only_once_every_client_has_run():
    """rpc and contention: past the soft end the parent stops the clients once they have min_ops together
    and every client has finished a sample; the hard deadline and the cap end it regardless."""
    from ipcbench.measure.patterns import clients_window_ends

    soft, hard, cap, least = 5_000_000, 2_000_000_000, 300, 3
    assert not clients_window_ends(4_999_999, soft, hard, [50, 50], cap, least)        # before the soft end
    assert clients_window_ends(soft, soft, hard, [2, 1], cap, least)                  # both ran, 3 together
    assert not clients_window_ends(soft, soft, hard, [2, 0], cap, least)              # too few together
    assert not clients_window_ends(40_000_000, soft, hard, [120, 0], cap, least)      # client 2 never ran
    assert clients_window_ends(hard, soft, hard, [120, 0], cap, least)                # ...until the deadline
    assert clients_window_ends(1_000, soft, hard, [300, 0], cap, least)               # or the cap
