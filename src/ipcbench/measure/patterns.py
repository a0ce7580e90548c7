"""The seven patterns: how a round of each is driven, what its clock measures, and the peers it starts.

A pattern is a ``Pattern`` declaration (``PATTERNS`` below): a public name, the driver that runs one round
inside the orchestrator process, ``driver(rnd, mechanism) -> RoundResult``, and the makers it needs from a
mechanism (``needs``). Mechanisms (``ipcbench.measure.mechanisms``) are declarations too: they provide
makers (a channel, a proxy, a lock, a dispatch style) and name the patterns they support; a mechanism
that lacks a maker a pattern needs cannot declare that pattern. The timing code lives only here, so every
mechanism is measured the same way; the drivers call the mechanism's makers outside the clock.

========== ============================ =============================================================
pattern    needs                        driver
========== ============================ =============================================================
roundtrip  ``make_channel``             ``roundtrip``: ping-pong with ``echo_peer``
stream     ``make_channel``             ``stream``: one ``producer_peer`` -> this process
fanin      ``make_channel``             ``fanin``: N ``producer_peer`` -> this process
rpc        ``make_proxy``               ``rpc``: N ``rpc_client`` processes
contention ``make_lock``                ``contention``: N ``lock_client`` processes
dispatch   ``dispatch`` (a style)       ``dispatch``: ``DISPATCH_STYLES`` (apply, batches, a window)
startup    nothing                      ``startup``: ``started_child`` per ``Process.start()``
========== ============================ =============================================================

The peers and helpers have public names because the session forms (``session_ops.py``, the
pytest-benchmark front end) start the very same peers: ``echo_peer``, ``start_producers``,
``rpc_client``, ``lock_client``, ``warm_pool``, ``echo_task``, ``task_done``/``task_failed``,
``started_child``, ``check_echo``, ``in_flight_window``, ``window_submitter``, ``batch_call``.

Adding a mechanism touches nothing here: it is one module under ``mechanisms/`` that declares its makers
and the names of the patterns above it supports, plus its test (``mechanisms/__init__.py`` says how).
Adding a pattern means a driver here, an entry in ``PATTERNS`` (and in ``plan.cases.PATTERNS``), and its
session form in ``session_ops.SESSION_FORMS``; a new kind of maker is a new field of ``Mechanism``.

The unit of work ("op") per pattern, which ``throughput_msgs`` counts and ``cpu_per_msg`` divides by:

============ ========================================================= ==============
pattern      one op (timed from ... to ...)                            payload bytes
============ ========================================================= ==============
roundtrip    parent sends payload -> echo peer sends it back -> parent  2 x size
             has received it
stream       producer calls send -> consumer's recv returns it (one-way 1 x size
             latency on the shared monotonic clock)
fanin        as stream, with N producers on one channel                1 x size
rpc          client calls ``proxy[key]`` -> value returned to client     1 x size
dispatch     task submitted -> its (echoed) result is back in the parent 2 x size
             (map, imap, executor map and the submit-all forms: one op
             is one task, one latency sample one call or batch of K
             tasks, K and chunksize in ``params``)
startup      ``Process.start()`` -> child has run its first line          1 x size (arg)
contention   ``lock.acquire()`` + ``lock.release()`` in one of N procs    0
============ ========================================================= ==============

Throughput is counted at delivery: for stream and fanin, messages received by the consumer between its
first and last timed receipt; for the others, ops completed inside the timed window.
Warm-up happens before the clock; processes, managers and pools are started before warm-up.
"""

from __future__ import annotations

import os
import queue as queue_mod
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from statistics import median
from time import perf_counter_ns
from typing import Protocol

from .channels import UNSTAMPED, buffered_messages
from .child import light_main, started_child
from .harness import Round, RoundFailed, RoundResult
from .payloads import make_payload, payload_size


class Makers(Protocol):
    """What a driver reads from a mechanism: its declared makers (``mechanisms.Mechanism`` provides them;
    a maker the mechanism lacks is None, and then it cannot declare a pattern that needs it)."""

    make_channel: Callable | None
    make_proxy: Callable | None
    make_lock: Callable | None
    dispatch: str | None


def _deadlines(spec, t_go: int) -> tuple[int, int]:
    return t_go + int(spec.budget_s * 1e9), t_go + int(spec.max_window_s * 1e9)


def check_echo(obj, size: int) -> None:
    if obj is None or payload_size(obj) != size:
        got = "None" if obj is None else f"{payload_size(obj)} bytes"
        raise RoundFailed(f"echo returned {got}, expected {size} bytes")


# --------------------------------------------------------------------------------------------------
# roundtrip
# --------------------------------------------------------------------------------------------------
def echo_peer(end) -> None:
    """The roundtrip peer: send back every message until ``None``."""
    recv, send = end.recv, end.send
    while True:
        msg = recv()
        if msg is None:
            return
        send(msg)


def roundtrip(rnd: Round, mech: Makers) -> RoundResult:
    """Ping-pong: time each single round trip with perf_counter_ns around ``send`` + ``recv``."""
    spec, size = rnd.spec, rnd.case.payload_bytes
    parent, child = mech.make_channel(rnd, bounded=False)
    rnd.start_peer(echo_peer, child, name="echo")
    payload = rnd.payload
    send, recv = parent.send, parent.recv

    def one():
        send(payload)
        check_echo(recv(), size)

    rnd.warmup(one)
    samples: list[int] = []
    append, clock = samples.append, perf_counter_ns
    cpu0 = rnd.cpu_snapshot()
    t_go = clock()
    soft, hard = _deadlines(spec, t_go)
    n, t1, reply = 0, t_go, payload
    while True:
        t0 = clock()
        send(payload)
        reply = recv()
        t1 = clock()
        append(t1 - t0)
        n += 1
        if n >= spec.max_messages or t1 >= hard or (t1 >= soft and n >= spec.min_messages):
            break
    cpu1 = rnd.cpu_snapshot()
    check_echo(reply, size)
    placement = rnd.placement()
    rnd.stopping()
    send(None)
    return RoundResult(samples, ops=n, window_ns=t1 - t_go, bytes_per_op=2 * size,
                       cpu_s=rnd.cpu_delta(cpu0, cpu1), placement=placement)


# --------------------------------------------------------------------------------------------------
# stream and fanin (one consumer = the orchestrator; producers are peers)
# --------------------------------------------------------------------------------------------------
# Why a peer waited in vain for the go: with hundreds of workers on a few CPUs, starting and placing them
# all can take longer than the round's timeout (600 queue fan-in producers on 2 vCPUs did).
NO_GO_HINT = ("the round was still starting its other peers, or hung: with many workers, fewer of them or "
              "a longer --timeout")


def _wait_flag(flag, timeout: float) -> None:
    """Peers wait for the stop flag before exiting, so an early exit always means trouble."""
    deadline = time.monotonic() + timeout
    while not flag.value and time.monotonic() < deadline:
        time.sleep(0.005)


