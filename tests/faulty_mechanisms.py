"""Mechanisms that misbehave on purpose, loaded through IPCBENCH_PLUGINS by the `plugin_env` fixture.

Plain declarations: they use the real roundtrip pattern and its real echo peer, with a pipe channel whose
peer end misbehaves inside the echo peer process (or, for ``test_refuse``, a channel maker that refuses).

The second half (``test_kill_*``, ``test_hang_stream``, ``test_raise_*``: see tests/test_faults.py) covers
every pattern with peers the same way: the real pattern, its real peers, and a mechanism whose maker wraps
the object a peer uses (a channel end, a proxy, a lock, the Pool) so that the fault happens inside the
peer process, at a known call of the round.
"""

import multiprocessing as mp
import os
import signal
import time

import psutil

from ipcbench.measure.channels import Endpoint, bounded_size, shared_queue
from ipcbench.measure.harness import RoundFailed
from ipcbench.measure.mechanisms import Mechanism
from ipcbench.measure.patterns import DISPATCH_STYLES, Pattern


class _PeerEnd:
    """The echo peer's end of a pipe: ``recv``/``send`` as a Connection's, unless a subclass says otherwise."""

    def __init__(self, conn):
        self.conn = conn

    def recv(self):
        return self.conn.recv()

    def send(self, obj):
        self.conn.send(obj)


class _Crashing(_PeerEnd):
    """Exits with status 3 right after echoing its third message."""

    sent = 0

    def send(self, obj):
        self.conn.send(obj)
        self.sent += 1
        if self.sent == 3:
            os._exit(3)


class _Raising(_PeerEnd):
    def recv(self):
        self.conn.recv()
        raise ValueError("bad peer on purpose")


class _Silent(_PeerEnd):
    def recv(self):
        self.conn.recv()
        time.sleep(3600)


def _pipe_with(peer_end):
    def make_channel(rnd, bounded):
        a, b = rnd.ctx.Pipe()
        rnd.stack.callback(a.close)
        rnd.stack.callback(b.close)
        return Endpoint(a, a), peer_end(b)

    return make_channel


def _refuse(rnd, bounded):
    raise RoundFailed("refused on purpose")


MECHANISMS = [
    Mechanism("test_crash", "test", "echo peer exits with status 3 after 3 messages",
              patterns=("roundtrip",), make_channel=_pipe_with(_Crashing)),
    Mechanism("test_raise", "test", "echo peer raises ValueError",
              patterns=("roundtrip",), make_channel=_pipe_with(_Raising)),
    Mechanism("test_hang", "test", "peer never answers", patterns=("roundtrip",), make_channel=_pipe_with(_Silent)),
    Mechanism("test_refuse", "test", "pattern fails at once", patterns=("roundtrip",), make_channel=_refuse),
]


# -- faults in every pattern with peers (tests/test_faults.py) -------------------------------------------
# A wrapper counts the calls a peer makes through it (per process: every peer has its own copy) and makes
# its fault at call number ``at``, in the peer named ``who`` only (every peer when None). With the specs of
# test_faults.py (warmup=2, min_messages=3) each ``at`` below puts the fault inside the timed window, before
# the round could have ended without it (a producer's or client's call 3 is its first timed one).

def _sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:          # already gone (another client killed it first)
        pass


def _gone(pid: int, timeout: float = 5.0) -> None:
    """Wait until ``pid`` (not our child) has exited: a zombie, or no process at all."""
    deadline = time.monotonic() + timeout
    try:
        proc = psutil.Process(pid)
        while proc.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.005)
    except psutil.NoSuchProcess:
        pass


class _Fault:
    def __init__(self, target, at: int, who: str | None = None):
        self.target, self.at, self.who = target, at, who
        self.calls = 0

    def _due(self) -> bool:
        self.calls += 1
        return self.calls == self.at and (self.who is None or mp.current_process().name == self.who)


class _KilledEnd(_Fault):
    """A peer's channel end (``channels.Endpoint``): at call ``at`` (recv and send counted together) the
    peer SIGKILLs itself instead of making the call. A Queue's feeder thread is flushed first, so that
    what the peer sent before arrives whole (the consumer then blocks, it does not read a torn message)."""

    def _check(self) -> None:
        if self._due():
            tx = self.target.tx
            if hasattr(tx, "join_thread"):
                tx.close()
                tx.join_thread()
            _sigkill(os.getpid())

    def recv(self):
        self._check()
        return self.target.recv()

    def send(self, obj):
        self._check()
        self.target.send(obj)


