"""The ``celery`` mechanism's dispatch driver: one round of echo tasks through a Redis broker and result
backend to Celery prefork workers (``mechanisms/distributed.py`` declares it).

Outside the clock: the Redis server and a Celery worker with the case's ``workers`` prefork processes are
started (``services``; or an existing Redis, ``ipcbench run --broker-url``, and workers elsewhere,
``--remote-workers``), the first task is waited for (the worker is ready), ``4 x workers`` tasks in flight,
eight times, start every pool process, then the engine's warm-up of single ``apply_async(...).get()``
calls. (Celery itself is imported before the worker's process starts, so a forked worker has it.)

Then two timed phases, as a user's two loops would be:

* **latency** (the latency samples, ``latency_*``): ``apply_async((payload,)).get()``, one task at a time,
  each timed on its own with ``perf_counter_ns`` (as ``pool_apply`` times ``Pool.apply``); each result is
  deleted from Redis (``forget``) between two timed calls, outside the clock;
* **throughput** (``throughput_*`` and ``cpu_per_msg``): batches of K tasks (``batch_of``: 64, fewer
  for large payloads, at most 32 MiB both ways a batch, the rule of ``pool_apply_async``'s batches, which
  hold 256 small tasks: Celery's are ~50 times slower, and 64 are still 16 times the worker's prefetch
  window of one process), each submitted in full with ``apply_async`` and then collected in order with
  ``get()``, as users write it;
  ``ops`` are the tasks of the batches, ``window_ns`` the time spent in them (each batch's results are
  deleted from Redis between two batches, outside that time), and the CPU seconds are those of every
  process of the round over the phase (client, Redis server, worker and its pool processes; not those of
  remote workers or a remote Redis).

Each phase ends at the first of ``budget_s`` with ``min_messages`` tasks, ``max_window_s`` or
``max_messages`` tasks (the throughput phase checks after each batch). ``params`` record K, the tasks of
each phase, the broker (its password hidden), the Redis server's binary and version, the queue and the
worker's pool processes (or, with remote workers, those that answered).
"""

from __future__ import annotations

import os
import secrets
from time import perf_counter_ns

from .. import patterns
from ..harness import Round, RoundFailed, RoundResult
from . import BROKER_ENV, REMOTE_ENV, REMOTE_QUEUE, missing, redact, redis_server_binary

MiB = 1024**2
BATCH_TASKS = 64            # tasks submitted at once in the throughput phase ...
BATCH_BYTES = 32 * MiB      # ... fewer for large payloads: at most this much payload both ways per batch