def producer_peer(end, kind, size, index, tagged, warmup, go, stop, result_conn, max_messages, timeout,
                  fill_first=False, stride=1, pace=None, counting=None):
    """The stream/fanin peer: ``warmup`` messages, then on ``go`` send (stamping the send time of every
    ``stride``-th message, from the first; every message where a warm-up send took ``STRIDE_BELOW_NS`` or
    more, since a stamp then costs next to nothing) until ``stop`` or ``max_messages``; then ``None``, and
    the stride and the send times on ``result_conn``. With ``counting`` (a shared flag the consumer raises
    when its counted window opens) only the messages sent after the flag count towards ``max_messages``:
    the window opens ``warmup_min_s`` after the go, and a fast channel must not have run out by then. With
    ``fill_first`` (an unbounded queue) it puts all ``max_messages`` without looking at ``stop``, says so
    with one byte on ``result_conn``, then puts ``None``. With ``pace`` (``Pace``: stream) it then waits
    for the paced phase and sends on its schedule (``paced_send``). A fan-in's messages are tagged
    ``(index, payload)`` where the send was stamped and ``(index + UNSTAMPED, payload)`` where not (the
    warm-up's too), so that the consumer reads the clock for the stamped ones only (``tagged_window``)."""
    payload = make_payload(kind, size)
    msg = (index, payload) if tagged else payload
    plain = (index + UNSTAMPED, payload) if tagged else msg     # a fan-in's messages sent without a stamp
    send = end.send
    costs, t0 = [], perf_counter_ns()
    for _ in range(warmup):
        send(plain)
        t1 = perf_counter_ns()
        costs.append(t1 - t0)
        t0 = t1
    if costs and median(costs) >= STRIDE_BELOW_NS:
        stride = 1
    if stride == 1:
        plain = msg
    if not go.wait(timeout):
        raise TimeoutError(f"producer: no start signal from the consumer within {timeout:g} s ({NO_GO_HINT})")
    sent = array("q", [stride])            # the stride first, then the stamps
    append, clock = sent.append, perf_counter_ns
    n = 0
    if fill_first:
        for i in range(max_messages):
            if i % stride == 0:
                append(clock())
                send(msg)
            else:
                send(plain)
        result_conn.send_bytes(FILLED)
    elif stride == 1:
        while n < max_messages and not stop.value:
            append(clock())
            send(msg)
            if counting is None or counting.value:
                n += 1
    else:
        rest = range(stride - 1)
        while n + stride <= max_messages and not stop.value:
            append(clock())
            send(msg)
            for _ in rest:
                send(plain)
            if counting is None or counting.value:
                n += stride
    send(None)
    result_conn.send_bytes(sent.tobytes())
    if pace is not None:
        paced_send(send, msg, pace, result_conn, timeout)
    result_conn.close()
    _wait_flag(stop, timeout)


# -- the paced phase of a stream: a one-way latency, open loop ----------------------------------------------
# After its saturated window, a stream round measures a true one-way latency: the producer sends on a fixed
# schedule at PACE_FRACTION of the rate the window delivered (open loop: the schedule never waits for the
# consumer), and a sample is receipt - the message's *scheduled* send time, so a stall delays every message
# behind it and is counted (no coordinated omission). It lasts PACED_SHARE of budget_s, at least
# PACED_MIN messages. At a tenth of the load a message mostly travels alone: at half, a Queue's producer
# (its main thread putting and its feeder thread sending, on one CPU) fell behind an 8 B schedule and
# latencies grew to milliseconds. The producer reports how many messages it sent more than one interval
# late (``params.paced_late``): a schedule it did not keep is no open-loop figure.
PACE_FRACTION = 0.1
PACED_SHARE = 0.5
PACED_MIN = 5


class Pace:
    """The paced phase's controls, made by the consumer before the producer starts: ``go`` (an Event),
    ``interval_ns`` and ``count`` (shared values the consumer sets before ``go``)."""

    def __init__(self, ctx):
        self.go = ctx.Event()
        self.interval_ns = ctx.RawValue("q", 0)
        self.count = ctx.RawValue("q", 0)


def paced_send(send, msg, pace: Pace, result_conn, timeout: float) -> None:
    """Send ``pace.count`` messages at ``pace.interval_ns`` apart from a start time ``t0``, then ``None``
    and ``t0`` on ``result_conn``. Waiting releases the GIL (``time.sleep``), so a queue's feeder thread or
    a thread consumer runs meanwhile."""
    if not pace.go.wait(timeout):
        raise TimeoutError("producer: no start signal for the paced phase")
    interval, count = pace.interval_ns.value, pace.count.value
    clock, sleep, yield_cpu = perf_counter_ns, time.sleep, os.sched_yield
    t0 = clock() + 1_000_000             # 1 ms from now: the first message is on schedule too
    late = 0
    for k in range(count):
        due = t0 + k * interval
        while True:
            left = due - clock()
            if left <= 0:
                break
            if left > 1_000_000:
                sleep(left / 1e9 - 0.0005)
            else:           # spin, releasing the GIL: time.sleep(0) arms a timer (tens of us on a VM)
                yield_cpu()
        if left < -interval:
            late += 1
        send(msg)
    send(None)
    result_conn.send_bytes(b"%d %d" % (t0, late))