class _HungEnd(_Fault):
    """A peer's channel end that stops for good at send number ``at``."""

    def recv(self):
        return self.target.recv()

    def send(self, obj):
        if self._due():
            time.sleep(3600)
        self.target.send(obj)


def _pipe(rnd, bounded):
    """One simplex pipe for stream (consumer end, producer end); a duplex one for roundtrip."""
    if bounded:
        r, w = rnd.ctx.Pipe(duplex=False)
        conns, ends = (r, w), (Endpoint(r, w), Endpoint(r, w))
    else:
        a, b = rnd.ctx.Pipe()
        conns, ends = (a, b), (Endpoint(a, a), Endpoint(b, b))
    for c in conns:
        rnd.stack.callback(c.close)
    return ends


def _queue(rnd, bounded):
    """One bounded multiprocessing.Queue shared by the producers (fanin)."""
    q = rnd.ctx.Queue(bounded_size(rnd.case.payload_bytes))
    rnd.stack.callback(q.close)
    rnd.stack.callback(q.cancel_join_thread)
    return shared_queue(q)


def _faulty_channel(make, fault, at, who=None):
    def make_channel(rnd, bounded):
        parent, peer = make(rnd, bounded)
        return parent, fault(peer, at, who)

    return make_channel


class _KilledClient(_Fault):
    """An rpc proxy: at call ``at`` the client SIGKILLs itself instead of making the call."""

    def __getitem__(self, key):
        if self._due():
            _sigkill(os.getpid())
        return self.target[key]


class _ServerKiller(_Fault):
    """An rpc proxy: at call ``at`` the client SIGKILLs the Manager's server (pid ``server``), waits until it
    is gone, then makes the call."""

    def __init__(self, target, at, who, server: int):
        super().__init__(target, at, who)
        self.server = server

    def __getitem__(self, key):
        if self._due():
            _sigkill(self.server)
            _gone(self.server)
        return self.target[key]


def _dict(mgr, payload, n):
    return mgr.dict({k: payload for k in range(n)})


def _client_killed(mgr, payload, n):
    return _KilledClient(_dict(mgr, payload, n), at=5, who="client-1")


def _server_killed(mgr, payload, n):
    # every client kills the server at its first timed call (its 4th: the first call, 2 of warm-up, then
    # the first timed one): none completes a timed call afterwards
    return _ServerKiller(_dict(mgr, payload, n), at=4, who=None, server=mgr._process.pid)


class _KilledLock(_Fault):
    """A Lock whose client SIGKILLs itself right after acquire number ``at``: it dies holding the lock."""

    def acquire(self, *args, **kwargs):
        got = self.target.acquire(*args, **kwargs)
        if self._due():
            _sigkill(os.getpid())
        return got

    def release(self):
        self.target.release()


def _killed_lock(ctx):
    return _KilledLock(ctx.Lock(), at=4, who="client-1")


# dispatch: the real drivers (patterns.DISPATCH_STYLES) on a Pool whose apply/apply_async call ``at`` (the
# warm-up's applies included: up to 2, so 4 is the 2nd or 3rd timed task) runs ``task`` instead; with
# ``every``, so does every later call (then the driver cannot fill its timed window with good results).
def kill_worker_task(payload):
    os.kill(os.getpid(), signal.SIGKILL)


def raising_task(payload):
    raise ValueError("pool task failed on purpose")


class _FaultyPool(_Fault):
    """``only``: the pool methods whose calls count and may fail (the window forms warm up with ``apply``
    for as long as the timing takes to settle, which must not reach the fault)."""

    def __init__(self, target, at, task, every, only=("apply", "apply_async")):
        super().__init__(target, at)
        self.task, self.every, self.only = task, every, only

    def _func(self, func):
        due = self._due() or (self.every and self.calls > self.at)
        return self.task if due else func

    def map(self, *args, **kwargs):
        return self.target.map(*args, **kwargs)

    def apply(self, func, args=(), kwds=None):
        return self.target.apply(self._func(func) if "apply" in self.only else func, args, kwds or {})

    def apply_async(self, func, args=(), kwds=None, **kwargs):
        return self.target.apply_async(self._func(func), args, kwds or {}, **kwargs)


