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
    references to the one payload object, so the backlog costs little memory; the round's
    ``max_messages`` bounds it. Its latency samples are then the time behind the backlog the producer has
    built, which grows through the window (``params.latency_is``).
    """
    size = bounded_size(rnd.case.payload_bytes) if rnd.bounded_queues else 0
    rnd.channel_params["maxsize"] = size
    return size


def bounded_size(payload_bytes: int) -> int:
    """maxsize of a bounded one-way queue: <= 1000 items and <= 64 MiB of payload, at least 2. A
    Manager's (its server holds an unpickled copy of every item put, unlike a ``Queue``'s references),
    and every queue of a pytest-benchmark session (``Round.bounded_queues``)."""
    return max(2, min(1000, (64 * 1024**2) // max(1, payload_bytes)))


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


# A raw message: an 8-byte signed length, then that many bytes; a negative length is the end (None).
_LENGTH = struct.Struct("!q")
_ONE_WRITE = 64 * 1024      # up to this size, length and bytes go out in one system call
_pack, _unpack_from = _LENGTH.pack, _LENGTH.unpack_from
_END = _LENGTH.pack(-1)
_READ = 64 * 1024           # what one read asks for: a pipe's default capacity


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


class RawFd:
    """Bytes over a pipe's or a socket's file descriptors with no pickling: the floor a mechanism is drawn
    beside. ``send(data)`` writes the length and the bytes of any C-contiguous buffer (``bytes``, or a
    numpy array through the buffer protocol, ``memoryview(arr).cast("B")``: no copy) — one ``os.write`` up
    to 64 KiB, else the length then the buffer, looping on partial writes. ``recv()`` reads what the
    descriptor has (up to 64 KiB, one ``os.read``) and slices messages out of it (``bytes``, as an
    unpickled ``bytes`` payload is), so a small message costs one system call, as in the obvious user loop (``os.read(fd, 9)`` for a known 8-byte message); a message
    longer than what arrived goes into a new ``bytearray`` of its length, the rest read straight into it
    with ``os.readv`` (the least a receiver must do to own a message). With ``as_array`` (the ``numpy`` payload kind) ``recv`` hands that buffer out as a
    1-D uint8 ndarray, ``np.frombuffer`` (zero-copy, a fraction of a microsecond), so that the floor
    delivers what the pickling mechanisms beside it deliver; numpy is imported only then. ``None``
    travels as a negative length. The file descriptors are held by the objects given (``Connection``s or
    sockets), which multiprocessing duplicates into spawn and forkserver peers."""

    __slots__ = ("rx_holder", "tx_holder", "rfd", "wfd", "as_array", "_frombuffer", "_buf", "_pos")

    def __init__(self, rx_holder, tx_holder, as_array: bool = False):
        self.rx_holder, self.tx_holder = rx_holder, tx_holder
        self.rfd, self.wfd = rx_holder.fileno(), tx_holder.fileno()
        self.as_array = as_array
        self._frombuffer = None
        self._buf, self._pos = b"", 0      # bytes read but not yet handed out, from _pos on
        if as_array:
            import numpy as np

            self._frombuffer = partial(np.frombuffer, dtype=np.uint8)

    def send(self, data) -> None:
        fd = self.wfd
        if data is None:
            os.write(fd, _END)
            return
        if type(data) is not bytes and type(data) is not bytearray:   # an ndarray: its buffer, no copy
            data = memoryview(data).cast("B")
        n = len(data)
        if n <= _ONE_WRITE:
            msg = _pack(n) + data
            k = os.write(fd, msg)
            if k != len(msg):
                _write_all(fd, memoryview(msg)[k:])
        else:
            os.write(fd, _pack(n))
            _write_all(fd, memoryview(data))

    def recv(self):
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 8:
            buf, pos = self._more(buf, pos)
        (n,) = _unpack_from(buf, pos)
        pos += 8
        if n < 0:
            self._buf, self._pos = buf, pos
            return None
        end = pos + n
        if end <= len(buf):
            self._buf, self._pos = buf, end
            if self._frombuffer is None:
                return buf[pos:end]
            return self._frombuffer(bytearray(memoryview(buf)[pos:end]))   # a writable array, as unpickled
        msg = self._rest(buf[pos:], n)
        self._buf, self._pos = b"", 0
        return msg if self._frombuffer is None else self._frombuffer(msg)

    def _more(self, buf: bytes, pos: int) -> tuple[bytes, int]:
        """Read until at least a length (8 bytes) is buffered."""
        buf = buf[pos:]
        while len(buf) < 8:
            chunk = os.read(self.rfd, _READ)
            if not chunk:
                raise EOFError("the other end closed")
            buf += chunk
        return buf, 0

    def _rest(self, head: bytes, n: int) -> bytearray:
        """A message of ``n`` bytes whose first bytes (``head``) have arrived: the rest read into place."""
        buf = bytearray(n)
        got = len(head)
        buf[:got] = head
        view, fd = memoryview(buf), self.rfd
        while got < n:
            k = os.readv(fd, [view[got:]])
            if k == 0:
                raise EOFError("the other end closed")
            got += k
        return buf

    def __getstate__(self):
        return (self.rx_holder, self.tx_holder, self.as_array)

    def __setstate__(self, state) -> None:
        self.__init__(*state)


_COUNT = struct.Struct("!I")
_SIZE = struct.Struct("!Q")


class OutOfBand:
    """``Connection.send``/``recv`` with pickle protocol 5's out-of-band buffers (PEP 574): an object whose
    type supports it (a numpy array; ``bytes`` does not) is pickled without its buffer, which travels as a
    message of its own straight from the object's memory (``send_bytes`` of a ``PickleBuffer.raw()`` view)
    and is received into a new ``bytearray`` of its size (``recv_bytes_into``: no copy beyond the read), so
    the array that comes out is writable. Three or more messages per object (sizes, pickle, buffers): more
    calls for small payloads, one copy fewer on each side for large arrays. Pickles (for spawn peers) as
    its ``Connection``."""

    __slots__ = ("conn",)

    def __init__(self, conn):
        self.conn = conn

    def send(self, obj) -> None:
        bufs: list = []
        data = pickle.dumps(obj, protocol=5, buffer_callback=bufs.append)
        views = [b.raw() for b in bufs]
        conn = self.conn
        conn.send_bytes(_COUNT.pack(len(views)) + b"".join(_SIZE.pack(v.nbytes) for v in views) + data)
        for v in views:
            conn.send_bytes(v)

    def recv(self):
        conn = self.conn
        head = conn.recv_bytes()
        (n,) = _COUNT.unpack_from(head)
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