def paced_plan(rate: float, spec) -> tuple[int, int]:
    """``(interval_ns, count)`` of the paced phase after a window that delivered ``rate`` messages/s."""
    interval = max(1, int(1e9 / (PACE_FRACTION * rate)))
    count = int(spec.budget_s * PACED_SHARE * 1e9 / interval)
    most = max(PACED_MIN, int(spec.max_window_s * 1e9 / interval) // 4)
    return interval, max(PACED_MIN, min(count, spec.max_messages, most))


def _paced_phase(rnd: Round, recv, conn, pace: Pace, rate: float) -> dict:
    """The stream's paced phase (the channel drained, the producer waiting on ``pace.go``): its
    ``params``, the round's median one-way latency among them."""
    interval, count = paced_plan(rate, rnd.spec)
    pace.interval_ns.value, pace.count.value = interval, count
    receipts: list[int] = []
    append, clock = receipts.append, perf_counter_ns
    pace.go.set()
    while True:
        msg = recv()
        t = clock()
        if msg is None:
            break
        append(t)
    if not conn.poll(rnd.spec.timeout_s):
        raise RoundFailed("the producer did not report the start of its paced phase")
    t0, late = (int(v) for v in conn.recv_bytes().split())
    lat = paced_samples(receipts, t0, interval)
    if len(lat) != count:
        raise RoundFailed(f"the paced phase delivered {len(lat)} of {count} messages")
    return {"oneway_p50_ns": int(median(lat)), "oneway_max_ns": max(lat), "oneway_messages": count,
            "paced_rate": round(1e9 / interval, 3), "pace_fraction": PACE_FRACTION,
            "paced_late": round(late / count, 4)}


def paced_samples(receipts: list[int], t0: int, interval: int) -> list[int]:
    """One-way latencies of the paced messages: receipt k - (t0 + k x interval)."""
    return [t - (t0 + k * interval) for k, t in enumerate(receipts)]


FILLED = b"F"      # a fill_first producer has put all its messages

# A stream's producer stamps every STAMP_STRIDE-th message of up to STRIDE_BYTES: a clock read and an
# append per message cost a producer 8-12 % of an 8 B Pipe stream (it is the slower side), which the
# consumer's delivered rate showed; latency samples are those messages'.
STAMP_STRIDE = 8
STRIDE_BYTES = 64 * 1024
STRIDE_BELOW_NS = 20_000     # a producer whose median warm-up send took longer stamps every message
# (the median: a channel's first send pays for its set-up, e.g. a Queue's feeder thread starting, and the
# mean of 10 warm-up sends was over 20 us for nearly every stream and fan-in of 8 B .. 64 KiB in a quick
# run of 2026-12-03, so they stamped every message, at the 8-12 % cost the stride is there to avoid)


def stamp_stride(size: int) -> int:
    return STAMP_STRIDE if size <= STRIDE_BYTES else 1


def one_way_samples(times, start: int, sent, stride: int, every: int = 1) -> list[int]:
    """Latency samples of one producer's counted receipts ``times[start:]``: receipt - send time of each
    message stamped on both sides. ``times[r]`` is the receipt of message ``r * every`` (the consumer
    stamps every ``every``-th message, from the first), ``sent[k]`` the send of message ``k * stride``."""
    return [times[r] - sent[r * every // stride] for r in range(start, len(times))
            if (r * every) % stride == 0 and r * every // stride < len(sent)]


def start_producers(rnd: Round, consumer, producer_end, producers: int, tagged: bool, warmup: int, go, stop,
                    per_producer: int, fill_first: bool = False, stride: int = 1, pace: Pace | None = None,
                    counting=None) -> list:
    """Start the producer peers and receive their warm-up messages; return their result connections."""
    case, ctx = rnd.case, rnd.ctx
    result_conns = []
    for i in range(producers):
        r, w = ctx.Pipe(duplex=False)
        result_conns.append(r)
        rnd.start_peer(producer_peer, producer_end, case.payload_kind, case.payload_bytes, i, tagged,
                       warmup, go, stop, w, per_producer, rnd.spec.timeout_s, fill_first, stride, pace,
                       counting, name=f"producer-{i}")
        if rnd.peer_kind != "thread":       # a thread peer shares this very object (and closes it itself)
            w.close()
    recv = consumer.recv
    for _ in range(warmup * producers):
        if recv() is None:
            raise RoundFailed("a producer ended during warm-up")
    return result_conns


# The counted window of stream and fanin starts this fraction of budget_s after the start signal, or
# spec.warmup_min_s if that is later: the channel fills first (a pipe's buffer, a queue's maxsize), and
# messages received while it fills neither move at the steady rate nor wait behind a full backlog; and the
# first tens of milliseconds of a round are not its steady state (an 8 B Pipe stream ran ~10 % slower in
# its first 40 ms, python tools/round_start.py --stream; docs/measurement.md).
STEADY_SKIP = 0.25


def steady_skip_s(spec, fill_first: bool) -> float:
    """Seconds from the start signal to the counted window of a stream or fan-in on a bounded channel (an
    unbounded queue's window opens after its fill instead: 0)."""
    return 0.0 if fill_first else max(spec.budget_s * STEADY_SKIP, spec.warmup_min_s)


# An unbounded queue's producers put references as fast as they can, far ahead of delivery; whatever is
# left when the window closes is drained before the round ends. Per round they put at most this many
# bytes in all (and twice max_messages; at least 4 messages): 8 at 16 MiB, 128 at 1 MiB, a preset's
# 2 x max_messages at 1 KiB. It was 64 MiB: at 1 MiB a fill of 64 messages, whose first half went to the
# drain's warm-up, left a window of ~20-30 messages, and a drain that short read fast in the warm malloc
# state (queue fan-in 1 MiB w2: 1.27x the selfcheck's hand loop, CI 1.03-1.56; a hand loop of ~40
# messages read as fast, one of ~300 did not); with 256 MiB, 1.09 (1.02-1.16), a window of ~65 messages,
# which 128 MiB also leaves after the warm-up's 0.05 s. The cost: a cold 1 MiB drain (~400/s) of 128
# messages takes ~0.3 s a round, most of it drained untimed.
UNBOUNDED_BYTES = 128 * 1024**2

# What a stream/fanin latency sample is: [bounded channel, unbounded queue].
BACKLOG_LATENCY = ("time in the channel behind a full backlog (send call -> receipt)",
                   "time in the queue behind everything the producers put first (send call -> receipt; an "
                   "unbounded queue, filled before the window)")


def steady_start(times: list, t_steady: int) -> tuple[int | None, list[int]]:
    """Where the counted window of a stream or fan-in begins: ``(time of the first receipt at or after
    t_steady, index of each producer's first such receipt)``; ``times[i]`` are producer i's receipt
    times in order. (None, lengths) where nothing arrived after ``t_steady``."""
    import bisect

    starts = [bisect.bisect_left(t, t_steady) for t in times]
    firsts = [t[k] for t, k in zip(times, starts) if k < len(t)]
    return (min(firsts) if firsts else None), starts


def counted_window(times: list, t_steady: int, exhausted: bool, need: int = 2, every: int = 1
                   ) -> tuple[int | None, list[int], bool]:
    """``steady_start``, except where the producers sent all their ``max_messages`` so fast that fewer
    than ``need`` receipts came after ``t_steady`` (a fast channel, a small budget; ``need`` is twice the
    stamp stride, so that the window holds a stamped message): then the first ``STEADY_SKIP`` of the
    messages received are skipped instead. Returns ``(first, starts, whole)``; ``whole`` says the second
    rule was used (the round's CPU window then spans the whole stream). ``times`` holds the receipts of
    every ``every``-th message; ``need`` counts messages."""
    first, starts = steady_start(times, t_steady)
    after = sum(len(t) - k for t, k in zip(times, starts)) * every
    if not exhausted or after >= need:
        return first, starts, False
    received = sorted(t for ts in times for t in ts)
    if not received:
        return None, starts, True
    first, starts = steady_start(times, received[int(len(received) * STEADY_SKIP)])
    return first, starts, True


def _wait_filled(conns: list, timeout: float) -> None:
    """Wait for every fill_first producer's FILLED byte."""
    deadline = time.monotonic() + timeout
    for conn in conns:
        if not conn.poll(max(0.0, deadline - time.monotonic())):
            raise RoundFailed(f"the producers did not finish putting their messages within {timeout:g} s")
        if conn.recv_bytes() != FILLED:
            raise RoundFailed("a producer sent something other than its 'filled' mark")


def _receive_prefix(recv, n: int, times: list, tagged: bool, producers: int, ended: int = 0,
                    seconds: float | None = None, every: int = 1, received: int = 0,
                    marks: list | None = None) -> tuple[int, int]:
    """Receive up to ``n`` messages before the window (their receipt times kept in ``times``, since send
    stamps are matched to receipts by position), or, with ``seconds``, only until that long has passed
    (looked at when a receipt is stamped); returns ``(producers ended by now, messages received)``.
    Untagged, only every ``every``-th message's receipt is stamped, counting the ``received`` before;
    tagged, the messages their producer stamped (tag below ``UNSTAMPED``), with the message's number
    (``received`` + its place here, from 1) in ``marks``."""
    clock = perf_counter_ns
    stop = None if seconds is None else clock() + int(seconds * 1e9)
    got = 0
    while got < n and ended < producers:
        msg = recv()
        if msg is None:
            ended += 1
            continue
        got += 1
        if tagged:
            tag = msg[0]
            if tag >= UNSTAMPED:
                continue
            t = clock()
            times[tag].append(t)
            marks[tag].append(received + got)
        elif (received + got - 1) % every == 0:
            t = clock()
            times[0].append(t)
        else:
            continue
        if stop is not None and t >= stop:
            break
    return ended, got


def _one_way(rnd: Round, mech: Makers, producers: int, tagged: bool) -> RoundResult:
    """One consumer (this process) and N producer peers on one channel. The producers send from the start
    signal; the counted window starts ``steady_skip_s`` later (``STEADY_SKIP`` x ``budget_s`` or
    ``warmup_min_s``, the later), at the first receipt after the channel has filled, and runs ``budget_s``
    from there (with ``min_messages`` counted; the producers count their ``max_messages`` from there); where the
    producers send all ``max_messages`` before two receipts came after that, it starts after the first
    ``STEADY_SKIP`` of the messages instead (``counted_window``). CPU is read at that first counted
    receipt and at the last (in the second case, from the start signal). Latency samples are of the
    counted messages: send call -> receipt, i.e. the time a message spends in the channel behind a full
    backlog (``params.latency_is``).

    An unbounded queue (the maker records ``maxsize`` 0) is filled first: each producer puts all its
    messages (at most ``UNBOUNDED_BYTES``) and says so; the consumer then receives the messages the
    queue's pipe holds (``channels.buffered_messages``: 64 KiB of them, which come out faster than the
    steady drain), and the window starts at the next receipt. While a producer's main thread is putting,
    the queue's feeder thread in the same process hardly gets the GIL (8 B: ~100-1,300 of 40,000 messages
    delivered in the 45 ms of puts, then 176k/s: ``tools/queue_maxsize.py``), so a window that overlaps
    the puts measures a mixture of two rates; a user's consumer loop, like the selfcheck's, times the
    drain."""
    spec, case = rnd.spec, rnd.case
    if tagged and producers > UNSTAMPED:
        raise RoundFailed(f"a fan-in takes at most {UNSTAMPED} producers (its messages' tags), not {producers}")
    ctx = rnd.ctx
    consumer, producer_end = mech.make_channel(rnd, bounded=True)
    go, stop = ctx.Event(), ctx.RawValue("b", 0)
    warmup = max(1, spec.warmup)
    per_producer = max(1, spec.max_messages // producers)
    fill_first = rnd.channel_params.get("maxsize") == 0     # an unbounded queue: what is put must be drained
    if fill_first:
        # twice max_messages: the drain's first warmup_min_s takes up to half of them, untimed
        per_producer = min(2 * per_producer if spec.warmup_min_s else per_producer,
                           max(4, UNBOUNDED_BYTES // max(1, case.payload_bytes * producers)))
    # at least ~64 stamps a producer: the smoke preset's streams of 96-192 messages stamp every 1-3rd, so
    # that a short counted window still holds two stamped receipts; quick's and full's keep the stride
    stride = min(stamp_stride(case.payload_bytes), max(1, per_producer // 64))
    pace = Pace(ctx) if producers == 1 and not tagged else None      # stream: the paced phase follows
    counting = None if fill_first else ctx.RawValue("b", 0)        # raised when the counted window opens
    result_conns = start_producers(rnd, consumer, producer_end, producers, tagged, warmup, go, stop, per_producer,
                                   fill_first, stride, pace, counting)
    recv = consumer.recv
    # A stream's consumer stamps the receipt of every ``every``-th message only (the producer's stride):
    # a clock read, an append and the window's checks per message cost a consumer-bound drain (8 B,
    # JoinableQueue) ~8 %, and made a feeder-bound one (Queue) wait less and read faster
    # (tools/drain_stamping.py, docs/measurement.md). A fan-in's consumer stamps the messages their
    # producer stamped, which say so in their tag (``tagged_window``), and numbers them (``marks``) to
    # count the window: the consumer does per message what a user's loop does, give or take a compare
    # (stamping every receipt cost an 8 B Queue() fan-in drain ~7 % in one run of
    # tools/fanin_probe.py stamping, nothing measurable in two others).
    every = 1 if tagged else stride
    times = [array("q") for _ in range(producers)]
    marks = [array("q") for _ in range(producers)]          # tagged: the number of each stamped receipt
    ended = 0                      # producers whose sentinel has arrived
    clock = perf_counter_ns
    buffered = drained = 0
    if fill_first:
        go.set()
        _wait_filled(result_conns, spec.timeout_s)
        # The queue's pipe is full by now (the feeder threads kept writing): its messages come out at the
        # consumer's own pace, ~2x the steady drain (8 B: the first 5,000 of a drain at 290-440k/s, the
        # rest at 200-300k/s, tools/queue_drain_chunks.py), a boost a 60 ms window would count. The window
        # opens after them, and after the drain's first warmup_min_s (up to half of what is left): a drain of
        # 20,000 8 B messages timed from there read 1.18-1.22x the selfcheck's hand loop, which drains ~90,000;
        # with it 1.04 (docs/measurement.md).
        buffered = buffered_messages(consumer, (0, rnd.payload) if tagged else rnd.payload)
        ended, buffered = _receive_prefix(recv, buffered, times, tagged, producers, every=every, marks=marks)
        if spec.warmup_min_s:
            left = per_producer * producers - buffered
            ended, drained = _receive_prefix(recv, left // 2, times, tagged, producers, ended, spec.warmup_min_s,
                                             every, buffered, marks)
    cpu_go = rnd.cpu_snapshot()    # for a round whose producers reach max_messages before the window opens
    t_go = clock()
    skip_s = steady_skip_s(spec, fill_first)
    t_steady = t_go + int(skip_s * 1e9)
    soft, hard = t_steady + int(spec.budget_s * 1e9), t_go + int(spec.max_window_s * 1e9)
    min_messages = spec.min_messages
    go.set()
    # Two copies of one loop: the untagged one (stream) saves a lookup per message on the consumer's side.
    opened: dict = {}

    def on_open() -> None:
        opened["cpu0"] = rnd.cpu_snapshot()         # once, at the first counted receipt
        if counting is not None:
            counting.value = 1

    if ended == producers:
        pass                        # every producer ended while the pipe's messages were received
    elif tagged:
        ended, _ = tagged_window(recv, clock, times, marks, producers, ended, t_steady, soft, hard,
                                 min_messages, on_open, buffered + drained)
    else:
        skip = (-(buffered + drained)) % every      # messages to receive before the next stamped one
        ended, _ = stream_window(recv, clock, times[0], skip, every, t_steady, soft, hard, min_messages,
                                 on_open)
    cpu0 = opened.get("cpu0")
    cpu1 = rnd.cpu_snapshot()
    exhausted = ended > 0           # a producer sent all its messages before the window closed
    rnd.stopping()                  # before the flag: a producer may see it and exit at once
    stop.value = 1
    placement = rnd.placement()
    while ended < producers:        # drain before the paced phase or the join: producers block on a full channel
        if recv() is None:
            ended += 1
    sents = []
    for conn in result_conns:       # each producer's stamp stride, then its send times
        sent = array("q")
        sent.frombytes(conn.recv_bytes())
        sents.append(sent)
    strides = [sent[0] for sent in sents]
    # tagged, times[i] holds producer i's stamped messages only, one receipt per stamp, in order
    spacing = max(strides) if tagged else every
    first, starts, whole = counted_window(times, t_steady, exhausted, need=max(2, 2 * max(strides), 2 * every),
                                          every=spacing)
    if whole:
        cpu0 = cpu_go               # the CPU window then spans the whole stream, a little more than counted
    samples: list[int] = []
    for i, sent in enumerate(sents):
        if tagged:
            samples.extend(one_way_samples(times[i], starts[i], sent[1:], 1))
        else:
            samples.extend(one_way_samples(times[i], starts[i], sent[1:], sent[0], every))
    count = sum(len(t) - k for t, k in zip(times, starts))     # counted (stamped) receipts
    if count < 2 or first is None:
        raise RoundFailed(f"only {count} stamped message(s) delivered in the counted window (after the first "
                          f"{skip_s * 1e3:.0f} ms, while the channel fills; every {spacing}th is stamped)")
    if not samples:
        raise RoundFailed(f"none of the {count} messages of the counted window was stamped (every {max(strides)}th is)")
    last = max(t[-1] for t in times if t)
    if tagged:      # the messages received after the first counted stamped receipt, up to the last
        ops = window_messages(marks, starts)
    else:           # (count - 1) x every messages arrived after the first counted receipt
        ops = (count - 1) * every
    params: dict = {}
    if pace is not None:            # the paced phase, after the CPU window: the channel is drained
        params = _paced_phase(rnd, recv, result_conns[0], pace, ops * 1e9 / max(1, last - first))
    params = {**params, "latency_is": BACKLOG_LATENCY[fill_first],
              "steady_after_ms": round(skip_s * 1e3, 3), "stamped_every": max(strides),
              "receipts_stamped_every": every if not tagged else "the producers' stamped messages",
              **rnd.channel_params}
    if fill_first:
        params["window_starts"] = ("after the producers have put all their messages, the messages the "
                                   "queue's pipe held then were received, and the drain's first warmup_min_s")
        params["buffered_skipped"] = buffered
        params["drain_warmup_skipped"] = drained
    return RoundResult(samples, ops=ops, window_ns=last - first, bytes_per_op=case.payload_bytes,
                       cpu_s=rnd.cpu_delta(cpu0, cpu1), placement=placement, params=params)


def stream_window(recv, clock, times, skip: int, every: int, t_steady: int, soft: int, hard: int,
                  min_messages: int, on_open: Callable[[], None]) -> tuple[int, int]:
    """The consumer's loop of a stream: receive messages, appending the receipt time of every ``every``-th
    (after ``skip`` more) to ``times``, until the sentinel, ``hard``, or ``soft`` with ``min_messages``
    counted after the first counted receipt (the delivered rate counts those: a window that ended at its
    first receipt, the consumer having stalled past ``soft``, would count none). ``on_open()`` runs at the
    first receipt at or after ``t_steady``. Returns ``(producers ended (0 or 1), messages counted)``."""
    counted = 0
    append = times.append
    last_skip = every - 1
    while True:
        msg = recv()
        if msg is None:
            return 1, counted
        if skip:
            skip -= 1
            continue
        skip = last_skip
        t = clock()
        append(t)
        if t >= t_steady:
            if not counted:
                on_open()
            counted += every
            if t >= hard or (t >= soft and counted - every >= min_messages):
                return 0, counted
        elif t >= hard:
            return 0, counted


def tagged_window(recv, clock, times: list, marks: list, producers: int, ended: int, t_steady: int, soft: int,
                  hard: int, min_messages: int, on_open: Callable[[], None], received: int = 0) -> tuple[int, int]:
    """The consumer's loop of a fan-in: receive tagged messages ``(tag, payload)``; for a message its
    producer stamped (``tag`` is the producer's index; ``index + UNSTAMPED`` where not) keep its receipt
    time in ``times[index]`` and its number (``received`` before this loop, counted on from 1) in
    ``marks[index]``. Until ``hard``, or ``soft`` with ``min_messages`` received after the first counted
    stamped receipt (at or after ``t_steady``; the window closes at a stamped receipt), or the producers'
    sentinels: all of them, or, once the window has opened, the first (see ``fanin``). ``on_open()``
    runs at the first counted receipt. Returns ``(producers ended, messages received after the first
    counted receipt)``."""
    appends = [t.append for t in times]         # bound once: no attribute lookup per message
    numbers = [m.append for m in marks]
    n = received
    opened = 0                                  # the number of the first counted receipt
    while True:
        msg = recv()
        if msg is None:
            ended += 1
            if ended == producers or (producers > 1 and (opened or clock() >= t_steady)):
                break
            continue
        n += 1
        tag = msg[0]
        if tag >= UNSTAMPED:
            continue
        t = clock()
        appends[tag](t)
        numbers[tag](n)
        if t >= t_steady:
            if not opened:
                opened = n
                on_open()
            if t >= hard or (t >= soft and n - opened >= min_messages):
                break
        elif t >= hard:
            break
    return ended, (n - opened if opened else 0)


def window_messages(marks: list, starts: list[int]) -> int:
    """A fan-in window's count: the messages received after its first counted stamped receipt up to its
    last, from the receipts' numbers (``marks[i]``, parallel to producer i's ``times``; ``starts[i]`` its
    first counted receipt). Numbers rise with receipt order, as times do."""
    n_first = min(m[k] for m, k in zip(marks, starts) if k < len(m))
    n_last = max(m[-1] for m in marks if m)
    return n_last - n_first


def stream(rnd: Round, mech: Makers) -> RoundResult:
    """One producer streams to the consumer; latency per message is one-way (send call -> recv return)."""
    return _one_way(rnd, mech, producers=1, tagged=False)


def fanin(rnd: Round, mech: Makers) -> RoundResult:
    """N = workers producers share one channel to one consumer; messages are tagged (producer, payload).

    The counted window ends at the first producer's end (its sentinel) if that comes first, not the last:
    after it fewer producers share the channel, and the rest of the drain is another exchange. On an
    unbounded queue at 1 MiB (a fill of 64 messages, a window of the last ~31) in the warm malloc state,
    the drain's tail with one producer left ran 2-3 times the two-producer rate, and the window read 1.22x
    (1.11-1.34) the selfcheck's hand loop, whose producers all still send when its N-th message arrives."""
    return _one_way(rnd, mech, producers=rnd.case.workers, tagged=True)


# --------------------------------------------------------------------------------------------------
# rpc and contention: N client processes each time their own ops; the parent opens and closes the window
# --------------------------------------------------------------------------------------------------
# Client protocol on result_conn: b"ready" after warm-up, then (after the round) start and end times.
def _send_client_times(result_conn, starts, ends, stop, timeout) -> None:
    result_conn.send_bytes(starts.tobytes())
    result_conn.send_bytes(ends.tobytes())
    result_conn.close()
    _wait_flag(stop, timeout)


# The two client loops are written out rather than sharing an ``op()`` callback: an extra Python call
# per op would be timed too, and is a sizeable part of an uncontended lock cycle.
# Each client's counter has a cache line of its own (``COUNT_STRIDE`` 8-byte slots = 128 bytes, two lines
# for adjacent-line prefetch): a client writes its slot on every op, the parent reads them every 10 ms.
COUNT_STRIDE = 16


def rpc_client(proxy, key, warmup, go, stop, counts, index, result_conn, max_ops, timeout):
    """The rpc peer: ``proxy[key]`` in a loop, stamping each call; ``counts[index]`` (a slot of its own
    cache line) = calls so far. Its very first call (the proxy connects to the server and authenticates)
    is timed on its own and sent with ``ready``."""
    get = proxy.__getitem__
    t0 = perf_counter_ns()
    get(key)
    first = perf_counter_ns() - t0
    for _ in range(warmup):
        get(key)
    result_conn.send_bytes(b"ready:%d" % first)
    if not go.wait(timeout):
        raise TimeoutError(f"client: no start signal within {timeout:g} s ({NO_GO_HINT})")
    starts, ends = array("q"), array("q")
    s_append, e_append, clock = starts.append, ends.append, perf_counter_ns
    n = 0
    while n < max_ops and not stop.value:
        t0 = clock()
        get(key)
        t1 = clock()
        s_append(t0)
        e_append(t1)
        n += 1
        counts[index] = n
    _send_client_times(result_conn, starts, ends, stop, timeout)


# Cycles of acquire + release a contention client times as one sample. One cycle of an uncontended
# multiprocessing.Lock takes ~0.04 us here, two contending clients ~0.2 us a cycle between them, and their
# rate moves with any other work between cycles (why, in the kernel's hand-offs, is not worked out):
# stamping every cycle, or every 32, made the pair 1.2-1.7x as fast as the user's plain loop while both
# ran; every 1,024, as fast (tools/lock_tail.py, docs/measurement.md "Contention"). A batch's sample is
# its time / LOCK_BATCH.
LOCK_BATCH = 1024


def lock_client(lock, warmup, go, stop, counts, index, result_conn, max_ops, timeout):
    """The contention peer: acquire + release in a loop, stamping each batch of ``LOCK_BATCH`` cycles;
    ``counts[index]`` (a slot of its own cache line) = cycles."""
    acquire, release = lock.acquire, lock.release
    for _ in range(warmup):
        acquire()
        release()
    result_conn.send_bytes(b"ready")
    if not go.wait(timeout):
        raise TimeoutError(f"client: no start signal within {timeout:g} s ({NO_GO_HINT})")
    starts, ends = array("q"), array("q")
    s_append, e_append, clock = starts.append, ends.append, perf_counter_ns
    n = 0
    batch = range(LOCK_BATCH)
    while n < max_ops and not stop.value:
        t0 = clock()
        for _ in batch:
            acquire()
            release()
        t1 = clock()
        s_append(t0)
        e_append(t1)
        n += LOCK_BATCH
        counts[index] = n
    _send_client_times(result_conn, starts, ends, stop, timeout)


def counted_end(client_times, t_stop: int) -> int:
    """Where the counted window of ``counted_ops`` ends: the stop, or the last op of a client that ended
    before it. A client still running at the stop records the op (or batch) it was in after the stop, so
    only a client that stopped early (its cap, ``max_ops``) ends before it."""
    ended = [ends[-1] for _, ends in client_times if len(ends)]
    return min([t_stop, *ended])


def cpu_omitted(client_times, t_stop: int) -> str | None:
    """Why the CPU read at the stop is not the CPU of the counted ops, or None: a client stopped (its cap)
    before the stop while others ran on, uncounted (``counted_end``)."""
    t_end = counted_end(client_times, t_stop)
    last = max((ends[-1] for _, ends in client_times if len(ends)), default=t_end)
    if t_end < t_stop and last > t_end:
        return (f"a client stopped on its cap {(t_stop - t_end) / 1e6:.1f} ms before the stop; the CPU read "
                "there holds the others' uncounted ops")
    return None


def counted_ops(client_times, t_stop: int, per_sample: int = 1) -> tuple[list[int], int, int]:
    """The ops of all clients that ended while every client was still running: ``(latency samples, ops,
    end of the last one)``. ``client_times`` holds each client's ``(starts, ends)``, one pair per
    ``per_sample`` ops (a sample is then the pair's time / ``per_sample``). The counted window ends at the
    stop, or earlier at the last op of a client that stopped before it (its safety cap, ``max_ops``): from
    there the others would run with one contender fewer (an uncontended lock cycle is ~5x a contended one
    here). An op still running then is not counted, and the window ends at the last counted op, not at the
    parent's poll."""
    t_end = counted_end(client_times, t_stop)
    samples: list[int] = []
    last = 0
    for starts, ends in client_times:
        for t0, t1 in zip(starts, ends):
            if t1 > t_end:
                break               # a client's ops are in time order
            samples.append((t1 - t0) // per_sample)
            last = max(last, t1)
    return samples, len(samples) * per_sample, last


def clients_window_ends(now: int, soft: int, hard: int, counts: list[int], cap: int, min_ops: int) -> bool:
    """Whether the parent of ``_clients`` stops the clients at this poll: at the hard deadline; when their
    ops together reach ``cap``; or past the soft end once they have ``min_ops`` together *and every client
    has finished at least one sample*, so that a window of N clients always held N at work (on 2 vCPUs a
    client could still be waiting for a CPU when a 5 ms window ended: a "2-client" round of one)."""
    done = sum(counts)
    if now >= hard or done >= cap:
        return True
    return now >= soft and done >= min_ops and all(counts)


def _clients(rnd: Round, client, targets: list, bytes_per_op: int, per_sample: int = 1) -> RoundResult:
    """Run one client process per target argument tuple, all started on one ``go`` and all stopped by one
    flag. ``max_messages`` samples (each ``per_sample`` ops) cap their sum, checked by the parent every
    poll, and each client's own count, a safety net: where a client stops on it first, the counted window
    ends at its last op (``counted_ops``), so the others never count ops run with fewer contenders. Ops
    that end by the stop count; the window runs from ``go`` to the end of the last counted op; CPU is read
    at the stop, before the flag is set (the counted ops end within one op of it). Where a client stopped
    on its cap first while others ran on, the CPU read at the stop also holds their uncounted ops: the
    round then reports no CPU (``params.cpu_omitted``) rather than a CPU per op of other ops (one client
    alone that stops on its cap waits for the stop, idle)."""
    spec, ctx = rnd.spec, rnd.ctx
    n = len(targets)
    go, stop = ctx.Event(), ctx.RawValue("b", 0)
    counts = ctx.RawArray("q", n * COUNT_STRIDE)
    conns = []
    for i, args in enumerate(targets):
        r, w = ctx.Pipe(duplex=False)
        conns.append(r)
        rnd.start_peer(client, *args, max(1, spec.warmup), go, stop, counts, i * COUNT_STRIDE, w,
                       spec.max_messages * per_sample, spec.timeout_s, name=f"client-{i}")
        w.close()
    first_calls = []
    for conn in conns:              # every client started and warmed up: start-up stays off the clock
        ready = conn.recv_bytes()
        if ready.startswith(b"ready:"):          # an rpc client's first call on its fresh proxy
            first_calls.append(int(ready[6:]))
    slots = range(0, n * COUNT_STRIDE, COUNT_STRIDE)
    cpu0 = rnd.cpu_snapshot()
    t_go = perf_counter_ns()
    soft, hard = _deadlines(spec, t_go)
    go.set()
    cap = spec.max_messages * per_sample
    while True:
        time.sleep(min(0.01, spec.budget_s / 10))
        now = perf_counter_ns()
        if clients_window_ends(now, soft, hard, [counts[i] for i in slots], cap, spec.min_messages):
            break
    t_stop = perf_counter_ns()
    cpu1 = rnd.cpu_snapshot()
    rnd.stopping()                  # before the flag: a client may see it and exit at once
    stop.value = 1
    placement = rnd.placement()
    client_times = []
    for conn in conns:
        starts, ends = array("q"), array("q")
        starts.frombytes(conn.recv_bytes())
        ends.frombytes(conn.recv_bytes())
        client_times.append((starts, ends))
    samples, ops, last = counted_ops(client_times, t_stop, per_sample)
    if ops == 0:
        raise RoundFailed("no operation completed in the timed window")
    params = {"first_call_ns": first_calls} if first_calls else {}
    cpu_s = rnd.cpu_delta(cpu0, cpu1)
    omitted = cpu_omitted(client_times, t_stop)
    if omitted:
        cpu_s = None
        params["cpu_omitted"] = omitted
    if per_sample > 1:
        params["latency_is"] = f"acquire + release, the mean of a batch of {per_sample} cycles by one client"
        params["cycles_per_sample"] = per_sample
    return RoundResult(samples, ops=ops, window_ns=last - t_go, bytes_per_op=bytes_per_op,
                       cpu_s=cpu_s, placement=placement, params=params or None)


def rpc(rnd: Round, mech: Makers) -> RoundResult:
    """N clients read ``proxy[key]`` (each its own key, holding the payload) from a Manager's server."""
    n = rnd.case.workers
    proxy = mech.make_proxy(rnd.manager(), rnd.payload, n)
    keys = list(range(n))
    return _clients(rnd, rpc_client, [(proxy, k) for k in keys], bytes_per_op=rnd.case.payload_bytes)


def contention(rnd: Round, mech: Makers) -> RoundResult:
    """N processes acquire and release one lock as fast as they can; latency is per acquire+release."""
    lock = mech.make_lock(rnd.ctx)
    return _clients(rnd, lock_client, [(lock,)] * rnd.case.workers, bytes_per_op=0, per_sample=LOCK_BATCH)


# --------------------------------------------------------------------------------------------------
# dispatch (Pool)
# --------------------------------------------------------------------------------------------------
def echo_task(payload):
    """The Pool task: return the payload, so it crosses the process boundary both ways."""
    return payload


def _noop(_):
    return None


def warm_pool(rnd: Round, pool) -> None:
    """Make every worker run a task, then the engine's warm-up of ``pool.apply(echo_task, payload)``."""
    workers = rnd.case.workers
    pool.map(_noop, range(workers * 4), chunksize=1)
    rnd.warmup(lambda: pool.apply(echo_task, (rnd.payload,)))


def dispatch_apply(rnd: Round) -> RoundResult:
    """``Pool.apply``: one task at a time; latency per task, throughput = tasks / window."""
    spec, size = rnd.spec, rnd.case.payload_bytes
    pool = rnd.pool(rnd.case.workers)
    warm_pool(rnd, pool)
    apply, payload = pool.apply, rnd.payload
    samples: list[int] = []
    append, clock = samples.append, perf_counter_ns
    cpu0 = rnd.cpu_snapshot()
    t_go = clock()
    soft, hard = _deadlines(spec, t_go)
    n, t1, reply = 0, t_go, payload
    while True:
        t0 = clock()
        reply = apply(echo_task, (payload,))
        t1 = clock()
        append(t1 - t0)
        n += 1
        if n >= spec.max_messages or t1 >= hard or (t1 >= soft and n >= spec.min_messages):
            break
    cpu1 = rnd.cpu_snapshot()
    check_echo(reply, size)
    return RoundResult(samples, ops=n, window_ns=t1 - t_go, bytes_per_op=2 * size,
                       cpu_s=rnd.cpu_delta(cpu0, cpu1), placement=rnd.placement())


IN_FLIGHT_BYTES = 256 * 1024**2


def in_flight_window(workers: int, size: int) -> int:
    """Tasks the windowed forms keep in flight: one per worker (so that at 1 worker the window form runs
    at ``Pool.apply``'s concurrency and their latencies compare), capped so payloads in flight stay
    <= 256 MiB."""
    return max(1, min(workers, IN_FLIGHT_BYTES // max(1, 2 * size)))


def task_done(done_q, t_submit, result):
    """apply_async callback: (submit time, completion time, result length) onto ``done_q``."""
    done_q.put((t_submit, perf_counter_ns(), payload_size(result)))


def task_failed(done_q, t_submit, exc):
    """apply_async error callback: (submit time, None, the exception's repr) onto ``done_q``."""
    done_q.put((t_submit, None, repr(exc)))


def future_done(done_q, t_submit, future) -> None:
    """Executor done callback: as ``task_done``/``task_failed``."""
    t = perf_counter_ns()
    exc = future.exception()
    if exc is not None:
        done_q.put((t_submit, None, repr(exc)))
    else:
        done_q.put((t_submit, t, payload_size(future.result())))


def _next_done(done_q, timeout: float) -> tuple:
    """The next finished task from ``done_q``; RoundFailed for a task that failed or none within ``timeout``."""
    try:
        t_sub, t_done, got = done_q.get(timeout=timeout)
    except queue_mod.Empty:
        raise RoundFailed(f"no pool task came back within {timeout:g} s (a worker that dies loses its task: "
                          f"the Pool replaces the worker, the task never finishes)") from None
    if t_done is None:
        raise RoundFailed(f"a pool task failed: {got}")
    return t_sub, t_done, got


def window_submitter(rnd: Round, executor: bool) -> tuple[Callable[[], None], queue_mod.SimpleQueue]:
    """Start the pool (warmed) or the executor; return ``(submit, done_q)``: ``submit()`` sends one echo
    task whose (submit time, completion time, result size) arrives on ``done_q`` by its callback."""
    done_q: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
    payload, clock = rnd.payload, perf_counter_ns
    if executor:
        ex = rnd.executor(rnd.case.workers)
        submit_one = ex.submit
        rnd.warmup(lambda: ex.submit(echo_task, payload).result(rnd.spec.timeout_s))

        def submit():
            t = clock()
            submit_one(echo_task, payload).add_done_callback(partial(future_done, done_q, t))
    else:
        pool = rnd.pool(rnd.case.workers)
        warm_pool(rnd, pool)
        submit_async = pool.apply_async

        def submit():
            t = clock()
            submit_async(echo_task, (payload,), callback=partial(task_done, done_q, t),
                         error_callback=partial(task_failed, done_q, t))
    return submit, done_q


def dispatch_window(rnd: Round, executor: bool = False) -> RoundResult:
    """``Pool.apply_async`` (or ``ProcessPoolExecutor.submit``) keeping a window of tasks in flight
    (``in_flight_window``: one per worker), a new task submitted as each one completes; latency = submit ->
    result back (the completion callback), so it is a per-task latency at that concurrency."""
    spec, size = rnd.spec, rnd.case.payload_bytes
    submit, done_q = window_submitter(rnd, executor)
    window = in_flight_window(rnd.case.workers, size)
    samples: list[int] = []
    cpu0 = rnd.cpu_snapshot()
    t_go = perf_counter_ns()
    soft, hard = _deadlines(spec, t_go)
    for _ in range(window):
        submit()
    in_flight, n, t_last = window, 0, t_go
    while True:
        t_sub, t_done, got = _next_done(done_q, spec.timeout_s)
        in_flight -= 1
        if got != size:
            raise RoundFailed(f"echo task returned {got} bytes, expected {size}")
        samples.append(t_done - t_sub)
        n += 1
        t_last = t_done
        if n >= spec.max_messages or t_done >= hard or (t_done >= soft and n >= spec.min_messages):
            break
        submit()
        in_flight += 1
    cpu1 = rnd.cpu_snapshot()
    placement = rnd.placement()
    for _ in range(in_flight):      # drain what is still in flight before the pool is torn down
        _next_done(done_q, spec.timeout_s)
    return RoundResult(samples, ops=n, window_ns=t_last - t_go, bytes_per_op=2 * size,
                       cpu_s=rnd.cpu_delta(cpu0, cpu1), placement=placement,
                       params={"in_flight": window, "latency_is": "one task"})


CALL_BYTES = 32 * 1024**2
# Tasks of one submit-all job. "Submit K tasks, then collect them" runs at a rate that moves with K (pinned,
# 8 B, one worker, `python tools/job_size.py`: ~65k tasks/s at K = 256, ~82k at 1,024, ~75k at 4,096,
# ~61-77k at 20,000): each job ends with the pool drained, and a long backlog costs too. 1,024 amortizes
# the drain (~15 ms a job at 8 B) and keeps a round of at least 5 jobs short; the hand loops of the
# selfcheck run jobs of the same K (schema 7; until then 256).
BATCH_TASKS = 1024


def tasks_per_call(size: int, most: int = 64) -> int:
    """Tasks in one ``map``/``imap`` call (``most`` 64) or one submit-all batch (``BATCH_TASKS``), fewer for
    large payloads (<= 32 MiB of payload both ways per call, so a call of 1 MiB tasks takes tens of ms)."""
    return max(1, min(most, CALL_BYTES // max(1, 2 * size)))


def tasks_cap(spec) -> int:
    """Most tasks in one call or job of a round of ``spec``: ``max_messages / min_messages``, so that a round
    can time its ``min_messages`` calls (the smoke preset's 96 / 3: 32; quick's and full's are above K)."""
    return max(1, spec.max_messages // max(1, spec.min_messages))


def round_tasks(size: int, submit_all: bool, cap: int) -> int:
    """K, the tasks of one call (``map``/``imap``) or submit-all job: ``tasks_per_call`` within ``cap`` (a
    round's ``tasks_cap``). The selfcheck's hand loops make calls and jobs of the same K."""
    return min(tasks_per_call(size, BATCH_TASKS if submit_all else 64), cap)


def default_chunksize(tasks: int, workers: int) -> int:
    """What ``Pool.map`` picks when no chunksize is given (CPython's Pool._map_async): ceil(tasks / (4 w))."""
    chunksize, extra = divmod(tasks, workers * 4)
    return chunksize + (1 if extra else 0)


def submit_all_get(apply_async, payload, k: int) -> list:
    """The seed's usage: submit K tasks with ``apply_async``, then ``get()`` each result in order."""
    results = [apply_async(echo_task, (payload,)) for _ in range(k)]
    return [r.get() for r in results]


def submit_all_callback(apply_async, payload, k: int) -> list:
    """Submit K tasks with a callback that collects each result, then wait for the K-th callback: one
    Event, as users write it (waiting on each of the K results in turn took the GIL and a lock K times
    while the pool's result thread ran the callbacks). A task that fails ends the wait too
    (``error_callback``) and fails the round."""
    got: list = []
    failed: list = []
    done = threading.Event()

    def collect(result, into=got.append):           # runs in the pool's result thread, one at a time
        into(result)
        if len(got) + len(failed) == k:
            done.set()

    on_error = partial(collect, into=failed.append)
    for _ in range(k):
        apply_async(echo_task, (payload,), callback=collect, error_callback=on_error)
    done.wait()             # bounded by the round's timeout, as every blocking call of a round
    if failed:
        raise RoundFailed(f"{len(failed)} of {k} tasks failed: {failed[0]!r}")
    return got


def submit_all_futures(submit, payload, k: int) -> list:
    """Submit K futures to a ProcessPoolExecutor, then ``result()`` each in order."""
    futures = [submit(echo_task, payload) for _ in range(k)]
    return [f.result() for f in futures]


# style -> (what one call does, for params and the session form; whether it is a submit-all batch)
BATCH_STYLES = {
    "map": "pool.map(echo, [payload] * K, chunksize)",
    "imap": "list(pool.imap(echo, [payload] * K, chunksize))",
    "executor_map": "list(executor.map(echo, [payload] * K, chunksize=chunksize))",
    "apply_async": "submit K tasks with pool.apply_async, then get() each",
    "apply_async_callback": "submit K tasks with pool.apply_async(callback=...), then wait for all",
    "executor_submit": "submit K futures to the executor, then result() each",
}
SUBMIT_ALL = ("apply_async", "apply_async_callback", "executor_submit")


def batch_call(rnd: Round, style: str, chunksize: int | None) -> tuple[Callable[[], list], int, int | None]:
    """Start the pool (or executor) and return ``(call, K, chunksize used)``: ``call()`` makes one ``map``
    (``imap`` consumed in full, executor ``map``) of K echo tasks, or submits K tasks and collects them
    (``SUBMIT_ALL`` styles, chunksize None), and returns their results. K is ``tasks_per_call``, and at
    most ``max_messages / min_messages`` so that a round can time its ``min_messages`` calls."""
    size, workers = rnd.case.payload_bytes, rnd.case.workers
    k = round_tasks(size, style in SUBMIT_ALL, tasks_cap(rnd.spec))
    args = [rnd.payload] * k
    if style.startswith("executor"):
        ex = rnd.executor(workers)
        if style == "executor_submit":
            return partial(submit_all_futures, ex.submit, rnd.payload, k), k, None
        used = chunksize or 1          # ProcessPoolExecutor.map's default chunksize is 1
        return partial(_all, partial(ex.map, echo_task, args, chunksize=used)), k, used
    pool = rnd.pool(workers)
    warm_pool(rnd, pool)
    if style == "apply_async":
        return partial(submit_all_get, pool.apply_async, rnd.payload, k), k, None
    if style == "apply_async_callback":
        return partial(submit_all_callback, pool.apply_async, rnd.payload, k), k, None
    if style == "map":
        return partial(pool.map, echo_task, args, chunksize), k, chunksize or default_chunksize(k, workers)
    used = chunksize or 1              # Pool.imap's default chunksize is 1
    return partial(_all, partial(pool.imap, echo_task, args, used)), k, used


def check_batch(replies, k: int, size: int) -> None:
    if len(replies) != k:
        raise RoundFailed(f"a batch call returned {len(replies)} results, expected {k}")
    check_echo(replies[-1], size)


def dispatch_batches(rnd: Round, style: str, chunksize: int | None) -> RoundResult:
    """Batches of K echo tasks, again and again: ``Pool.map``, ``Pool.imap`` or ``ProcessPoolExecutor.map``
    of K tasks per call (``tasks_per_call``: 64), or K tasks submitted with ``apply_async`` (or
    ``executor.submit``) and then collected, as users submit (``BATCH_TASKS``: 1,024). One op is one task
    (throughput = tasks / window); one latency sample is one whole batch (from the call to its last result:
    a user of map sees nothing sooner; a task's own latency in a backlog of K is mostly waiting, so it is
    not a latency to set beside ``pool_apply``'s: that is the windowed form's). ``params`` records the
    style, the chunksize used and K."""
    spec, size = rnd.spec, rnd.case.payload_bytes
    call, k, used = batch_call(rnd, style, chunksize)
    rnd.warmup(call)
    samples: list[int] = []
    append, clock = samples.append, perf_counter_ns
    cpu0 = rnd.cpu_snapshot()
    t_go = clock()
    soft, hard = _deadlines(spec, t_go)
    calls, t1, replies = 0, t_go, None
    while True:
        t0 = clock()
        replies = call()
        t1 = clock()
        append(t1 - t0)
        calls += 1
        # min_messages counts latency samples, which are calls here; max_messages counts ops (tasks)
        if calls * k >= spec.max_messages or t1 >= hard or (t1 >= soft and calls >= spec.min_messages):
            break
    cpu1 = rnd.cpu_snapshot()
    check_batch(replies, k, size)
    params = {"style": style, "tasks_per_call": k, "latency_is": f"one call of {k} tasks"}
    if used is not None:
        params["chunksize"] = used
    return RoundResult(samples, ops=calls * k, window_ns=t1 - t_go, bytes_per_op=2 * size,
                       cpu_s=rnd.cpu_delta(cpu0, cpu1), placement=rnd.placement(), params=params)


def _all(make_iter) -> list:
    return list(make_iter())


# How a mechanism's dispatch style maps to its driver (``Mechanism(dispatch=...)``).
DISPATCH_STYLES: dict[str, Callable[[Round], RoundResult]] = {
    "apply": dispatch_apply,
    "apply_async": partial(dispatch_batches, style="apply_async", chunksize=None),
    "apply_async_callback": partial(dispatch_batches, style="apply_async_callback", chunksize=None),
    "apply_async_window": dispatch_window,
    "map": partial(dispatch_batches, style="map", chunksize=None),
    "map_chunksize1": partial(dispatch_batches, style="map", chunksize=1),
    "imap": partial(dispatch_batches, style="imap", chunksize=None),
    "executor_submit": partial(dispatch_batches, style="executor_submit", chunksize=None),
    "executor_submit_window": partial(dispatch_window, executor=True),
    "executor_map": partial(dispatch_batches, style="executor_map", chunksize=None),
}


def dispatch(rnd: Round, mech: Makers) -> RoundResult:
    """Pool tasks that echo the payload, in the mechanism's dispatch style (``DISPATCH_STYLES``)."""
    return DISPATCH_STYLES[mech.dispatch](rnd)


# --------------------------------------------------------------------------------------------------
# startup
# --------------------------------------------------------------------------------------------------
def startup(rnd: Round, mech: Makers) -> RoundResult:
    """Time ``Process.start()`` until the child has written one byte back (its first line ran).

    The child's target lives in ``child``, a module that imports nothing, which stands in as ``__main__``
    while children start (spawn and forkserver children re-run their parent's main module, as a user's
    light script's children do; the orchestrator's would add ~18 ms of imports); a forkserver preloads it.

    The payload is the child's argument: copied by fork, pickled for spawn and forkserver. Joining the
    child happens outside the clock. No throughput or CPU figure: the children are gone before they
    could be counted, and a forkserver reaps them itself.
    """
    spec, ctx, payload = rnd.spec, rnd.ctx, rnd.payload
    samples: list[int] = []
    clock = perf_counter_ns

    if rnd.case.start_method == "forkserver":
        ctx.set_forkserver_preload([started_child.__module__])

    def once(record: bool) -> None:
        r, w = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=started_child, args=(w, payload), name="started", daemon=True)
        with light_main():
            t0 = clock()
            proc.start()
            w.close()             # so that a child that dies before writing gives EOFError, not a hang
            try:
                r.recv_bytes()
            except EOFError:
                raise RoundFailed(f"started child exited with status {proc.exitcode} before running") from None
            t1 = clock()
        if record:
            samples.append(t1 - t0)
        proc.join(spec.timeout_s)
        if proc.is_alive():
            proc.kill()
            proc.join()
            raise RoundFailed("started child did not exit")
        r.close()

    rnd.warmup(lambda: once(False))
    t_go = clock()
    soft, hard = _deadlines(spec, t_go)
    while True:
        once(True)
        now = clock()
        if len(samples) >= spec.max_messages or now >= hard or (now >= soft and len(samples) >= spec.min_messages):
            break
    return RoundResult(samples, placement=rnd.placement(), bytes_per_op=rnd.case.payload_bytes)


# --------------------------------------------------------------------------------------------------
# the declarations
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Pattern:
    """A pattern: its public name, the driver of one round, and the mechanism makers the driver uses.

    ``run(rnd, mechanism) -> RoundResult`` runs one round inside the orchestrator process. ``needs`` names
    attributes of ``mechanisms.Mechanism`` (``make_channel``, ``make_proxy``, ``make_lock``,
    ``dispatch``) that must be given for a mechanism to declare this pattern.
    """

    name: str
    run: Callable[[Round, Makers], RoundResult]
    needs: tuple[str, ...] = ()

    @property
    def builtin(self) -> bool:
        """True for ipcbench's own patterns (``PATTERNS``), False for a plugin's own driver."""
        return PATTERNS.get(self.name) is self


PATTERNS: dict[str, Pattern] = {p.name: p for p in (
    Pattern("roundtrip", roundtrip, needs=("make_channel",)),
    Pattern("stream", stream, needs=("make_channel",)),
    Pattern("fanin", fanin, needs=("make_channel",)),
    Pattern("rpc", rpc, needs=("make_proxy",)),
    Pattern("dispatch", dispatch, needs=("dispatch",)),
    Pattern("startup", startup),
    Pattern("contention", contention, needs=("make_lock",)),
)}
