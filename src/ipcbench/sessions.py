"""Sessions: one case set up in *this* process, for a timing loop that someone else owns.

``ipcbench run`` times whole rounds inside ``patterns.py``. A harness such as pytest-benchmark instead
wants a callable to time, once per round. A session gives it one: ``open_session(case, spec)`` starts
the case's processes with the engine's own code (``harness.Round``, the mechanism's channel, proxy or
lock maker, the peer functions of ``patterns.py``), and ``session.op.call()`` performs exactly one
operation. Nothing here re-implements a mechanism or a timing loop; only the unit of work is chosen so
that one call of ``op.call`` *is* one operation.

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
             replacement submit (pool_apply_async); per-task latencies are
             measured by the engine's own completion callback, as in ``run``
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

Failures: a peer that dies, or a session that passes ``timeout_s``, interrupts the main thread with
``RoundFailed`` (a signal handler installed for the session's lifetime), so a blocked ``recv`` never hangs
the caller. Every process is reaped when the session closes, whatever happened.
"""

from __future__ import annotations

import math
import queue as queue_mod
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from time import perf_counter_ns

from . import patterns
from .cases import Case, RoundSpec
from .harness import Round, RoundFailed
from .mechanisms import get as get_mechanism
from .units import format_size

# Other clients (rpc, contention) record two timestamps per op until told to stop; this caps their memory
# (32 MB each). A client that reaches it stops early, which ``extra()`` reports.
BACKGROUND_MAX_OPS = 2_000_000
_INTERRUPT = signal.SIGUSR1
CALIBRATION_CALLS = 9


class NoSessionForm(Exception):
    """The case's pattern function has no session form (e.g. a plugin's own pattern function)."""


def _nothing() -> None:
    return None


def _no_extra() -> dict:
    return {}


@dataclass
class Op:
    call: Callable[[], object]              # one operation: the thing an outside harness times
    definition: str                         # what one call is, in words (stored with the results)
    timed: str                              # "latency" or "interval" (see the module docstring)
    bytes_per_op: int
    check: Callable[[object], None] = lambda result: None   # validates call()'s last result, untimed
    setup: Callable[[], None] | None = None  # untimed, before every call (startup)
    finish: Callable[[], None] = _nothing    # orderly stop: tell peers to stop, drain; before reaping
    other_ops: Callable[[], int] | None = None          # ops completed so far by other processes
    latencies: Callable[[], list[int]] | None = None    # engine-measured latencies in the window (ns)
    on_begin: Callable[[], None] = _nothing  # the timed window starts now
    extra: Callable[[], dict] = _no_extra    # facts about the window worth storing
    throughput: bool = True
    cpu: bool = True


def case_id(case: Case) -> str:
    """``pipe_duplex/roundtrip/8B/w1/fork``: one name per case, for test ids and pyperf benchmarks."""
    size = format_size(case.payload_bytes).replace(" ", "")
    kind = "" if case.payload_kind == "bytes" else f"{case.payload_kind}:"
    return f"{case.mechanism}/{case.pattern}/{kind}{size}/w{case.workers}/{case.start_method}"


# --------------------------------------------------------------------------------------------------
# one builder per pattern function: start what the pattern starts, return the Op
# --------------------------------------------------------------------------------------------------
def _roundtrip(rnd: Round, make_channel) -> Op:
    size = rnd.case.payload_bytes
    parent, child = make_channel(rnd, bounded=False)
    rnd.start_peer(patterns._echo_peer, child, name="echo")
    payload, send, recv = rnd.payload, parent.send, parent.recv

    def call():
        send(payload)
        return recv()

    def finish():
        rnd.stopping()
        send(None)

    return Op(call, "send the payload, then recv its echo from a peer process (one round trip)", "latency",
              2 * size, check=partial(_check_echo, size=size), finish=finish)


def _check_echo(reply, size: int) -> None:
    patterns._check_echo(reply, size)