def batch_of(size: int) -> int:
    """Tasks per batch of the throughput phase: ``BATCH_TASKS``, fewer so that a batch moves at most
    ``BATCH_BYTES`` both ways (the rule ``pool_apply_async``'s batches follow); Redis holds a batch's tasks
    and results until they are read and deleted."""
    return max(1, min(BATCH_TASKS, BATCH_BYTES // max(1, 2 * size)))


def celery_dispatch(rnd: Round, mech) -> RoundResult:
    """One round of the ``celery`` mechanism (see the module docstring)."""
    broker_url = os.environ.get(BROKER_ENV) or None
    remote = os.environ.get(REMOTE_ENV) == "1"
    why = missing(broker_url)
    if why:
        raise RoundFailed(why)
    spec, case = rnd.spec, rnd.case
    size, workers = case.payload_bytes, case.workers
    params: dict = {"latency_is": "apply_async().get(), one task at a time",
                    "throughput_is": "batches of K tasks: submit K with apply_async, then get() each",
                    "serializer": "pickle", "pool": "prefork"}
    import celery.apps.worker  # noqa: F401 - before the worker's process is forked, which then has it

    from .services import pool_pids, start_redis, start_worker
    if broker_url is None:
        binary, source = redis_server_binary()
        redis = start_redis(rnd, binary, source)
        broker_url = redis.url
        params["broker"] = f"redis-server on 127.0.0.1:{redis.port}, started by the round"
        params["redis_server"] = f"{binary} ({source})"
    else:
        params["broker"] = redact(broker_url)
    if remote:
        queue = REMOTE_QUEUE
        worker_proc = None
    else:
        queue = f"ipcbench.{os.getpid()}.{secrets.token_hex(4)}"
        force_root = params.get("redis_server") is not None   # only on the round's own Redis (see app.py)
        worker_proc, _ = start_worker(rnd, broker_url, queue, workers, force_root)
    params["queue"] = queue

    from .app import ECHO, make_app

    app = make_app(broker_url, queue, main="ipcbench-client")
    own_queue_elsewhere = not remote and "redis_server" not in params      # the round's queue, on a shared Redis
    rnd.stack.callback(_close_app, app, queue if own_queue_elsewhere else None)
    echo = app.tasks[ECHO]
    timeout = spec.timeout_s
    payload = rnd.payload

    def call():
        res = echo.apply_async((payload,))
        try:
            return res.get(timeout=timeout)
        finally:
            res.forget()

    # Ready: the first task is back (the worker consumes its queue); then every pool process has run one.
    try:
        _ready(echo, timeout)
    except Exception as exc:
        raise RoundFailed(rnd.dead_peer(1.0) or _not_ready(exc, remote, broker_url, timeout)) from None
    if worker_proc is not None:
        pids = pool_pids(worker_proc.pid)
        for pid in pids:
            rnd.placer.place(pid, "celery-pool")
        params["worker_pool_processes"] = len(pids)
        if len(pids) != workers:
            raise RoundFailed(f"the Celery worker has {len(pids)} pool processes, expected {workers}")
    else:
        params["remote_workers"] = _remote_workers(app)
    params["redis_version"] = _redis_version(app)

    from celery.exceptions import TimeoutError as CeleryTimeout

    try:
        _in_flight(echo, 4 * workers, 8, timeout)
        rnd.warmup(lambda: patterns.check_echo(call(), size))
        samples, n = _latency(rnd, submit=echo.apply_async, payload=payload, timeout=timeout)
        k = max(1, min(batch_of(size), spec.max_messages))
        ops, window_ns, cpu_s, placement = _throughput(rnd, app, echo.apply_async, payload, k, timeout)
    except CeleryTimeout:
        raise RoundFailed(rnd.dead_peer(1.0) or f"a Celery task did not come back within {timeout:g} s") from None
    rnd.stopping()
    params.update(tasks_per_batch=k, tasks_latency=n, tasks_throughput=ops)
    if ops < 2:
        raise RoundFailed(f"only {ops} task(s) completed in the throughput window")
    return RoundResult(samples, ops=ops, window_ns=window_ns, bytes_per_op=2 * size, cpu_s=cpu_s,
                       placement=placement, params=params)


def _latency(rnd: Round, submit, payload, timeout: float) -> tuple[list[int], int]:
    """The latency phase: ``(samples, tasks)``."""
    spec, size = rnd.spec, rnd.case.payload_bytes
    samples: list[int] = []
    append, clock = samples.append, perf_counter_ns
    t_go = clock()
    soft, hard = t_go + int(spec.budget_s * 1e9), t_go + int(spec.max_window_s * 1e9)
    n, reply = 0, None
    while True:
        t0 = clock()
        res = submit((payload,))
        reply = res.get(timeout=timeout)
        t1 = clock()
        append(t1 - t0)
        res.forget()                        # between two timed calls: the result leaves Redis
        n += 1
        if n >= spec.max_messages or t1 >= hard or (t1 >= soft and n >= spec.min_messages):
            break
    patterns.check_echo(reply, size)
    return samples, n


def _throughput(rnd: Round, app, submit, payload, k: int, timeout: float):
    """The throughput phase: batches of ``k`` tasks, each submitted in full and then collected in order;
    ``(tasks, ns spent in batches, CPU s, placement)``. Each batch's results are deleted from Redis after
    it (one ``DEL``, outside the batch's time; inside the CPU window)."""
    spec = rnd.spec
    clock = perf_counter_ns
    backend = app.backend
    cpu0 = rnd.cpu_snapshot()
    t_go = clock()
    soft, hard = t_go + int(spec.budget_s * 1e9), t_go + int(spec.max_window_s * 1e9)
    ops, busy, reply = 0, 0, None
    while True:
        t0 = clock()
        results = [submit((payload,)) for _ in range(k)]
        for res in results:
            reply = res.get(timeout=timeout)
        t1 = clock()
        busy += t1 - t0
        ops += k
        backend.client.delete(*[backend.get_key_for_task(res.id) for res in results])
        if ops >= spec.max_messages or t1 >= hard or (t1 >= soft and ops >= spec.min_messages):
            break
    cpu1 = rnd.cpu_snapshot()
    patterns.check_echo(reply, rnd.case.payload_bytes)
    return ops, busy, rnd.cpu_delta(cpu0, cpu1), rnd.placement()


def _ready(echo, timeout: float) -> None:
    res = echo.apply_async((b"",))
    try:
        res.get(timeout=timeout)
    finally:
        res.forget()


def _not_ready(exc: Exception, remote: bool, broker: str, timeout: float) -> str:
    name = type(exc).__name__
    if name == "TimeoutError" or isinstance(exc, TimeoutError):
        if remote:
            return (f"no Celery worker took a task from queue {REMOTE_QUEUE!r} on {redact(broker)} within "
                    f"{timeout:g} s; start one there: ipcbench celery-worker --broker-url URL --concurrency N")
        return f"the local Celery worker took no task within {timeout:g} s"
    return f"Celery could not run a task ({name}: {exc})"


def _in_flight(echo, n: int, rounds: int, timeout: float) -> None:
    """``rounds`` times ``n`` empty tasks in flight at once: every pool process starts and runs tasks."""
    for _ in range(rounds):
        results = [echo.apply_async((b"",)) for _ in range(n)]
        for res in results:
            res.get(timeout=timeout)
            res.forget()


def _remote_workers(app) -> dict:
    """Workers that answer on the broker: name -> pool processes (``inspect().stats()``)."""
    try:
        stats = app.control.inspect(timeout=1.0).stats() or {}
    except Exception:  # noqa: BLE001 - a note in params, never a reason to fail
        return {}
    return {name: (s.get("pool") or {}).get("max-concurrency") for name, s in stats.items()}


def _redis_version(app) -> str | None:
    try:
        return app.backend.client.info("server").get("redis_version")
    except Exception:  # noqa: BLE001 - a note in params
        return None


def _close_app(app, queue: str | None) -> None:
    """Close the client's connections (before the server goes); on a broker that outlives the round, first
    remove what is left of the round's own queue (tasks of a failed round, the queue's binding)."""
    try:
        if queue is not None:
            app.backend.client.delete(queue, f"_kombu.binding.{queue}")
    except Exception:  # noqa: BLE001 - best effort: the round is ending
        pass
    try:
        app.close()
    except Exception:  # noqa: BLE001
        pass
