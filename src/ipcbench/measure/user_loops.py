"""The loops a user would write, held against ipcbench's patterns (``ipcbench selfcheck``, DESIGN rule 10).

Each ``UserLoop`` is the obvious program a user writes to measure one mechanism in one pattern: the same
exchange as ipcbench's pattern driver (``patterns.py``) with the mechanism's declaration (``mechanisms/``):
the same payload (``payloads.make_payload("bytes", size)``), the same direction, the same number of peers,
the same start method; but written the way users write it, not the way ipcbench does:

* it runs in a **fresh interpreter** (``run_hand``: ``python -c``, a session of its own), **unpinned**;
* after a short **warm-up** (``WARM_S``, which also calibrates how many operations fill the window) it
  reads the clock **once before and once after N operations** (``target_s`` long, default
  ``HAND_TARGET_S``): throughput = N / elapsed;
* where single operations can be timed cheaply (roundtrip, rpc, ``Pool.apply``), a **second pass** of N
  operations times each with ``perf_counter_ns`` (through one Python call per op, a fraction of a
  microsecond), and its median is the p50 latency.

The loops (``LOOPS``; ``what`` says each in a line):

=============================== =========== ===============================================================
mechanism                       pattern     the user's loop (main process; peers are processes unless said)
=============================== =========== ===============================================================
pipe_duplex                     roundtrip   ``a, b = Pipe()``; ``a.send(p); a.recv()``; the peer echoes
queue, simple_queue             roundtrip   two queues; ``q1.put(p); q2.get()``; the peer echoes
joinable_queue                  roundtrip   as queue, each side ``get()`` then ``task_done()``
manager_queue                   roundtrip   as queue with two ``Manager().Queue()`` proxies
pipe_duplex_oob                 roundtrip   ``Pipe()``; ``pickle.dumps(p, protocol=5, buffer_callback=...)``:
                                            the pickle (after a count), then each buffer, ``send_bytes``
os_pipe                         roundtrip   a pipe each way, raw ``os.write``/``os.read`` of fixed-size
                                            messages (a 1-byte mark before each: ``b"q"`` stops the peer);
                                            above 64 KiB the receiver reads the mark, then the bytes
                                            into a ``bytearray`` of their size (``os.readv``), as users
                                            read a known large size (not ~16 ``os.read`` calls joined)
socketpair                      roundtrip   ``socket.socketpair()``, ``sendall``/``recv`` (``recv_into``
                                            above 64 KiB) as os_pipe
thread_queue                    roundtrip   two ``queue.Queue``; the echo is a thread of the same process
shared_memory                   roundtrip   one ``SharedMemory`` of 2 x size (request, reply) and a
                                            ``Pipe()`` for 1-byte notifications; copy in, notify, wait,
                                            copy out (``bytes(shm.buf[...])``); the peer the same way back
sharedctypes_array[_nolock]     roundtrip   as shared_memory with two ``Array('c', size)`` (``RawArray``),
                                            ``arr.raw = p`` in and ``arr.raw`` out
pipe_simplex                    stream      ``r, w = Pipe(duplex=False)``: the producer ``w.send(p)`` in a
                                            loop, the main process ``r.recv()`` in a loop
pipe_duplex                     stream      ``a, b = Pipe()``: the producer ``b.send(p)``, the main ``a.recv()``
queue                           stream      ``q = Queue()`` (unbounded, as users make it): ``put`` / ``get``
joinable_queue                  stream      as queue, the consumer ``get()`` then ``task_done()``
simple_queue                    stream      ``q = SimpleQueue()``: ``put`` loop / ``get`` loop (no feeder thread)
queue                           fanin       N producers ``q.put((i, p))`` into one ``Queue()``
manager_dict, manager_list      rpc         ``d = Manager().dict({0: p})``; ``d[0]`` (``Manager().list([p])``;
                                            N clients: a process each, each its own key, started together
                                            at a barrier)
pool_apply                      dispatch    ``pool.apply(f, (p,))`` one at a time
pool_apply_async                dispatch    jobs of K = 1,024: ``[pool.apply_async(f, (p,)) ...]``, then
                                            ``get()`` each; again and again (the K the cases measure)
pool_apply_async_callback       dispatch    jobs of K with ``callback=``; wait for the K-th callback
pool_map / pool_map_chunksize1  dispatch    ``pool.map(f, [p] * 64)`` again and again (default chunksize /
                                            chunksize=1): the calls of K = 64 tasks the cases measure
pool_imap                       dispatch    ``for r in pool.imap(f, [p] * 64)`` (chunksize 1), again and again
process_pool_executor           dispatch    ``ProcessPoolExecutor``: jobs of K: submit K, then ``result()`` each
process_pool_executor_map       dispatch    ``list(ex.map(f, [p] * 64))`` (chunksize 1), again and again
lock                            contention  N processes, each ``lock.acquire(); lock.release()`` N times,
                                            started together at a barrier, a clock read every 1,024; the
                                            cycles while all ran / (first end - first start)
                                            (``contended_cycles``)
=============================== =========== ===============================================================

For stream and fan-in the producers are told how many messages to send: ``warmup_msgs`` first (the
consumer receives them before its clock starts, so the channel is in steady state, full, when timing
starts), then the timed N (fan-in: each producer the skipped quarter and all N, since the producers'
feeders do not share the pipe evenly, so that every producer is still sending when the N-th timed message
arrives, as in a round's window, which ends at the first producer's end; the rest is drained untimed). The number N of
these multi-process loops is calibrated by one whole run with a small N first (fresh peers each time).

Mechanism names here are what the loops are written for; ``ipcbench selfcheck`` looks each up in the
registry and skips (with a note) a name that is not registered or lacks the pattern.

Reaping: ``run_hand`` starts the loop's interpreter in a new session and kills the whole group (SIGTERM,
then SIGKILL) when it passes its timeout, on Ctrl-C or on any error, and unlinks any multiprocessing
semaphore or shared-memory name it left in ``/dev/shm``; the loop's own peers are daemons, joined with
timeouts, and the interpreter dies with its parent (PR_SET_PDEATHSIG).

``run_pairs`` alternates, for every rep and every pair, a hand loop and one ipcbench round of the same case
(``runner.run_round``, forked from one warm launcher as in ``ipcbench run``), the order within a pair
alternating from rep to rep.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from statistics import median
from time import perf_counter, perf_counter_ns

from .payloads import make_payload

__all__ = ["HAND_TARGET_S", "LOOPS", "UserLoop", "clock_overhead_ns", "hand_loop", "poll_cost_ns", "run_hand",
           "run_pairs"]

HAND_TARGET_S = 0.25      # the timed window of a hand loop (and of its p50 pass)
WARM_S = 0.05             # warm-up (and calibration) before the clock
MIN_OPS = 20
MAX_OPS = 2_000_000
HELD_BYTES = 128 * 1024**2     # results a loop holds at once (apply_async, map): at most this many bytes
OBJECT_BYTES = 100             # ... counting each result's object and list slot (~41 + 8 bytes for 8 B)
STREAM_BYTES = 4 * 1024**3     # bytes one stream/fanin run may move
HAND_TIMEOUT_S = 60.0
JOIN_S = 10.0
# Most tasks per map call or submit-all job: the ipcbench round's cap (``patterns.round_tasks``), set by
# ``hand_loop`` for the loop it runs (its own interpreter); None: ``tasks_per_call``'s K alone.
TASKS_CAP: int | None = None

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
HAND = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from ipcbench.measure.user_loops import hand_main; raise SystemExit(hand_main(sys.argv[1:]))")


@dataclass(frozen=True)
class UserLoop:
    """One user loop: the (mechanism, pattern) it stands beside, whether it times single ops (a p50),
    what it does in a line, and ``run(ctx, payload, workers, target_s) -> figures``."""

    mechanism: str
    pattern: str
    p50: bool
    what: str
    run: Callable[..., dict]


# -- helpers --------------------------------------------------------------------------------------------
def _clamp(n: float, top: int) -> int:
    return int(max(MIN_OPS, min(top, MAX_OPS, n)))


def _cap(size: int, budget: int) -> int:
    """Most ops of ``size`` bytes that keep ``budget`` bytes."""
    return max(MIN_OPS, budget // max(1, size))


def _held(size: int) -> int:
    """Most tasks whose results a loop holds at once: ``HELD_BYTES`` of payloads and their objects."""
    return _cap(size + OBJECT_BYTES, HELD_BYTES)


def _autorange(run: Callable[[int], float], target_s: float, top: int) -> tuple[int, int]:
    """Warm-up and calibration: ``run(k)`` (k ops, returns seconds) for k = 8, 16, 32 ... until ``WARM_S``
    have passed and at least three runs were made (the first ops of a fresh process, pool or manager are
    slow: the estimate comes from the last run); return (N for ``target_s`` at the last run's rate, ops
    run in warm-up)."""
    k, spent, warm, runs = 8, 0.0, 0, 0
    while True:
        k = min(k, top)
        dt = run(k)
        spent += dt
        warm += k
        runs += 1
        if (spent >= WARM_S and runs >= 3) or k >= top:
            break
        k *= 2
    return _clamp(target_s * k / dt if dt > 0 else top, top), warm


def _p50_pass(one: Callable[[], object], n: int) -> dict:
    """n single operations, each timed with perf_counter_ns: the median (s) and the number timed."""
    samples = array("q")
    append, clock = samples.append, perf_counter_ns
    for _ in range(n):
        t0 = clock()
        one()
        append(clock() - t0)
    return {"p50_s": median(samples) / 1e9, "timed_ops": n}


def _measure(run: Callable[[int], float], target_s: float, top: int, one: Callable[[], object] | None = None) -> dict:
    """The main-process loop: warm up, then one clock read around N ops; the p50 pass when ``one``."""
    n, warm = _autorange(run, target_s, top)
    elapsed = run(n)
    out = {"ops": n, "elapsed_s": elapsed, "rate": n / elapsed, "warmup_ops": warm}
    if one is not None:
        out.update(_p50_pass(one, n))
    return out


def _check(reply, size: int) -> None:
    got = None if reply is None else len(reply)
    if got != size:
        raise RuntimeError(f"the echo came back with {got} bytes, expected {size}")


def _join(*procs) -> None:
    for p in procs:
        p.join(JOIN_S)
        if p.is_alive():
            p.kill()
            p.join(JOIN_S)
            raise RuntimeError(f"peer {p.name} did not exit")
        if p.exitcode:
            raise RuntimeError(f"peer {p.name} exited with status {p.exitcode}")


def _start(ctx, target, *args, name: str):
    p = ctx.Process(target=target, args=args, name=name, daemon=True)
    p.start()
    return p


# -- roundtrip ------------------------------------------------------------------------------------------
def _roundtrip(send, recv, payload, target_s: float, run: Callable[[int], float] | None = None) -> dict:
    """send(payload); recv() N times (the user's ping-pong), after a warm-up; then the p50 pass. ``run``:
    the loop written out for the mechanism (the raw floors), else the generic one."""
    size = len(payload)

    if run is None:
        def run(n: int) -> float:
            t0 = perf_counter()
            for _ in range(n):
                send(payload)
                recv()
            return perf_counter() - t0

    def one():
        send(payload)
        return recv()

    out = _measure(run, target_s, MAX_OPS, one)
    send(payload)
    _check(recv(), size)
    return out


def _echo_conn(rx, tx) -> None:
    recv, send = rx.recv, tx.send
    while True:
        msg = recv()
        if msg is None:
            return
        send(msg)


def _echo_queue(inq, outq) -> None:
    get, put = inq.get, outq.put
    while True:
        msg = get()
        if msg is None:
            return
        put(msg)


def _echo_joinable(inq, outq) -> None:
    while True:
        msg = inq.get()
        inq.task_done()
        if msg is None:
            return
        outq.put(msg)


def rt_pipe_duplex(ctx, payload, workers, target_s):
    a, b = ctx.Pipe()
    p = _start(ctx, _echo_conn, b, b, name="echo")
    try:
        return _roundtrip(a.send, a.recv, payload, target_s)
    finally:
        a.send(None)
        _join(p)


def rt_queue(ctx, payload, workers, target_s, make=None):
    q1, q2 = (make or ctx.Queue)(), (make or ctx.Queue)()
    p = _start(ctx, _echo_queue, q1, q2, name="echo")
    try:
        return _roundtrip(q1.put, q2.get, payload, target_s)
    finally:
        q1.put(None)
        _join(p)


def rt_simple_queue(ctx, payload, workers, target_s):
    return rt_queue(ctx, payload, workers, target_s, make=ctx.SimpleQueue)


def rt_joinable_queue(ctx, payload, workers, target_s):
    q1, q2 = ctx.JoinableQueue(), ctx.JoinableQueue()
    p = _start(ctx, _echo_joinable, q1, q2, name="echo")

    def recv():
        msg = q2.get()
        q2.task_done()
        return msg

    try:
        return _roundtrip(q1.put, recv, payload, target_s)
    finally:
        q1.put(None)
        _join(p)


def _oob_send(conn, obj) -> None:
    """Pickle protocol 5 with out-of-band buffers, as PEP 574 shows it: the pickle (after a 4-byte count
    of buffers), then each buffer as a message of its own, straight from the object's memory."""
    bufs: list = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=bufs.append)
    conn.send_bytes(len(bufs).to_bytes(4, "little") + data)
    for buf in bufs:
        conn.send_bytes(buf.raw())


