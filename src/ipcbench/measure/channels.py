"""``Endpoint``: one side of a message channel, with ``send``/``recv`` bound straight to the mechanism's
own methods (``Connection.send``/``recv``, ``Queue.put``/``get``), so the timed loops call exactly what
a user would call, with no wrapper in between. Endpoints pickle (for spawn and forkserver peers) by
their underlying objects and re-bind on arrival.
"""

from __future__ import annotations

import os
import pickle
import struct
from functools import partial


class Endpoint:
    __slots__ = ("rx", "tx", "recv_name", "send_name", "recv", "send")

    def __init__(self, rx, tx, recv_name: str = "recv", send_name: str = "send"):
        self.rx, self.tx = rx, tx
        self.recv_name, self.send_name = recv_name, send_name
        self._bind()

    def _bind(self) -> None:
        self.recv = getattr(self.rx, self.recv_name)
        self.send = getattr(self.tx, self.send_name)

    def __getstate__(self):
        return (self.rx, self.tx, self.recv_name, self.send_name)

    def __setstate__(self, state) -> None:
        self.rx, self.tx, self.recv_name, self.send_name = state
        self._bind()


def queue_pair(make_queue) -> tuple[Endpoint, Endpoint]:
    """Two queues, one per direction: (parent end, peer end)."""
    a, b = make_queue(), make_queue()
    return Endpoint(b, a, "get", "put"), Endpoint(a, b, "get", "put")


def shared_queue(q) -> tuple[Endpoint, Endpoint]:
    """One queue used one way (stream, fanin): consumer end gets, producer end puts."""
    return Endpoint(q, q, "get", "put"), Endpoint(q, q, "get", "put")


def one_way_maxsize(rnd) -> int:
    """maxsize of a queue used one way (stream, fanin): 0, unbounded, as users make one (``Queue()``);
    recorded as ``params.maxsize``.

    Why unbounded: a bounded ``multiprocessing.Queue`` in a stream is not the same channel. Once it is
    full, every ``get`` releases the semaphore a blocked ``put`` waits on, waking the producer once per
    message: 8 B messages went through ``Queue(1000)`` at 93-120k/s against 183-201k/s through ``Queue()``
    on the 2-vCPU VM (``tools/queue_maxsize.py``; docs/measurement.md). An unbounded queue holds
    references to the one payload object, so the backlog costs little memory; ``max_messages`` and
    ``patterns.UNBOUNDED_BYTES`` bound it. The producers fill it before the window
    (``patterns._one_way``), so its latency samples are the time behind everything put first
    (``params.latency_is``).
    """
    size = bounded_size(rnd.case.payload_bytes) if rnd.bounded_queues else 0
    rnd.channel_params["maxsize"] = size
    return size


