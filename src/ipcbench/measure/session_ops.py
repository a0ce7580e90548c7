"""The session form of each pattern: what one operation is when someone else owns the timing loop.

``sessions.open_session`` uses these. ``SESSION_FORMS`` maps a pattern's name to its session form,
``form(rnd, mechanism) -> Op``: it starts what the pattern's driver in ``patterns.py`` starts (the
engine's own public peers, built with the mechanism's declared makers) and returns an ``Op`` whose
``call()`` is exactly one operation. ``builder_for`` reads the case's mechanism declaration and pattern
name; nothing here knows a mechanism by name. Nothing here is a timing loop; see ``sessions.py`` for the
table of what one call is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..plan.cases import Case
from . import patterns
from .child import light_main
from .harness import Round, RoundFailed
from .mechanisms import Mechanism
from .mechanisms import get as get_mechanism

# Other clients (rpc, contention) record two timestamps per op (a lock client per batch of
# ``patterns.LOCK_BATCH`` cycles) until told to stop; this many stamps caps their memory (32 MB each). A
# client that reaches it stops early, which ``extra()`` reports.
BACKGROUND_MAX_OPS = 2_000_000
# Untimed calls after warm-up that estimate the duration of one call (sessions.Session.warmup); the
# stream builder sizes its producers' budget with it.
CALIBRATION_CALLS = 9


class NoSessionForm(Exception):
    """The case's pattern has no session form (e.g. a plugin's own pattern driver)."""


def _nothing() -> None:
    return None


def _no_extra() -> dict:
    return {}


@dataclass
class Op:
    call: Callable[[], object]              # one operation: the thing an outside harness times
    definition: str                         # what one call is, in words (stored with the results)
    timed: str                              # "latency" or "interval" (see sessions.py)
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


# --------------------------------------------------------------------------------------------------
# one session form per pattern: start what the pattern's driver starts, return the Op
# --------------------------------------------------------------------------------------------------
def roundtrip_op(rnd: Round, mech: Mechanism) -> Op:
    size = rnd.case.payload_bytes
    parent, child = mech.make_channel(rnd, bounded=False)
    rnd.start_peer(patterns.echo_peer, child, name="echo")
    payload, send, recv = rnd.payload, parent.send, parent.recv

    def call():
        send(payload)
        return recv()

    def finish():
        rnd.stopping()
        send(None)

    return Op(call, "send the payload, then recv its echo from a peer process (one round trip)", "latency",
              2 * size, check=partial(patterns.check_echo, size=size), finish=finish)


def _one_way(rnd: Round, mech: Mechanism, producers: int, tagged: bool) -> Op:
    spec, case, ctx = rnd.spec, rnd.case, rnd.ctx
    rnd.bounded_queues = True     # producers stop on a flag: an unbounded queue would leave all they put to drain
    consumer, producer_end = mech.make_channel(rnd, bounded=True)
    go, stop = ctx.Event(), ctx.RawValue("b", 0)
    warmup = max(1, spec.warmup)
    # Each producer may send this many after the start signal: more than the session can consume (warm-up,
    # calibration, at most max_messages timed calls), so no producer's end-of-stream None reaches a timed recv.
    budget = spec.max_messages + warmup + CALIBRATION_CALLS + 1
    conns = patterns.start_producers(rnd, consumer, producer_end, producers, tagged, warmup, go, stop, budget)
    recv = consumer.recv
    go.set()
    size = case.payload_bytes

    def check(msg):
        if msg is None:
            raise RoundFailed("a producer ended during the timed window")
        patterns.check_echo(msg[1] if tagged else msg, size)

    def finish():
        rnd.stopping()             # before the flag: a peer may see it and exit at once
        stop.value = 1
        ended = 0
        while ended < producers:          # drain before join: producers block on a full channel otherwise
            if recv() is None:
                ended += 1
        for conn in conns:                 # producers send their send times last; read so they can exit
            conn.recv_bytes()

    who = "a producer process streams" if producers == 1 else f"{producers} producer processes stream"
    return Op(recv, f"recv() of the next message while {who} continuously (time between deliveries at the "
              f"consumer, not a one-way latency)", "interval", size, check=check, finish=finish)


def stream_op(rnd: Round, mech: Mechanism) -> Op:
    return _one_way(rnd, mech, producers=1, tagged=False)


def fanin_op(rnd: Round, mech: Mechanism) -> Op:
    return _one_way(rnd, mech, producers=rnd.case.workers, tagged=True)


def _background_clients(rnd: Round, client, targets: list, per_stamp: int = 1) -> tuple[
        Callable[[], int], Callable[[], None], Callable[[], dict]]:
    """Start the engine's client loop in one process per target (``per_stamp`` ops to a stamp); return
    (ops so far, finish, extra)."""
    cap = BACKGROUND_MAX_OPS * per_stamp
    spec, ctx = rnd.spec, rnd.ctx
    go, stop = ctx.Event(), ctx.RawValue("b", 0)
    stride = patterns.COUNT_STRIDE             # each client's counter on a cache line of its own
    counts = ctx.RawArray("q", max(1, len(targets)) * stride)
    conns = []
    for i, args in enumerate(targets):
        r, w = ctx.Pipe(duplex=False)
        conns.append(r)
        rnd.start_peer(client, *args, max(1, spec.warmup), go, stop, counts, i * stride, w, cap,
                       spec.timeout_s, name=f"client-{i + 1}")
        w.close()
    go.set()
    n = len(targets)
    slots = range(0, n * stride, stride)
    deadline = time.monotonic() + spec.timeout_s
    while any(counts[i] == 0 for i in slots):      # contention means: every other client is in its loop
        if time.monotonic() > deadline:
            raise RoundFailed(f"other clients did not start within {spec.timeout_s:g} s")
        time.sleep(0.001)

    def other_ops() -> int:
        return sum(counts[i] for i in slots)

    def finish() -> None:
        rnd.stopping()             # before the flag: a peer may see it and exit at once
        stop.value = 1
        for conn in conns:                 # each client sent b"ready", then sends start and end times
            conn.recv_bytes()
            conn.recv_bytes()
            conn.recv_bytes()

    def extra() -> dict:
        return {"other_clients": n,
                "other_clients_stopped_early": sum(1 for i in slots if counts[i] >= cap)}

    return other_ops, finish, extra


def rpc_op(rnd: Round, mech: Mechanism) -> Op:
    n, size = rnd.case.workers, rnd.case.payload_bytes
    proxy = mech.make_proxy(rnd.manager(), rnd.payload, n)
    other_ops, finish, extra = _background_clients(rnd, patterns.rpc_client, [(proxy, k) for k in range(1, n)])
    others = f", while {n - 1} other client process(es) call the same server" if n > 1 else ""
    return Op(partial(proxy.__getitem__, 0), f"proxy[key] from this process, answered by the manager's "
              f"server process{others}", "latency", size, check=partial(patterns.check_echo, size=size),
              finish=finish, other_ops=other_ops, extra=extra, throughput=n == 1)


def contention_op(rnd: Round, mech: Mechanism) -> Op:
    n = rnd.case.workers
    lock = mech.make_lock(rnd.ctx)
    other_ops, finish, extra = _background_clients(rnd, patterns.lock_client, [(lock,)] * (n - 1),
                                                   per_stamp=patterns.LOCK_BATCH)
    acquire, release = lock.acquire, lock.release

    def call():
        acquire()
        release()

    others = f", while {n - 1} other process(es) acquire and release it too" if n > 1 else ""
    return Op(call, f"lock.acquire() + lock.release() in this process{others}", "latency", 0,
              finish=finish, other_ops=other_ops, extra=extra, throughput=n == 1)


def dispatch_apply_op(rnd: Round) -> Op:
    size = rnd.case.payload_bytes
    pool = rnd.pool(rnd.case.workers)
    patterns.warm_pool(rnd, pool)
    return Op(partial(pool.apply, patterns.echo_task, (rnd.payload,)),
              f"pool.apply(echo, payload): one task to a pool of {rnd.case.workers} worker(s) and its result "
              f"back", "latency", 2 * size, check=partial(patterns.check_echo, size=size))


def dispatch_window_op(rnd: Round, executor: bool = False) -> Op:
    """The windowed forms (``patterns.dispatch_window``): one call waits for the next completion and submits
    one more; per-task latencies come from the completion callbacks."""
    spec, size = rnd.spec, rnd.case.payload_bytes
    submit, done_q = patterns.window_submitter(rnd, executor)
    window = patterns.in_flight_window(rnd.case.workers, size)
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
                raise RoundFailed(f"echo task returned {got} bytes, expected {size}")
            out.append(t_done - t_sub)
        return out

    def finish():
        for _ in range(window):            # drain what is still in flight before the pool is torn down
            get(timeout=timeout)

    what = "a ProcessPoolExecutor" if executor else "a pool"
    return Op(call, f"wait for the next result of {what} with {window} echo task(s) in flight, then submit one "
              f"more (time between completions; per-task latency comes from the completion callback)",
              "interval", 2 * size, finish=finish, latencies=latencies, on_begin=done.clear,
              extra=lambda: {"in_flight": window})


def dispatch_batch_op(rnd: Round, style: str, chunksize: int | None) -> Op:
    size = rnd.case.payload_bytes
    call, k, used = patterns.batch_call(rnd, style, chunksize)
    what = patterns.BATCH_STYLES[style].replace("K", str(k)).replace("chunksize)", f"chunksize={used})")
    return Op(call, f"{what}: one batch of {k} tasks to {rnd.case.workers} worker(s), until every result is "
              f"back", "latency", 2 * size * k, check=partial(patterns.check_batch, k=k, size=size),
              extra=lambda: {"tasks_per_call": k, **({"chunksize": used} if used is not None else {})})


def startup_op(rnd: Round, mech: Mechanism) -> Op:
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
        proc = ctx.Process(target=patterns.started_child, args=(w, payload), name="started", daemon=True)
        state.update(r=r, w=w, proc=proc)

    if rnd.case.start_method == "forkserver":
        ctx.set_forkserver_preload([patterns.started_child.__module__])

    def call():
        s = state
        proc = s["proc"]
        with light_main():       # as patterns.startup: the child re-runs a main module that imports nothing
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


def dispatch_op(rnd: Round, mech: Mechanism) -> Op:
    return DISPATCH_FORMS[mech.dispatch](rnd)


DISPATCH_FORMS: dict[str, Callable[[Round], Op]] = {    # as patterns.DISPATCH_STYLES
    "apply": dispatch_apply_op,
    "apply_async": partial(dispatch_batch_op, style="apply_async", chunksize=None),
    "apply_async_callback": partial(dispatch_batch_op, style="apply_async_callback", chunksize=None),
    "apply_async_window": dispatch_window_op,
    "map": partial(dispatch_batch_op, style="map", chunksize=None),
    "map_chunksize1": partial(dispatch_batch_op, style="map", chunksize=1),
    "imap": partial(dispatch_batch_op, style="imap", chunksize=None),
    "executor_submit": partial(dispatch_batch_op, style="executor_submit", chunksize=None),
    "executor_submit_window": partial(dispatch_window_op, executor=True),
    "executor_map": partial(dispatch_batch_op, style="executor_map", chunksize=None),
}

# The session form of each of ipcbench's patterns (patterns.PATTERNS), by pattern name.
SESSION_FORMS: dict[str, Callable[[Round, Mechanism], Op]] = {
    "roundtrip": roundtrip_op,
    "stream": stream_op,
    "fanin": fanin_op,
    "rpc": rpc_op,
    "contention": contention_op,
    "dispatch": dispatch_op,
    "startup": startup_op,
}


def builder_for(case: Case) -> Callable[[Round], Op]:
    """The session form of the case's pattern, built with the case's mechanism (as ``run`` builds it)."""
    mech = get_mechanism(case.mechanism)
    pattern = mech.patterns.get(case.pattern)
    if pattern is None:
        raise NoSessionForm(f"{case.mechanism} has no {case.pattern} pattern")
    if pattern.name == "dispatch" and mech.dispatch not in DISPATCH_FORMS:
        raise NoSessionForm(f"{case.mechanism}/dispatch ({mech.dispatch}) has no session form "
                            f"(session_ops.DISPATCH_FORMS); `ipcbench run` measures it")
    form = SESSION_FORMS.get(pattern.name) if pattern.builtin else None
    if form is None:
        name = getattr(pattern.run, "__qualname__", repr(pattern.run))
        raise NoSessionForm(f"{case.mechanism}/{case.pattern} uses {name}, which has no session form "
                            f"(session_ops.SESSION_FORMS); `ipcbench run` measures it")
    return partial(_with_peers, form, mech)


def _with_peers(form, mech: Mechanism, rnd: Round) -> Op:
    rnd.peer_kind = mech.peers          # threads for a baseline mechanism, as orchestrator.main sets it
    return form(rnd, mech=mech)