def _oob_recv(conn):
    head = conn.recv_bytes()
    buffers = [conn.recv_bytes() for _ in range(int.from_bytes(head[:4], "little"))]
    return pickle.loads(memoryview(head)[4:], buffers=buffers)


def _echo_oob(conn) -> None:
    while True:
        msg = _oob_recv(conn)
        if msg is None:
            return
        _oob_send(conn, msg)


def rt_pipe_duplex_oob(ctx, payload, workers, target_s):
    a, b = ctx.Pipe()
    p = _start(ctx, _echo_oob, b, name="echo")
    try:
        return _roundtrip(partial(_oob_send, a), partial(_oob_recv, a), payload, target_s)
    finally:
        _oob_send(a, None)
        _join(p)


def rt_manager_queue(ctx, payload, workers, target_s):
    """Two ``Manager().Queue()`` proxies, one each way: every put and get is a call to the server."""
    with ctx.Manager() as m:
        return rt_queue(ctx, payload, workers, target_s, make=m.Queue)


def _read_exactly(read, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = read(n - got)
        if not chunk:
            raise EOFError("the other end closed")
        parts.append(chunk)
        got += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _fd_writer(fd: int):
    write = os.write

    def write_all(data) -> None:
        n = write(fd, data)
        if n < len(data):
            view = memoryview(data)[n:]
            while view:
                view = view[write(fd, view):]
    return write_all


_WHOLE_MAX = 64 * 1024  # up to this size a raw message is read whole; above it mark, then bytes into their buffer


def _read_into(readinto, size: int) -> bytearray:
    """``size`` bytes straight into a new ``bytearray`` of that size (``readinto(view) -> count``: one
    ``os.readv`` or ``recv_into`` per piece the kernel hands over), as users read a known large size."""
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        k = readinto(view[got:])
        if not k:
            raise EOFError("the other end closed")
        got += k
    return buf


def _echo_raw(read, readinto, write, size: int) -> None:
    """The raw protocol users write for fixed-size messages: a 1-byte mark (b"x", or b"q" to stop) and
    the bytes; up to ``_WHOLE_MAX`` read with as few reads as the kernel allows and echoed whole, above it
    the mark, then the bytes into their buffer (``_read_into``), echoed as mark and bytes."""
    if size <= _WHOLE_MAX:
        while True:
            msg = _read_exactly(read, size + 1)
            if msg[0] != 120:                   # b"x"
                return
            write(msg)
    while True:
        mark = _read_exactly(read, 1)
        body = _read_into(readinto, size)
        if mark != b"x":
            return
        write(mark)
        write(body)


def _echo_fd(rx, tx, size: int) -> None:
    rfd = rx.fileno()
    _echo_raw(lambda k: os.read(rfd, k), lambda v: os.readv(rfd, [v]), _fd_writer(tx.fileno()), size)


def _echo_sock(sock, size: int) -> None:
    _echo_raw(sock.recv, sock.recv_into, sock.sendall, size)


def _raw_recv(read, readinto, size: int):
    """``recv()`` of the raw protocol's reply, its bytes without the mark: up to ``_WHOLE_MAX`` one read of
    mark and bytes (more only if the kernel hands it over in pieces), above it the mark, then the bytes into
    their buffer."""
    if size <= _WHOLE_MAX:
        return lambda: _read_exactly(read, size + 1)[1:]

    def recv():
        _read_exactly(read, 1)
        return _read_into(readinto, size)
    return recv


def _raw_run(write, read, msg: bytes, recv):
    """The floors' loop as users write it: one write of the message, one read (more only if the kernel
    hands it over in pieces); above ``_WHOLE_MAX``, ``recv()`` (mark, then bytes into their buffer)."""
    k = len(msg)

    def run_small(n: int) -> float:
        t0 = perf_counter()
        for _ in range(n):
            write(msg)
            data = read(k)
            if len(data) != k:
                _read_exactly(read, k - len(data))
        return perf_counter() - t0

    def run_large(n: int) -> float:
        t0 = perf_counter()
        for _ in range(n):
            write(msg)
            recv()
        return perf_counter() - t0
    return run_small if k - 1 <= _WHOLE_MAX else run_large


def rt_os_pipe(ctx, payload, workers, target_s):
    # Pipe(duplex=False) is an os.pipe() whose ends travel to spawn and forkserver peers too; the loop
    # itself uses only the file descriptors
    r1, w1 = ctx.Pipe(duplex=False)
    r2, w2 = ctx.Pipe(duplex=False)
    size = len(payload)
    p = _start(ctx, _echo_fd, r1, w2, size, name="echo")
    write, rfd = _fd_writer(w1.fileno()), r2.fileno()
    msg = b"x" + payload

    def read(k: int) -> bytes:
        return os.read(rfd, k)

    recv = _raw_recv(read, lambda v: os.readv(rfd, [v]), size)
    try:
        return _roundtrip(lambda _: write(msg), recv, payload, target_s, _raw_run(write, read, msg, recv))
    finally:
        write(b"q" * (size + 1))
        _join(p)
        for c in (r1, w1, r2, w2):
            c.close()


def rt_socketpair(ctx, payload, workers, target_s):
    import socket

    a, b = socket.socketpair()
    size = len(payload)
    p = _start(ctx, _echo_sock, b, size, name="echo")
    msg = b"x" + payload
    sendall, recv_some = a.sendall, a.recv
    recv = _raw_recv(recv_some, a.recv_into, size)
    try:
        return _roundtrip(lambda _: sendall(msg), recv, payload, target_s,
                          _raw_run(sendall, recv_some, msg, recv))
    finally:
        sendall(b"q" * (size + 1))
        _join(p)
        a.close()
        b.close()


_THREAD_PEER_CPU: list[int] = []     # where a thread peer pins itself (place_hand_loop); empty: nowhere


def _thread_peer(target, *args) -> None:
    """A thread peer, first placed as a round places one (``Placer.next_cpu``, ``place_thread``)."""
    if _THREAD_PEER_CPU:
        os.sched_setaffinity(0, set(_THREAD_PEER_CPU))       # 0: this thread
    target(*args)


def rt_thread_queue(ctx, payload, workers, target_s):
    import queue

    q1, q2 = queue.Queue(), queue.Queue()
    t = threading.Thread(target=_thread_peer, args=(_echo_queue, q1, q2), name="echo", daemon=True)
    t.start()
    try:
        return _roundtrip(q1.put, q2.get, payload, target_s)
    finally:
        q1.put(None)
        t.join(JOIN_S)


def _attach(name: str):
    from multiprocessing import shared_memory

    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name, track=False)
    return shared_memory.SharedMemory(name)   # registers with the creator's tracker (see mechanisms/shared.py)