def _faulty_dispatch(task, at, every=False, only=("apply", "apply_async")):
    """A dispatch pattern of this plugin's own: the real driver, on a ``_FaultyPool``."""
    def driver(rnd, mech):
        pool = rnd.pool
        rnd.pool = lambda processes: _FaultyPool(pool(processes), at, task, every, only)
        return DISPATCH_STYLES[mech.dispatch](rnd)

    return Pattern("dispatch", driver, needs=("dispatch",))


MECHANISMS += [
    # a peer SIGKILLed mid-round, for each pattern with peers
    Mechanism("test_kill_roundtrip", "test", "echo peer SIGKILLs itself at its 2nd timed message",
              patterns=("roundtrip",), make_channel=_faulty_channel(_pipe, _KilledEnd, at=7)),
    Mechanism("test_kill_stream", "test", "producer SIGKILLs itself before its 2nd timed message",
              patterns=("stream",), make_channel=_faulty_channel(_pipe, _KilledEnd, at=4)),
    Mechanism("test_kill_fanin", "test", "producer-1 (of a Queue) SIGKILLs itself before its 2nd timed message",
              patterns=("fanin",), make_channel=_faulty_channel(_queue, _KilledEnd, at=4, who="producer-1")),
    Mechanism("test_kill_rpc", "test", "Manager dict, client-1 SIGKILLs itself at its 2nd timed call",
              patterns=("rpc",), make_proxy=_client_killed),
    Mechanism("test_kill_contention", "test", "Lock, client-1 SIGKILLs itself holding the lock",
              patterns=("contention",), make_lock=_killed_lock),
    Mechanism("test_kill_apply", "test", "Pool.apply, one timed task SIGKILLs its worker",
              patterns=(_faulty_dispatch(kill_worker_task, at=4),), dispatch="apply"),
    Mechanism("test_kill_apply_async", "test", "Pool.apply_async, one timed task SIGKILLs its worker",
              patterns=(_faulty_dispatch(kill_worker_task, at=4),), dispatch="apply_async"),
    Mechanism("test_kill_apply_async_window", "test", "Pool.apply_async, a window; one timed task SIGKILLs "
              "its worker", patterns=(_faulty_dispatch(kill_worker_task, at=4, only=("apply_async",)),),
              dispatch="apply_async_window"),
    # a peer that hangs, a Manager server that dies, a Pool task that raises
    Mechanism("test_hang_stream", "test", "producer stops for good before its 2nd timed message",
              patterns=("stream",), make_channel=_faulty_channel(_pipe, _HungEnd, at=4)),
    Mechanism("test_kill_manager", "test", "Manager dict, the clients SIGKILL its server at their 1st timed call",
              patterns=("rpc",), make_proxy=_server_killed),
    Mechanism("test_raise_apply", "test", "Pool.apply, timed tasks raise ValueError",
              patterns=(_faulty_dispatch(raising_task, at=3, every=True),), dispatch="apply"),
    Mechanism("test_raise_apply_async", "test", "Pool.apply_async, timed tasks raise ValueError",
              patterns=(_faulty_dispatch(raising_task, at=3, every=True),), dispatch="apply_async"),
    Mechanism("test_raise_apply_async_window", "test", "Pool.apply_async, a window; timed tasks raise ValueError",
              patterns=(_faulty_dispatch(raising_task, at=3, every=True, only=("apply_async",)),),
              dispatch="apply_async_window"),
]


class _RaisingEnd:
    def recv(self):
        raise ValueError("bad thread peer on purpose")

    def send(self, obj):
        pass


def _thread_raises(rnd, bounded):
    import queue

    from ipcbench.measure.channels import Endpoint

    a, b = queue.Queue(), queue.Queue()
    return Endpoint(b, a, "get", "put"), _RaisingEnd()


MECHANISMS += [
    Mechanism("test_thread_raises", "test", "thread peer (baseline style) whose echo raises at its first message",
              patterns=("roundtrip",), make_channel=_thread_raises, peers="thread"),
]