def _one_way(rnd: Round, make_channel, producers: int, tagged: bool) -> Op:
    spec, case, ctx = rnd.spec, rnd.case, rnd.ctx
    consumer, producer_end = make_channel(rnd, bounded=True)
    go, stop = ctx.Event(), ctx.RawValue("b", 0)
    warmup = max(1, spec.warmup)
    # Each producer may send this many after the start signal: more than the session can consume (warm-up,
    # calibration, at most max_messages timed calls), so no producer's end-of-stream None reaches a timed recv.
    budget = spec.max_messages + warmup + CALIBRATION_CALLS + 1
    conns = []
    for i in range(producers):
        r, w = ctx.Pipe(duplex=False)
        conns.append(r)
        rnd.start_peer(patterns._producer_peer, producer_end, case.payload_kind, case.payload_bytes, i, tagged,
                       warmup, go, stop, w, budget, spec.timeout_s, name=f"producer-{i}")
        w.close()
    recv = consumer.recv
    for _ in range(warmup * producers):
        if recv() is None:
            raise RoundFailed("a producer ended during warm-up")
    go.set()
    size = case.payload_bytes

    def check(msg):
        if msg is None:
            raise RoundFailed("a producer ended during the timed window")
        _check_echo(msg[1] if tagged else msg, size)

    def finish():
        stop.value = 1
        rnd.stopping()
        ended = 0
        while ended < producers:          # drain before join: producers block on a full channel otherwise
            if recv() is None:
                ended += 1
        for conn in conns:                 # producers send their send times last; read so they can exit
            conn.recv_bytes()

    who = "a producer process streams" if producers == 1 else f"{producers} producer processes stream"
    return Op(recv, f"recv() of the next message while {who} continuously (time between deliveries at the "
              f"consumer, not a one-way latency)", "interval", size, check=check, finish=finish)


def _stream(rnd: Round, make_channel) -> Op:
    return _one_way(rnd, make_channel, producers=1, tagged=False)


def _fanin(rnd: Round, make_channel) -> Op:
    return _one_way(rnd, make_channel, producers=rnd.case.workers, tagged=True)


def _background_clients(rnd: Round, client, targets: list) -> tuple[Callable[[], int], Callable[[], None],
                                                                    Callable[[], dict]]:
    """Start the engine's client loop in one process per target; return (ops so far, finish, extra)."""
    spec, ctx = rnd.spec, rnd.ctx
    go, stop = ctx.Event(), ctx.RawValue("b", 0)
    counts = ctx.RawArray("q", max(1, len(targets)))
    conns = []
    for i, args in enumerate(targets):
        r, w = ctx.Pipe(duplex=False)
        conns.append(r)
        rnd.start_peer(client, *args, max(1, spec.warmup), go, stop, counts, i, w, BACKGROUND_MAX_OPS,
                       spec.timeout_s, name=f"client-{i + 1}")
        w.close()
    go.set()
    n = len(targets)
    deadline = time.monotonic() + spec.timeout_s
    while any(counts[i] == 0 for i in range(n)):      # contention means: every other client is in its loop
        if time.monotonic() > deadline:
            raise RoundFailed(f"other clients did not start within {spec.timeout_s:g} s")
        time.sleep(0.001)

    def other_ops() -> int:
        return sum(counts[:n])

    def finish() -> None:
        stop.value = 1
        rnd.stopping()
        for conn in conns:                 # each client sends its start and end times, then waits
            conn.recv_bytes()
            conn.recv_bytes()

    def extra() -> dict:
        return {"other_clients": n,
                "other_clients_stopped_early": sum(1 for i in range(n) if counts[i] >= BACKGROUND_MAX_OPS)}

    return other_ops, finish, extra


def _rpc(rnd: Round, make_proxy) -> Op:
    n, size = rnd.case.workers, rnd.case.payload_bytes
    proxy = make_proxy(rnd.manager(), rnd.payload, n)
    other_ops, finish, extra = _background_clients(rnd, patterns._rpc_client, [(proxy, k) for k in range(1, n)])
    others = f", while {n - 1} other client process(es) call the same server" if n > 1 else ""
    return Op(partial(proxy.__getitem__, 0), f"proxy[key] from this process, answered by the manager's "
              f"server process{others}", "latency", size, check=partial(_check_echo, size=size),
              finish=finish, other_ops=other_ops, extra=extra, throughput=n == 1)


def _contention(rnd: Round, make_lock) -> Op:
    n = rnd.case.workers
    lock = make_lock(rnd.ctx)
    other_ops, finish, extra = _background_clients(rnd, patterns._lock_client, [(lock,)] * (n - 1))
    acquire, release = lock.acquire, lock.release

    def call():
        acquire()
        release()

    others = f", while {n - 1} other process(es) acquire and release it too" if n > 1 else ""
    return Op(call, f"lock.acquire() + lock.release() in this process{others}", "latency", 0,
              finish=finish, other_ops=other_ops, extra=extra, throughput=n == 1)