def _notifications(ctx):
    """The light notification of the shared-memory loops: two ``Pipe(duplex=False)``, one per direction
    (what ipcbench's shared-memory links use). ``Pipe()`` would be a socketpair, which wakes the other side
    later: a p50 14-30 % longer for the same loop (docs/selfcheck.md). Returns (parent's (rx, tx),
    the echo's (rx, tx))."""
    to_echo_r, to_echo_w = ctx.Pipe(duplex=False)
    to_parent_r, to_parent_w = ctx.Pipe(duplex=False)
    return (to_parent_r, to_echo_w), (to_echo_r, to_parent_w)


def _echo_shm(name: str, size: int, conn) -> None:
    rx, tx = conn
    shm = _attach(name)
    buf = shm.buf
    try:
        while rx.recv_bytes() == b"x":
            data = bytes(buf[:size])            # copy the request out...
            buf[size:2 * size] = data           # ...and the reply in
            tx.send_bytes(b"x")
    finally:
        del buf
        shm.close()


def rt_shared_memory(ctx, payload, workers, target_s):
    from multiprocessing import shared_memory

    size = len(payload)
    shm = shared_memory.SharedMemory(create=True, size=2 * size)
    try:
        buf = shm.buf
        (a_rx, a_tx), echo_end = _notifications(ctx)
        p = _start(ctx, _echo_shm, shm.name, size, echo_end, name="echo")

        def send(data):
            buf[:size] = data
            a_tx.send_bytes(b"x")

        def recv():
            a_rx.recv_bytes()
            return bytes(buf[size:2 * size])

        try:
            return _roundtrip(send, recv, payload, target_s)
        finally:
            a_tx.send_bytes(b"q")
            _join(p)
    finally:
        try:
            shm.close()
        except BufferError:          # a view still alive (an exception's frames): the mapping goes at exit
            pass
        shm.unlink()


