"""Sessions: one case set up in *this* process, for a timing loop that someone else owns.

``ipcbench run`` times whole rounds inside ``patterns.py``. A harness such as pytest-benchmark instead
wants a callable to time, once per round. A session gives it one: ``open_session(case, spec)`` starts
the case's processes with the engine's own code (``harness.Round``, the makers the mechanism declares,
the public peers of ``patterns.py``), and ``session.op.call()`` performs exactly one operation. What to
build is looked up from the declaration: the pattern's name selects its session form
(``session_ops.SESSION_FORMS``), the mechanism supplies the makers. Nothing here re-implements a mechanism
or a timing loop; only the unit of work is chosen so that one call of ``op.call`` *is* one operation.

What one call is, per pattern (``op.timed`` says how to read its duration):

============ ==================================================================== =========
pattern      one ``op.call()``                                                    timed
============ ==================================================================== =========
roundtrip    send the payload, recv the echo from the peer process                latency
rpc          ``proxy[key]`` from this process, while N-1 other client processes   latency
             (the engine's rpc client) call the same server
contention   ``acquire()`` + ``release()`` in this process, while N-1 other        latency
             processes (the engine's lock client) contend for the same lock
dispatch     ``pool.apply(echo, payload)`` (pool_apply)                           latency
dispatch     next completion of a pipeline with W tasks in flight, and the         interval
             replacement submit (pool_apply_async_window); per-task latencies
             are measured by the engine's own completion callback, as in ``run``
dispatch     one batch of K tasks: map, imap, or submit-all then collect          latency
             (pool_apply_async, process_pool_executor)
startup      ``Process.start()`` until the child has run its first line; the     latency
             Process object is made and the previous child joined before, untimed
stream       ``recv()`` of the next message while a producer streams              interval
fanin        ``recv()`` of the next message while N producers stream              interval
============ ==================================================================== =========

``latency``: each call's duration is one operation's latency. ``interval``: the operation is one step
of a pipeline that keeps running between calls, so a call's duration is the time between deliveries as
the consumer sees it, not a latency; only throughput (ops / timed window, wall clock) is derived from it.
Every timed call also includes the caller's timer calls and, where ``call`` is a Python function rather
than a bound method, one Python call (~50 ns): negligible next to a round trip, visible next to an
uncontended lock cycle (~0.2 µs).

Throughput and CPU per message are derived differently from ``ipcbench run``, because the harness's own
loop (~2-3 µs per round for pytest-benchmark) runs between calls: see ``Session.measured``.

Failures: a peer that dies, or a session that passes ``timeout_s``, interrupts the main thread with
``RoundFailed`` (a signal handler installed for the session's lifetime), so a blocked ``recv`` never hangs
the caller. Every process is reaped when the session closes, whatever happened.
"""

from __future__ import annotations

import math
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter_ns

from ..plan.cases import Case, RoundSpec
from .harness import Round, RoundFailed
from .session_ops import CALIBRATION_CALLS, NoSessionForm, Op, builder_for

__all__ = ["NoSessionForm", "Op", "Session", "Window", "builder_for", "open_session"]

_INTERRUPT = signal.SIGUSR1


# --------------------------------------------------------------------------------------------------
# the session
# --------------------------------------------------------------------------------------------------
@dataclass
class Window:
    """What happened between ``begin()`` and ``end()``."""

    window_ns: int = 0
    cpu_s: float | None = None
    other_ops: int = 0
    placement: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