def _dispatch_apply(rnd: Round) -> Op:
    size = rnd.case.payload_bytes
    pool = rnd.pool(rnd.case.workers)
    patterns._warm_pool(rnd, pool)
    return Op(partial(pool.apply, patterns.echo_task, (rnd.payload,)),
              f"pool.apply(echo, payload): one task to a pool of {rnd.case.workers} worker(s) and its result "
              f"back", "latency", 2 * size, check=partial(_check_echo, size=size))


def _dispatch_apply_async(rnd: Round) -> Op:
    spec, size = rnd.spec, rnd.case.payload_bytes
    pool = rnd.pool(rnd.case.workers)
    patterns._warm_pool(rnd, pool)
    window = patterns.in_flight_window(rnd.case.workers, size)
    done_q: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
    submit_async, payload, clock = pool.apply_async, rnd.payload, perf_counter_ns

    def submit():
        t = clock()
        submit_async(patterns.echo_task, (payload,), callback=partial(patterns._done, done_q, t),
                     error_callback=partial(patterns._failed, done_q, t))

    for _ in range(window):
        submit()
    done: list = []
    get, append, timeout = done_q.get, done.append, spec.timeout_s

    def call():
        item = get(timeout=timeout)
        append(item)
        submit()
        return item

    def latencies() -> list[int]:
        out = []
        for t_sub, t_done, got in done:
            if t_done is None:
                raise RoundFailed(f"a pool task failed: {got}")
            if got != size:
                raise RoundFailed(f"pool echo returned {got} bytes, expected {size}")
            out.append(t_done - t_sub)
        return out

    def finish():
        for _ in range(window):            # drain what is still in flight before the pool is torn down
            get(timeout=timeout)

    return Op(call, f"wait for the next result of a pool with {window} echo tasks in flight, then submit one "
              f"more (time between completions; per-task latency comes from the completion callback)",
              "interval", 2 * size, finish=finish, latencies=latencies, on_begin=done.clear,
              extra=lambda: {"in_flight": window})


def _startup(rnd: Round) -> Op:
    spec, ctx, payload = rnd.spec, rnd.ctx, rnd.payload
    state: dict = {}

    def reap_previous(strict: bool = True) -> None:
        proc = state.pop("proc", None)
        if proc is None or proc.pid is None:
            return
        proc.join(spec.timeout_s if strict else 1.0)
        if proc.is_alive():
            proc.kill()
            proc.join()
            if strict:
                raise RoundFailed("started child did not exit")
        state.pop("r").close()

    def setup() -> None:
        reap_previous()
        r, w = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=patterns._started_child, args=(w, payload), name="started", daemon=True)
        state.update(r=r, w=w, proc=proc)

    def call():
        s = state
        proc = s["proc"]
        proc.start()
        s["w"].close()           # so that a child that dies before writing gives EOFError, not a hang
        try:
            s["r"].recv_bytes()
        except EOFError:
            raise RoundFailed(f"started child exited with status {proc.exitcode} before running") from None

    rnd.stack.callback(reap_previous, False)
    return Op(call, "Process.start() until the child has run its first line (the Process object is made, "
              "and the previous child joined, before the clock)", "latency", rnd.case.payload_bytes,
              setup=setup, finish=reap_previous, throughput=False, cpu=False)


BUILDERS: dict[Callable, Callable[..., Op]] = {
    patterns.roundtrip: _roundtrip,
    patterns.stream: _stream,
    patterns.fanin: _fanin,
    patterns.rpc: _rpc,
    patterns.contention: _contention,
    patterns.dispatch_apply: _dispatch_apply,
    patterns.dispatch_apply_async: _dispatch_apply_async,
    patterns.startup: _startup,
}


def builder_for(case: Case) -> Callable[[Round], Op]:
    """The session form of the case's pattern, with the mechanism's maker bound (as ``run`` binds it)."""
    mech = get_mechanism(case.mechanism)
    fn = mech.patterns.get(case.pattern)
    if fn is None:
        raise NoSessionForm(f"{case.mechanism} has no {case.pattern} pattern")
    func, keywords = (fn.func, dict(fn.keywords)) if isinstance(fn, partial) else (fn, {})
    build = BUILDERS.get(func)
    if build is None:
        name = getattr(func, "__qualname__", repr(func))
        raise NoSessionForm(f"{case.mechanism}/{case.pattern} uses {name}, which has no session form "
                            f"(sessions.BUILDERS); `ipcbench run` measures it")
    return partial(build, **keywords)


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
        self.t_open = time.perf_counter()
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
        self.rnd.warmup(self._one)
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