def _echo_arrays(req, rep, conn) -> None:
    rx, tx = conn
    while rx.recv_bytes() == b"x":
        rep.raw = req.raw
        tx.send_bytes(b"x")


def rt_sharedctypes_array(ctx, payload, workers, target_s, lock: bool = True):
    size = len(payload)
    make = ctx.Array if lock else ctx.RawArray
    req, rep = make("c", size), make("c", size)
    (a_rx, a_tx), echo_end = _notifications(ctx)
    p = _start(ctx, _echo_arrays, req, rep, echo_end, name="echo")

    def send(data):
        req.raw = data
        a_tx.send_bytes(b"x")

    def recv():
        a_rx.recv_bytes()
        return rep.raw

    try:
        return _roundtrip(send, recv, payload, target_s)
    finally:
        a_tx.send_bytes(b"q")
        _join(p)


def rt_sharedctypes_array_nolock(ctx, payload, workers, target_s):
    return rt_sharedctypes_array(ctx, payload, workers, target_s, lock=False)


# -- stream and fanin -----------------------------------------------------------------------------------
def warmup_msgs(size: int) -> int:
    """Messages a producer sends before the consumer's clock starts: 2,000, fewer for large payloads
    (4 MiB of them), at least 20."""
    return max(20, min(2000, (4 * 1024**2) // max(1, size)))


def _produce(tx, method: str, size: int, index: int | None, count: int, filled=None) -> None:
    """A producer: ``count`` messages, then None (fan-in: tagged with the producer's index); ``filled``
    (an Event, for a Queue) is set once all are put."""
    payload = make_payload("bytes", size)
    msg = payload if index is None else (index, payload)
    send = getattr(tx, method)
    for _ in range(count):
        send(msg)
    send(None)
    if filled is not None:
        filled.set()


def _scaled(run: Callable[[int], dict], first: int, target_s: float, top: int, per: int = 1) -> dict:
    """Calibrate a multi-process loop by whole runs (fresh peers each) of ``first``, 4 x ``first`` ... ops
    until one lasts ``WARM_S``, then run it for ``target_s``; ``per``: ops of a run per unit of n (its
    clients)."""
    n = first
    calibration = 0
    while True:
        probe = run(n)
        calibration += probe["ops"]
        if probe["elapsed_s"] >= WARM_S or n >= top:
            break
        n = min(top, 4 * n)
    out = run(_clamp(probe["rate"] * target_s / per, top))
    out["calibration_ops"] = calibration
    return out


# A filled queue's drain starts faster than it goes on: 8 B, the first ~10,000-15,000 messages at
# ~1.3-1.7x the rest (the pipe's buffer, then the consumer catching up with the feeder threads;
# tools/queue_drain_chunks.py, tools/fanin_drain.py). ipcbench's window skips that transient
# (``patterns._one_way``: the pipe's messages and the drain's first ``warmup_min_s``); the hand loop receives
# the first DRAIN_SKIP x N of its drain untimed, as a user timing the steady drain would.
DRAIN_SKIP = 0.25


def _consume(recv, producers: list, warm: int, n: int, filled: list = (), skip: int = 0) -> dict:
    """The consumer: receive ``warm`` messages, wait for every ``filled`` Event (a Queue's producers have
    put everything), receive ``skip`` more untimed (the drain's start), then time ``n``; then drain to
    every producer's None (a producer that has sent all its messages early ends with its None inside
    the window: not counted)."""
    ended = 0
    for _ in range(warm):
        if recv() is None:
            ended += 1
    if ended == len(producers):
        raise RuntimeError("every producer ended during warm-up")
    for event in filled:
        if not event.wait(JOIN_S):
            raise RuntimeError("a producer did not finish putting its messages")
    skipped = 0
    while skipped < skip and ended < len(producers):
        if recv() is None:
            ended += 1
        else:
            skipped += 1
    got = 0
    before = ended
    t0 = perf_counter()
    while got < n:
        if recv() is None:
            ended += 1
            if ended == len(producers):
                break
        else:
            got += 1
    elapsed = perf_counter() - t0
    if got < n:
        raise RuntimeError(f"the producers ended after {got} of {n} timed messages")
    ended_in_window = ended - before
    while ended < len(producers):
        if recv() is None:
            ended += 1
    _join(*producers)
    return {"ops": n, "elapsed_s": elapsed, "rate": n / elapsed, "warmup_ops": warm, "drain_skipped": skipped,
            "ended_in_window": ended_in_window}


def _stream(ctx, size: int, target_s: float, make_channel, method: str, fill_first: bool = False) -> dict:
    """``fill_first`` (a Queue): the producer puts everything, the consumer times the drain. While a
    producer's main thread puts in a tight loop, the Queue's feeder thread in the same process hardly
    gets the GIL, so a window that overlaps the puts times a mixture of two rates; ipcbench's queue
    rounds time the drain of a filled queue (``patterns._one_way``), and so does this loop."""
    warm = warmup_msgs(size)

    def run(n: int) -> dict:
        rx, tx, recv, close = make_channel()
        try:
            filled = [ctx.Event()] if fill_first else []
            skip = int(n * DRAIN_SKIP) if fill_first else 0
            p = _start(ctx, _produce, tx, method, size, None, warm + skip + n, *filled, name="producer")
            return _consume(recv, [p], warm, n, filled, skip)
        finally:
            close()

    return _scaled(run, 4 * warm, target_s, _cap(size, STREAM_BYTES))


def _queue_close(q) -> None:
    q.close()
    q.join_thread()


def st_pipe_simplex(ctx, payload, workers, target_s):
    def channel():
        r, w = ctx.Pipe(duplex=False)
        return r, w, r.recv, lambda: (r.close(), w.close())
    return _stream(ctx, len(payload), target_s, channel, "send")


def st_queue(ctx, payload, workers, target_s):
    def channel():
        q = ctx.Queue()
        return q, q, q.get, lambda: _queue_close(q)
    return _stream(ctx, len(payload), target_s, channel, "put", fill_first=True)


def st_pipe_duplex(ctx, payload, workers, target_s):
    def channel():
        a, b = ctx.Pipe()
        return a, b, a.recv, lambda: (a.close(), b.close())
    return _stream(ctx, len(payload), target_s, channel, "send")


def st_simple_queue(ctx, payload, workers, target_s):
    """A ``SimpleQueue`` has no feeder thread: ``put`` writes to its pipe (blocking when the pipe is full),
    so the producer streams as a Pipe's does; no fill first."""
    def channel():
        q = ctx.SimpleQueue()
        return q, q, q.get, q.close
    return _stream(ctx, len(payload), target_s, channel, "put")


def st_joinable_queue(ctx, payload, workers, target_s):
    """``JoinableQueue()``: the producer puts N, the consumer times N ``get()`` + ``task_done()`` (the drain)."""
    def channel():
        q = ctx.JoinableQueue()

        def recv():
            msg = q.get()
            q.task_done()
            return msg
        return q, q, recv, lambda: _queue_close(q)
    return _stream(ctx, len(payload), target_s, channel, "put", fill_first=True)


def fi_queue(ctx, payload, workers, target_s):
    size, producers = len(payload), max(1, workers)
    warm = warmup_msgs(size)

    def run(n: int) -> dict:
        q = ctx.Queue()
        try:
            skip = int(n * DRAIN_SKIP)
            # Each producer puts as many as the whole drain takes: their feeders do not share the pipe
            # evenly (pinned 8 B, the one alone on its CPU delivered ~3/4 of the messages), and with shares
            # of 1.25 (skip + n) / P one ran out inside the window in 7 of 8 drains (at 70-92 % of it),
            # which then timed a one-producer tail too (tools/fanin_probe.py shares). ipcbench's window ends at
            # the first producer's end; here none ends before the N-th timed message.
            share = skip + n
            filled = [ctx.Event() for _ in range(producers)]     # put everything, then drain (see _stream)
            procs = [_start(ctx, _produce, q, "put", size, i, warm + share, filled[i], name=f"producer-{i}")
                     for i in range(producers)]
            out = _consume(q.get, procs, warm * producers, n, filled, skip)
            out["producers"] = producers
            return out
        finally:
            _queue_close(q)

    return _scaled(run, 4 * warm, target_s, _cap(size, STREAM_BYTES))


# -- rpc and contention: clients started together ------------------------------------------------------
CLIENT_WARMUP = 200


def _rpc_client(d, key, barrier, n, timed, conn) -> None:
    for _ in range(CLIENT_WARMUP):
        d[key]
    barrier.wait(JOIN_S * 6)
    t0 = perf_counter()
    for _ in range(n):
        d[key]
    t1 = perf_counter()
    conn.send((t0, t1))
    if timed:
        barrier.wait(JOIN_S * 6)
        conn.send_bytes(_p50_samples(lambda: d[key], n).tobytes())
    conn.close()


# The lock clients read the clock every LOCK_STAMP cycles (as ipcbench's do, ``patterns.LOCK_BATCH``), so
# the span where every client runs can be told from the tail where the last ones run alone: with N cycles
# each, one client ends first, and the others' rest runs uncontended, ~5x as fast (1-14 % of a 2-client
# loop's cycles here, tools/lock_tail.py). The plain figure (all cycles / whole span) is reported as well.
LOCK_STAMP = 1024


def _lock_client(lock, barrier, n, conn) -> None:
    acquire, release = lock.acquire, lock.release
    for _ in range(CLIENT_WARMUP):
        acquire()
        release()
    stamps, clock, batch = array("d"), perf_counter, range(LOCK_STAMP)
    barrier.wait(JOIN_S * 6)
    t0 = clock()
    for _ in range(n // LOCK_STAMP):
        for _ in batch:
            acquire()
            release()
        stamps.append(clock())
    for _ in range(n % LOCK_STAMP):
        acquire()
        release()
    t1 = clock()
    conn.send((t0, t1))
    conn.send_bytes(stamps.tobytes())
    conn.close()


def contended_cycles(spans: list[tuple[float, float]], stamps: list, n: int, stamp: int = LOCK_STAMP) -> dict:
    """Rate of N lock clients while all of them ran: ``spans`` each client's (start, end) of its ``n``
    cycles, ``stamps`` its clock reads after every ``stamp`` cycles. The window runs from the first start
    to the first end; a client's cycles in it are those up to its last stamp inside it (all ``n`` for the
    client that ended first). Also the plain figure over the whole span, and the tail's share of cycles."""
    first = min(s[0] for s in spans)
    t_end = min(s[1] for s in spans)
    both = 0
    for (_, t1), st in zip(spans, stamps):
        both += n if t1 <= t_end else stamp * sum(1 for x in st if x <= t_end)
    last = max(s[1] for s in spans)
    total = n * len(spans)
    return {"ops": both, "elapsed_s": t_end - first, "rate": both / (t_end - first),
            "plain_rate": total / (last - first), "plain_ops": total, "tail_share": 1 - both / total}


def _p50_samples(one, n: int) -> array:
    samples = array("q")
    append, clock = samples.append, perf_counter_ns
    for _ in range(n):
        t0 = clock()
        one()
        append(clock() - t0)
    return samples


def _clients(ctx, client, args_of: Callable[[int], tuple], count: int, n: int, timed: bool) -> dict:
    """``count`` client processes, each ``n`` ops after a warm-up, started together at a barrier; total
    ops / (last end - first start); with ``timed`` a second pass timing each op (p50 of all clients)."""
    barrier = ctx.Barrier(count)
    conns, procs = [], []
    for i in range(count):
        r, w = ctx.Pipe(duplex=False)
        conns.append(r)
        procs.append(_start(ctx, client, *args_of(i), barrier, n, timed, w, name=f"client-{i}"))
        w.close()
    spans = [c.recv() for c in conns]
    out = {"ops": n * count, "clients": count}
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    out.update(elapsed_s=last - first, rate=n * count / (last - first))
    if timed:
        samples = array("q")
        for c in conns:
            samples.frombytes(c.recv_bytes())
        out.update(p50_s=median(samples) / 1e9, timed_ops=len(samples))
    _join(*procs)
    return out


def _rpc_manager(ctx, payload, workers, target_s, make) -> dict:
    """``make(manager, payload, n)``: a proxy holding ``payload`` at keys (indexes) 0 .. n-1; one client
    (this process) reads ``proxy[0]``, N > 1 clients each their own key."""
    with ctx.Manager() as m:
        if workers <= 1:
            d = make(m, payload, 1)

            def run(n: int) -> float:
                t0 = perf_counter()
                for _ in range(n):
                    d[0]
                return perf_counter() - t0

            return _measure(run, target_s, MAX_OPS, lambda: d[0])
        d = make(m, payload, workers)
        return _scaled(lambda n: _clients(ctx, _rpc_client, lambda i: (d, i), workers, n, True), 200, target_s,
                       MAX_OPS, per=workers)


def rpc_manager_dict(ctx, payload, workers, target_s):
    return _rpc_manager(ctx, payload, workers, target_s, lambda m, p, n: m.dict({k: p for k in range(n)}))


def rpc_manager_list(ctx, payload, workers, target_s):
    return _rpc_manager(ctx, payload, workers, target_s, lambda m, p, n: m.list([p] * n))


def _lock_clients(ctx, lock, count: int, n: int) -> dict:
    """``count`` lock clients, ``n`` cycles each, started together at a barrier (``contended_cycles``)."""
    barrier = ctx.Barrier(count)
    conns, procs = [], []
    for i in range(count):
        r, w = ctx.Pipe(duplex=False)
        conns.append(r)
        procs.append(_start(ctx, _lock_client, lock, barrier, n, w, name=f"client-{i}"))
        w.close()
    spans, stamps = [], []
    for c in conns:
        spans.append(c.recv())
        st = array("d")
        st.frombytes(c.recv_bytes())
        stamps.append(st)
    _join(*procs)
    return {**contended_cycles(spans, stamps, n), "clients": count}


def ct_lock(ctx, payload, workers, target_s):
    lock = ctx.Lock()
    count = max(1, workers)
    return _scaled(lambda n: _lock_clients(ctx, lock, count, n), 2000, target_s, MAX_OPS, per=count)


# -- dispatch -------------------------------------------------------------------------------------------
def echo(payload):
    """The task every pool loop submits (ipcbench's ``echo_task``): the payload goes there and back."""
    return payload


def ds_pool_apply(ctx, payload, workers, target_s):
    with ctx.Pool(workers) as pool:
        apply = pool.apply

        def run(n: int) -> float:
            t0 = perf_counter()
            for _ in range(n):
                apply(echo, (payload,))
            return perf_counter() - t0

        out = _measure(run, target_s, MAX_OPS, lambda: apply(echo, (payload,)))
        _check(apply(echo, (payload,)), len(payload))
        return out


def ds_pool_apply_async(ctx, payload, workers, target_s):
    k = _job_tasks(payload)
    with ctx.Pool(workers) as pool:
        submit = pool.apply_async

        def run(n: int) -> float:
            jobs = _calls(n, k)
            t0 = perf_counter()
            for size in jobs:
                results = [submit(echo, (payload,)) for _ in range(size)]
                for r in results:
                    r.get()
            return perf_counter() - t0

        return _measure(run, target_s, _held(len(payload)))


def ds_pool_apply_async_callback(ctx, payload, workers, target_s):
    k = _job_tasks(payload)
    with ctx.Pool(workers) as pool:
        submit = pool.apply_async

        def job(n: int) -> None:
            done = threading.Event()
            got = []

            def callback(result):          # runs in the pool's result thread, one at a time
                got.append(result)
                if len(got) == n:
                    done.set()

            for _ in range(n):
                submit(echo, (payload,), callback=callback)
            if not done.wait(HAND_TIMEOUT_S):
                raise RuntimeError(f"only {len(got)} of {n} callbacks came")

        def run(n: int) -> float:
            jobs = _calls(n, k)
            t0 = perf_counter()
            for size in jobs:
                job(size)
            return perf_counter() - t0

        return _measure(run, target_s, _held(len(payload)))


def _calls(n: int, k: int) -> list[int]:
    """n tasks as calls of k (the last one holds what is left)."""
    full, rest = divmod(n, k)
    return [k] * full + ([rest] if rest else [])


def _map_calls(payload) -> int:
    """Tasks per map/imap call: ipcbench's (``patterns.tasks_per_call``: 64, fewer for large payloads).
    The exchange these cases measure is many calls of that many tasks; one call over a list of millions
    of 8 B items is another workload (with its default chunksize, ~7M items/s on the reference VM: a few
    pickled lists, docs/selfcheck.md)."""
    from .patterns import round_tasks

    return round_tasks(len(payload), False, TASKS_CAP or MAX_OPS)


def _job_tasks(payload) -> int:
    """Tasks per submit-all job: ipcbench's (``patterns.BATCH_TASKS``: 1,024, fewer for large payloads).
    The rate of "submit K tasks, then collect them" moves with K (pinned, 8 B, one worker: ~65k tasks/s
    at K = 256, ~82k at 1,024, ~61-77k at 20,000; ``tools/job_size.py``): each job ends with the pool
    drained, and a long backlog costs too. So the hand loop runs N tasks as jobs of ipcbench's K, the
    workload the cases are labelled with, as the map loops make ipcbench's calls of 64."""
    from .patterns import round_tasks

    return round_tasks(len(payload), True, TASKS_CAP or MAX_OPS)


def _pool_map(ctx, payload, workers, target_s, chunksize=None):
    k = _map_calls(payload)
    with ctx.Pool(workers) as pool:
        def run(n: int) -> float:
            calls = [[payload] * size for size in _calls(n, k)]
            t0 = perf_counter()
            for items in calls:
                pool.map(echo, items, chunksize)
            return perf_counter() - t0

        return _measure(run, target_s, _held(len(payload)))


def ds_pool_map(ctx, payload, workers, target_s):
    return _pool_map(ctx, payload, workers, target_s)


def ds_pool_map_chunksize1(ctx, payload, workers, target_s):
    return _pool_map(ctx, payload, workers, target_s, chunksize=1)


def ds_pool_imap(ctx, payload, workers, target_s):
    k = _map_calls(payload)
    with ctx.Pool(workers) as pool:
        def run(n: int) -> float:
            calls = [[payload] * size for size in _calls(n, k)]
            t0 = perf_counter()
            for items in calls:
                for _ in pool.imap(echo, items):
                    pass
            return perf_counter() - t0

        return _measure(run, target_s, MAX_OPS)


def _executor(ctx, workers):
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def ds_process_pool_executor(ctx, payload, workers, target_s):
    k = _job_tasks(payload)
    with _executor(ctx, workers) as ex:
        submit = ex.submit

        def run(n: int) -> float:
            jobs = _calls(n, k)
            t0 = perf_counter()
            for size in jobs:
                futures = [submit(echo, payload) for _ in range(size)]
                for f in futures:
                    f.result()
            return perf_counter() - t0

        return _measure(run, target_s, _held(len(payload)))


def ds_process_pool_executor_map(ctx, payload, workers, target_s):
    k = _map_calls(payload)
    with _executor(ctx, workers) as ex:
        def run(n: int) -> float:
            calls = [[payload] * size for size in _calls(n, k)]
            t0 = perf_counter()
            for items in calls:
                list(ex.map(echo, items))
            return perf_counter() - t0

        return _measure(run, target_s, _held(len(payload)))


# -- the catalogue --------------------------------------------------------------------------------------
def _loops() -> dict[tuple[str, str], UserLoop]:
    table = [
        ("pipe_duplex", "roundtrip", True, "a, b = Pipe(); a.send(p); a.recv() (peer echoes)", rt_pipe_duplex),
        ("queue", "roundtrip", True, "q1.put(p); q2.get() (peer echoes)", rt_queue),
        ("simple_queue", "roundtrip", True, "SimpleQueue: q1.put(p); q2.get() (peer echoes)", rt_simple_queue),
        ("joinable_queue", "roundtrip", True, "JoinableQueue: put; get + task_done on each side",
         rt_joinable_queue),
        ("pipe_duplex_oob", "roundtrip", True, "Pipe(): pickle protocol 5, out-of-band buffers as messages of "
         "their own (peer echoes)", rt_pipe_duplex_oob),
        ("manager_queue", "roundtrip", True, "two Manager().Queue() proxies: q1.put(p); q2.get() (peer echoes)",
         rt_manager_queue),
        ("os_pipe", "roundtrip", True, "os.write / os.read of fixed-size messages on two pipes", rt_os_pipe),
        ("socketpair", "roundtrip", True, "socketpair(): sendall / recv of fixed-size messages", rt_socketpair),
        ("thread_queue", "roundtrip", True, "queue.Queue pair, echo thread in the same process", rt_thread_queue),
        ("shared_memory", "roundtrip", True, "SharedMemory request/reply halves, 1-byte notifications on two Pipe(duplex=False)",
         rt_shared_memory),
        ("sharedctypes_array", "roundtrip", True, "two Array('c'): .raw in, notify, .raw out",
         rt_sharedctypes_array),
        ("sharedctypes_array_nolock", "roundtrip", True, "two RawArray('c'): .raw in, notify, .raw out",
         rt_sharedctypes_array_nolock),
        ("pipe_simplex", "stream", False, "Pipe(duplex=False): w.send loop -> r.recv loop", st_pipe_simplex),
        ("pipe_duplex", "stream", False, "Pipe(): b.send loop -> a.recv loop", st_pipe_duplex),
        ("queue", "stream", False, "Queue(): the producer puts N, the consumer times N gets (the drain)", st_queue),
        ("simple_queue", "stream", False, "SimpleQueue(): put loop -> get loop", st_simple_queue),
        ("joinable_queue", "stream", False, "JoinableQueue(): the producer puts N, the consumer times N get() + "
         "task_done()", st_joinable_queue),
        ("queue", "fanin", False, "N producers put (i, p) into one Queue(), then the consumer times the drain", fi_queue),
        ("manager_dict", "rpc", True, "Manager().dict(): d[key] (N clients: a process each)", rpc_manager_dict),
        ("manager_list", "rpc", True, "Manager().list(): l[index] (N clients: a process each)", rpc_manager_list),
        ("pool_apply", "dispatch", True, "pool.apply(f, (p,)) one at a time", ds_pool_apply),
        ("pool_apply_async", "dispatch", False, "jobs of K: submit K apply_async, then get() each",
         ds_pool_apply_async),
        ("pool_apply_async_callback", "dispatch", False, "jobs of K: submit K apply_async with a callback, "
         "wait for the K-th", ds_pool_apply_async_callback),
        ("pool_map", "dispatch", False, "pool.map(f, [p] * 64) again and again, default chunksize", ds_pool_map),
        ("pool_map_chunksize1", "dispatch", False, "pool.map(f, [p] * 64, chunksize=1) again and again", ds_pool_map_chunksize1),
        ("pool_imap", "dispatch", False, "for r in pool.imap(f, [p] * 64) (chunksize 1), again and again", ds_pool_imap),
        ("process_pool_executor", "dispatch", False, "jobs of K: submit K futures, then result() each",
         ds_process_pool_executor),
        ("process_pool_executor_map", "dispatch", False, "list(ex.map(f, [p] * 64)) (chunksize 1), again and again",
         ds_process_pool_executor_map),
        ("lock", "contention", False, "N processes: acquire(); release() in a loop, started at a barrier",
         ct_lock),
    ]
    return {(m, p): UserLoop(m, p, p50, what, fn) for m, p, p50, what, fn in table}


LOOPS: dict[tuple[str, str], UserLoop] = _loops()


def hand_loop(mechanism: str, pattern: str, size: int, workers: int = 1, start_method: str | None = None,
              target_s: float = HAND_TARGET_S, tasks_cap: int | None = None) -> dict:
    """Run the user loop of (mechanism, pattern) in *this* process: ``{"ops", "elapsed_s", "rate"}`` (ops/s)
    and, for loops that time single ops, ``"p50_s"`` and ``"timed_ops"``. ``tasks_cap``: the ipcbench
    round's most tasks per call or job (``patterns.round_tasks``), for the Pool and executor loops."""
    import multiprocessing as mp

    global TASKS_CAP
    loop = LOOPS[(mechanism, pattern)]
    ctx = mp.get_context(start_method)
    payload = make_payload("bytes", size)
    TASKS_CAP = tasks_cap
    try:
        out = loop.run(ctx, payload, workers, target_s)
    finally:
        TASKS_CAP = None
    out["start_method"] = ctx.get_start_method()
    return out


# -- the fresh interpreter a hand loop runs in ----------------------------------------------------------
def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def place_hand_loop(placement: str) -> dict | None:
    """Place the hand loop's processes as a round's are (``placement.Placer``): this interpreter on the
    first CPU of the order, and every process it starts (peers, pool workers, a manager's server) right
    after its ``start()``, on the next CPU (``spread``) or the same one (``shared``), as ``Placer.place``
    does in a round. ``os``: nothing is pinned. Returns the placer's record (pid -> role and CPUs).

    Why: unpinned, two processes on 2 vCPUs share a CPU or not as the scheduler decides, for hundreds of
    milliseconds at a time (a Pipe stream of 8 B ran at ~117k/s or ~210k/s, switching within a run,
    ``tools/queue_maxsize.py --phases``); a check that leaves one side to the scheduler and pins the
    other compares two placements, not two loops."""
    if placement == "os":
        return None
    from multiprocessing.process import BaseProcess

    from .placement import Placer

    placer = Placer(placement)
    placer.pin_self()
    cpu = placer.next_cpu()                   # a thread peer's CPU (thread_queue), as in a round
    placer.number_from(0)
    if cpu is not None:
        _THREAD_PEER_CPU[:] = [cpu]
    start = BaseProcess.start
    live: list = []

    def placed_start(self):
        start(self)
        live[:] = [p for p in live if p.is_alive()]   # a loop's calibration runs start peers again and again:
        placer.number_from(len(live))               # number the live ones, as in a round, not all ever started
        live.append(self)
        placer.place(self.pid, self.name)

    BaseProcess.start = placed_start
    return placer.assigned


def hand_main(argv: list[str]) -> int:
    """Entry of the interpreter ``run_hand`` starts: one JSON argument (mechanism, pattern, size,
    workers, start_method, target_s, placement, tasks_cap); prints the figures as one JSON line."""
    _die_with_parent()

    def on_term(signum, frame):
        raise SystemExit(128 + signum)         # so that ``finally`` unlinks segments and joins peers

    signal.signal(signal.SIGTERM, on_term)
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    job = json.loads(argv[0])
    assigned = place_hand_loop(job.get("placement", "os"))
    out = hand_loop(job["mechanism"], job["pattern"], int(job["size"]), int(job["workers"]),
                    job.get("start_method"), float(job.get("target_s", HAND_TARGET_S)), job.get("tasks_cap"))
    if assigned is not None:
        out["placed"] = {str(pid): where["cpus"] for pid, where in assigned.items()}
    out["malloc_env"] = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_") and k.endswith("_")}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


def _kill_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM the hand loop's session, then SIGKILL what is left of it; collect its exit status."""
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            try:
                os.killpg(proc.pid, signal.SIGKILL)       # its peers, if they outlived it
            except (ProcessLookupError, PermissionError):
                pass
        return


def _live_in_group(pgid: int) -> bool:
    """A process of group ``pgid`` still runs (zombies left to be reaped by init do not count: an init
    that reaps slowly would hold every check up)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return True                     # no /proc: the group exists, assume it runs
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _group_gone(pgid: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while _live_in_group(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def run_hand(mechanism: str, pattern: str, size: int, workers: int = 1, start_method: str | None = None,
             target_s: float = HAND_TARGET_S, timeout_s: float = HAND_TIMEOUT_S, placement: str = "os",
             env: dict | None = None, tasks_cap: int | None = None) -> dict:
    """The user loop in a fresh interpreter (a session of its own), its processes placed as ``placement``
    (``place_hand_loop``): ``{"ok": True, **figures}`` or ``{"ok": False, "error"}``. Reaped on success,
    failure, timeout and Ctrl-C. ``tasks_cap``: as ``hand_loop``'s."""
    from .shm_cleanup import clean_shm, shm_names

    job = json.dumps({"mechanism": mechanism, "pattern": pattern, "size": size, "workers": workers,
                      "start_method": start_method, "target_s": target_s, "placement": placement,
                      "tasks_cap": tasks_cap})
    before = shm_names()
    proc = subprocess.Popen([sys.executable, "-c", HAND, PACKAGE_PARENT, job], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True,
                            env=env)
    clean = False
    try:
        out, err = proc.communicate(timeout=timeout_s)
        clean = proc.returncode == 0
    except subprocess.TimeoutExpired:
        _kill_group(proc, grace=2.0)
        proc.communicate()
        clean_shm(before)
        return {"ok": False, "error": f"the hand loop timed out after {timeout_s:g} s; its processes were killed"}
    except BaseException:                      # Ctrl-C, SIGTERM turned into an exception: take it down too
        _kill_group(proc, grace=1.0)
        clean_shm(before)
        raise
    finally:
        if not _group_gone(proc.pid, 2.0 if clean else 0.5):   # a helper (resource tracker) still exiting
            _kill_group(proc, grace=0.5)
    if not clean:
        clean_shm(before)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        return {"ok": False, "error": f"the hand loop exited with status {proc.returncode}"
                                      + (f": {lines[-1].strip()[:300]}" if lines else "")}
    try:
        figures = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"ok": False, "error": f"the hand loop printed no result: {out[-200:]!r}"}
    return {"ok": True, **figures}


# -- pairs: the hand loop and ipcbench, alternately -----------------------------------------------------
@dataclass(frozen=True)
class Pair:
    """One comparison: a user loop and the ipcbench case of the same exchange."""

    loop: UserLoop
    case: object        # plan.cases.Case

    @property
    def label(self) -> str:
        return f"{self.loop.mechanism} {self.loop.pattern}"


def ipcbench_round(case, spec, timeout_s: float, workdir: str, launcher, env: dict | None = None) -> dict:
    """One round of ``case`` as ``ipcbench run`` runs it: ``{"ok": True, "rate", "p50_s", "ops",
    "window_s", "samples"}`` (rate = ops / window, p50 = the round's median sample) or the failure."""
    from ..results.summary import round_headline
    from .runner import run_round

    got = run_round(case, spec, timeout_s, workdir, launcher=launcher, env=env)
    if not got.get("ok"):
        return {"ok": False, "error": got.get("error") or "unknown error"}
    res = got["result"]
    p50, rate = round_headline(res)
    return {"ok": True, "rate": rate, "p50_s": p50, "ops": res.get("ops"),
            "window_s": (res.get("window_ns") or 0) / 1e9, "samples": len(res.get("samples_ns") or ()),
            "params": res.get("params")}


def run_pairs(pairs: Sequence[Pair], reps: int, spec, *, target_s: float = HAND_TARGET_S,
              round_timeout_s: float = 60.0, hand_timeout_s: float = HAND_TIMEOUT_S, fresh_rounds: bool = False,
              on_step: Callable[[int, int, str, dict], None] = lambda i, rep, side, got: None,
              allocator: str = "cold", max_reps: int | None = None,
              more: Callable[[int, int], bool] = lambda i, rep: False) -> list[list[dict]]:
    """For every rep, every pair: its hand loop and one ipcbench round, back to back (hand first in even
    reps, ipcbench first in odd ones), both sides' processes in malloc state ``allocator``
    (``allocator.environment``). After the ``reps`` reps, up to ``max_reps``: another pass over the pairs
    for which ``more(pair index, rep)`` says so (the selfcheck: those still INCONCLUSIVE), until none does.
    Returns, per pair, its reps: ``{"rep", "first", "hand", "ipcbench"}``.
    ``on_step(pair index, rep, "hand" | "ipcbench", figures)`` after each side."""
    import tempfile

    from . import allocator as allocator_mod
    from .patterns import tasks_cap
    from .runner import open_launcher

    env = allocator_mod.environment(allocator)
    cap = tasks_cap(spec)
    results: list[list[dict]] = [[] for _ in pairs]
    with tempfile.TemporaryDirectory(prefix="ipcbench-selfcheck-") as workdir, \
            open_launcher(fresh_rounds, [p.case for p in pairs], env=env) as launcher:
        for rep in range(max(reps, max_reps or 0)):
            todo = range(len(pairs)) if rep < reps else [i for i in range(len(pairs)) if more(i, rep)]
            if not todo:
                break
            for i in todo:
                case = pairs[i].case
                sides = ("hand", "ipcbench") if rep % 2 == 0 else ("ipcbench", "hand")
                record: dict = {"rep": rep, "first": sides[0]}
                for side in sides:
                    t = time.monotonic()
                    if side == "hand":
                        got = run_hand(case.mechanism, case.pattern, case.payload_bytes, case.workers,
                                       case.start_method, target_s, hand_timeout_s, case.placement, env, cap)
                    else:
                        got = ipcbench_round(case, spec, round_timeout_s, workdir, launcher, env)
                    got["wall_s"] = round(time.monotonic() - t, 3)
                    record[side] = got
                    on_step(i, rep, side, got)
                results[i].append(record)
    return results


# -- costs the check_overhead tool prints ---------------------------------------------------------------
def clock_overhead_ns(n: int = 200_000) -> float:
    """Median cost of a ``perf_counter_ns()`` pair: what timing each op adds."""
    s = array("q")
    append = s.append
    for _ in range(n):
        t0 = perf_counter_ns()
        t1 = perf_counter_ns()
        append(t1 - t0)
    return median(s)


def poll_cost_ns(n: int = 20_000) -> float:
    """Cost of ``Connection.poll(timeout)`` on a connection with data ready (why timed loops block)."""
    import multiprocessing as mp

    a, b = mp.Pipe()
    try:
        b.send(b"x")
        t0 = perf_counter_ns()
        for _ in range(n):
            a.poll(1.0)
        return (perf_counter_ns() - t0) / n
    finally:
        a.close()
        b.close()