class Session:
    """One case's processes, started in this process; ``op.call()`` is one operation."""

    def __init__(self, case: Case, spec: RoundSpec, timeout_s: float = 60.0):
        self.case, self.spec, self.timeout_s = case, spec, timeout_s
        self.op: Op | None = None
        self.failure: str | None = None
        self._lock = threading.Lock()
        self._armed = False
        self._signalled = False
        self._previous_handler = None
        self._main = threading.main_thread().ident
        self.rnd = Round(case, spec, on_failure=self._fail)
        self._timer = threading.Timer(timeout_s, self._fail, (f"timed out after {timeout_s:g} s (a peer hung "
                                                              f"or deadlocked); all its processes were killed",))
        self._timer.daemon = True
        self._window = Window()
        self._marks: dict = {}

    # -- failure -> exception in the main thread --------------------------------------------------
    def _arm(self) -> None:
        if threading.get_ident() != self._main:
            return             # signals reach only the main thread; elsewhere a hang is left to the caller
        self._previous_handler = signal.signal(_INTERRUPT, self._on_signal)
        with self._lock:
            self._armed = True
        self._timer.start()

    def _disarm(self) -> None:
        self._timer.cancel()
        with self._lock:
            was_armed, self._armed = self._armed, False
        if was_armed:
            signal.signal(_INTERRUPT, self._previous_handler or signal.SIG_DFL)

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = reason
            if self._armed and not self._signalled:
                self._signalled = True
                signal.pthread_kill(self._main, _INTERRUPT)

    def _on_signal(self, signum, frame):
        raise RoundFailed(self.failure or "the session was interrupted")

    # -- measurement helpers ------------------------------------------------------------------------
    def _one(self) -> object:
        op = self.op
        if op.setup is not None:
            op.setup()
        return op.call()

    def warmup(self) -> float:
        """The engine's warm-up (``Round.warmup``: spec.warmup ops or spec.warmup_s), then up to
        CALIBRATION_CALLS more untimed calls; returns their median duration in seconds (for ``plan_calls``)."""
        self.rnd.warmup(self._one, settle=False)      # a stream producer's budget counts on spec.warmup calls
        times = []
        deadline = time.perf_counter() + self.spec.warmup_s
        while len(times) < CALIBRATION_CALLS:
            t0 = time.perf_counter()
            self._one()
            t1 = time.perf_counter()
            times.append(t1 - t0)
            if t1 >= deadline:
                break
        return statistics.median(times)

    def plan_calls(self, per_op_s: float, budget_s: float) -> int:
        """How many timed calls fit ``budget_s``, within the spec's min_messages..max_messages and
        max_window_s (the limits ``ipcbench run`` puts on one round)."""
        spec = self.spec
        if per_op_s <= 0:
            return spec.max_messages
        n = math.ceil(budget_s / per_op_s)
        n = min(n, math.floor(spec.max_window_s / per_op_s))
        return max(spec.min_messages, min(spec.max_messages, n))

    def begin(self) -> None:
        op, rnd = self.op, self.rnd
        op.on_begin()
        self._marks = {"cpu": rnd.cpu_snapshot() if op.cpu else None,
                       "other": op.other_ops() if op.other_ops else 0}
        self._marks["t"] = perf_counter_ns()

    def end(self) -> Window:
        t1 = perf_counter_ns()
        op, rnd, m = self.op, self.rnd, self._marks
        other = (op.other_ops() - m["other"]) if op.other_ops else 0
        cpu = rnd.cpu_delta(m["cpu"], rnd.cpu_snapshot()) if m["cpu"] is not None else None
        self._window = Window(window_ns=t1 - m["t"], cpu_s=cpu, other_ops=other, placement=rnd.placement(),
                              extra=op.extra())
        return self._window

    def measured(self, call_samples_ns: list[int]) -> dict:
        """The round record of the window (the shape ``stats.summarize`` and the result schema use).

        ``call_samples_ns``: the harness's per-call durations. Throughput, where reported, is ops / window:

        * "latency" ops done by this process alone: calls / sum of call durations (the back-to-back rate,
          1 / mean, what pytest-benchmark shows as OPS); the harness's own time between calls is left out.
        * "latency" ops with other processes doing them too (rpc, contention with N > 1): not reported.
          The harness's client is throttled by the harness, so "all clients together" would be a property
          of the harness; the other clients' op count is kept as ``other_ops``.
        * "interval" ops: calls / wall-clock window. The pipeline runs on between calls, so this is the rate
          delivered to a consumer whose loop is the harness's (a lower bound for fast messages).

        CPU time is kept as ``window_cpu_s`` only (all processes, the harness's loop included); no
        ``cpu_per_msg`` is derived from it, because the harness's share is unknown.
        """
        op, w = self.op, self._window
        if op.timed == "latency":
            samples = list(call_samples_ns)
            ops, window = (len(samples), sum(samples)) if op.throughput and samples else (None, None)
        else:
            samples = op.latencies() if op.latencies else []
            ops, window = (len(call_samples_ns), w.window_ns) if op.throughput else (None, None)
        return {"samples_ns": samples, "ops": ops, "window_ns": window, "bytes_per_op": op.bytes_per_op,
                "cpu_s": None, "window_cpu_s": w.cpu_s, "wall_window_ns": w.window_ns, "placement": w.placement,
                "calls": len(call_samples_ns), "other_ops": w.other_ops, **w.extra}


@contextmanager
def open_session(case: Case, spec: RoundSpec, timeout_s: float = 60.0) -> Iterator[Session]:
    """Start the case's processes in this process; yield the session; stop and reap everything."""
    build = builder_for(case)
    session = Session(case, spec, timeout_s)
    ok = False
    try:
        session._arm()
        session.op = build(session.rnd)
        yield session
        session.op.finish()
        ok = True
    finally:
        session._disarm()
        session.rnd.close(ok=ok)