def bounded_size(payload_bytes: int) -> int:
    """maxsize of a bounded one-way queue: <= 1000 items and <= 64 MiB of payload, at least 2. A
    Manager's (its server holds an unpickled copy of every item put, unlike a ``Queue``'s references),
    and every queue of a pytest-benchmark session (``Round.bounded_queues``)."""
    return max(2, min(1000, (64 * 1024**2) // max(1, payload_bytes)))


# A fan-in's messages are ``(tag, payload)``: the tag is the producer's index where the producer stamped the
# send, index + UNSTAMPED where not (patterns.producer_peer), so the consumer reads the clock only for
# stamped ones; still a one-byte int in a pickle for up to 128 producers. A link that routes by producer
# (mechanisms.shared.TaggedShmLink) takes ``tag % UNSTAMPED``.
UNSTAMPED = 128
PIPE_DEFAULT = 64 * 1024      # Linux's pipe capacity unless changed (F_SETPIPE_SZ)


def buffered_messages(endpoint, msg) -> int:
    """How many messages like ``msg`` the OS pipe under a ``multiprocessing`` queue's receiving
    ``endpoint`` holds when full (its capacity, ``F_GETPIPE_SZ``, over the message's pickle and 4-byte
    header, rounded up); 0 for a channel without such a pipe (``queue.Queue`` between threads)."""
    from multiprocessing.reduction import ForkingPickler

    obj = endpoint.rx
    obj = getattr(obj, "q", obj)                     # a ConsumeEnd's queue
    reader = getattr(obj, "_reader", None)
    if reader is None:
        return 0
    try:
        import fcntl

        capacity = fcntl.fcntl(reader.fileno(), fcntl.F_GETPIPE_SZ)
    except (ImportError, AttributeError, OSError, ValueError):
        capacity = PIPE_DEFAULT
    wire = len(ForkingPickler.dumps(msg)) + 4
    return -(-capacity // wire)


class ConsumeEnd:
    """The receiving end of a ``JoinableQueue`` as its users write it: ``get()`` then ``task_done()`` for
    every item (the one wrapper call is the price of calling both)."""

    __slots__ = ("q",)

    def __init__(self, q):
        self.q = q

    def recv(self):
        item = self.q.get()
        self.q.task_done()
        return item

    def __getstate__(self):
        return self.q

    def __setstate__(self, q) -> None:
        self.q = q


# A raw message: a 1-byte mark and the payload's bytes, every message of a round the same size; the mark
# b"q" (followed by as many filler bytes) is the end (None).
_MARK, _STOP = b"x", b"q"
_X = _MARK[0]
_ONE_WRITE = 64 * 1024      # up to this size, mark and bytes go out in one system call, and come in one
_FILL = 1024**2             # the end's filler is written in pieces of this size


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


class RawFd:
    """Bytes over a pipe's or a socket's file descriptors with no pickling: the floor a mechanism is drawn
    beside. Every message of a round has the case's payload size (``size``), so a message is what the
    user's loop for a known size sends: a 1-byte mark and the bytes, no length. ``send(data)`` takes any
    C-contiguous buffer of ``size`` bytes (``bytes``, or a numpy array through the buffer protocol,
    ``memoryview(arr).cast("B")``: no copy): one ``os.write`` of mark and bytes up to 64 KiB, else the
    mark, then the buffer, looping on partial writes. ``recv()`` of a message up to 64 KiB is one
    ``os.read`` of ``size + 1`` bytes (more only when the kernel hands it over in pieces) and the bytes
    after the mark (``bytes``, as an unpickled ``bytes`` payload is); a larger one reads the mark, then the
    rest straight into a new ``bytearray`` with ``os.readv`` (the least a receiver must do to own a
    message). An earlier framing with an 8-byte length and a read-ahead buffer cost ~1.2 us more per
    message than ``os.write``/``os.read`` of a known size (in one process; the selfcheck's floors came out
    at 0.67-0.85 of their hand loops). With ``as_array`` (the ``numpy`` payload kind) ``recv`` hands the
    bytes out as a writable 1-D uint8 ndarray (``np.frombuffer`` of a ``bytearray``), so that the floor
    delivers what the pickling mechanisms beside it deliver; numpy is imported only then. ``None``
    travels as the mark ``b"q"`` and ``size`` filler bytes. The file descriptors are held by the objects
    given (``Connection``s or sockets), which multiprocessing duplicates into spawn and forkserver
    peers."""

    __slots__ = ("rx_holder", "tx_holder", "rfd", "wfd", "size", "as_array", "_frombuffer")

    def __init__(self, rx_holder, tx_holder, size: int, as_array: bool = False):
        self.rx_holder, self.tx_holder = rx_holder, tx_holder
        self.rfd, self.wfd = rx_holder.fileno(), tx_holder.fileno()
        self.size = size
        self.as_array = as_array
        self._frombuffer = None
        if as_array:
            import numpy as np

            self._frombuffer = partial(np.frombuffer, dtype=np.uint8)

    def send(self, data) -> None:
        fd = self.wfd
        if data is None:
            self._send_end()
            return
        if type(data) is not bytes and type(data) is not bytearray:   # an ndarray: its buffer, no copy
            data = memoryview(data).cast("B")
        n = len(data)
        if n != self.size:
            raise ValueError(f"this raw channel carries messages of {self.size} bytes, not {n}")
        if n <= _ONE_WRITE:
            msg = _MARK + data
            k = os.write(fd, msg)
            if k != len(msg):
                _write_all(fd, memoryview(msg)[k:])
        else:
            os.write(fd, _MARK)
            _write_all(fd, memoryview(data))

    def _send_end(self) -> None:
        fd, left = self.wfd, self.size
        os.write(fd, _STOP)
        filler = memoryview(bytes(min(left, _FILL)))
        while left:
            k = min(left, len(filler))
            _write_all(fd, filler[:k])
            left -= k

    def recv(self):
        size = self.size
        if size < _ONE_WRITE:
            n = size + 1
            chunk = os.read(self.rfd, n)
            if len(chunk) == n:                 # the whole message in one read
                if chunk[0] != _X:
                    return None
                if self._frombuffer is None:
                    return chunk[1:]
                return self._frombuffer(bytearray(memoryview(chunk)[1:]))
            if not chunk:
                raise EOFError("the other end closed")
            mark, body = chunk[0], self._rest(chunk[1:])
        else:
            mark = os.read(self.rfd, 1)
            if not mark:
                raise EOFError("the other end closed")
            mark, body = mark[0], self._rest(b"")
        if mark != _X:
            return None
        return body if self._frombuffer is None else self._frombuffer(body)

    def _rest(self, head: bytes) -> bytearray:
        """The message's ``size`` bytes, whose first ones (``head``) have arrived: the rest read into place."""
        buf = bytearray(self.size)
        got = len(head)
        buf[:got] = head
        view, fd = memoryview(buf), self.rfd
        while got < self.size:
            k = os.readv(fd, [view[got:]])
            if k == 0:
                raise EOFError("the other end closed")
            got += k
        return buf

    def __getstate__(self):
        return (self.rx_holder, self.tx_holder, self.size, self.as_array)

    def __setstate__(self, state) -> None:
        self.__init__(*state)


_COUNT = struct.Struct("!I")
_SIZE = struct.Struct("!Q")
_NO_BUFFERS = _COUNT.pack(0)


class OutOfBand:
    """``Connection.send``/``recv`` with pickle protocol 5's out-of-band buffers (PEP 574): an object whose
    type supports it (a numpy array; ``bytes`` does not) is pickled without its buffer, which travels as a
    message of its own straight from the object's memory (``send_bytes`` of a ``PickleBuffer.raw()`` view)
    and is received into a new ``bytearray`` of its size (``recv_bytes_into``: no copy beyond the read), so
    the array that comes out is writable. Three or more messages per object (sizes, pickle, buffers): more
    calls for small payloads, one copy fewer on each side for large arrays. An object without out-of-band
    buffers (``bytes``) goes as one message and takes the short path both ways, as the PEP's loop does
    (selfcheck's hand loop): on a VM whose round trips are mostly wake-ups, ~0.4 µs more Python per
    message made round trips ~5 % *faster* (``tools/wake_work.py``), so the codec's work is kept equal to
    the user's. Pickles (for spawn peers) as its ``Connection``."""

    __slots__ = ("conn",)

    def __init__(self, conn):
        self.conn = conn

    def send(self, obj) -> None:
        bufs: list = []
        data = pickle.dumps(obj, protocol=5, buffer_callback=bufs.append)
        conn = self.conn
        if not bufs:
            conn.send_bytes(_NO_BUFFERS + data)
            return
        views = [b.raw() for b in bufs]
        conn.send_bytes(_COUNT.pack(len(views)) + b"".join(_SIZE.pack(v.nbytes) for v in views) + data)
        for v in views:
            conn.send_bytes(v)

    def recv(self):
        conn = self.conn
        head = conn.recv_bytes()
        (n,) = _COUNT.unpack_from(head)
        if not n:
            return pickle.loads(memoryview(head)[_COUNT.size:])
        sizes = [_SIZE.unpack_from(head, _COUNT.size + i * _SIZE.size)[0] for i in range(n)]
        data = memoryview(head)[_COUNT.size + n * _SIZE.size:]
        buffers = []
        for size in sizes:
            buf = bytearray(size)
            conn.recv_bytes_into(buf)
            buffers.append(buf)
        return pickle.loads(data, buffers=buffers)

    def __getstate__(self):
        return self.conn

    def __setstate__(self, conn) -> None:
        self.conn = conn
