"""Shared memory carrying the payload, with a light notification beside it.

``shared_memory``: a ``multiprocessing.shared_memory.SharedMemory`` segment cut into slots of the payload's
size (roundtrip, stream, fanin). ``sharedctypes_array``: one ``multiprocessing.Array('c', size)`` per slot,
the synchronized wrapper, so every access takes the array's lock; ``sharedctypes_array_nolock``: one
``multiprocessing.RawArray('c', size)`` per slot, no lock (roundtrip and stream).

One direction of a channel is a *link*: the slots, a ``Pipe(duplex=False)`` that carries a 16-byte
notification per message (``send_bytes`` of the slot, a tag and the length; slot -1 is the end, ``None``),
and a ``Semaphore`` that counts free slots (flow control: a sender never overwrites a slot the receiver has
not copied out yet). ``send(payload)`` takes a free slot (``acquire``), copies the payload into it and
notifies; ``recv()`` waits for a notification, copies the bytes out of the slot, gives the slot back
(``release``) and returns the copy. A round trip uses two links of one slot each and no semaphore
(``NoFlowControl``): the echo answers only after it has copied the request out, and the reply is what
frees the slot, as in the user's loop (a semaphore there cost ~2-3 µs per round trip for nothing); a stream one link of
``stream_slots()`` slots (2 to 8, at most 64 MiB together: the producer may run a few messages ahead, as a
pipe's buffer lets it, and warm-up touches every slot in the quick and full presets); fanin one link in
which each producer, by the index of its ``(index, payload)`` messages, has slots and a semaphore of its
own, and all notify on the one pipe (16 bytes, one ``write`` below PIPE_BUF: atomic on a POSIX pipe, so
no write lock).

**Copy out, not a view: the crux of this mechanism's honesty.** ``recv`` returns ``bytes`` copied out of
the slot (``bytes(shm.buf[off:off + n])``; ``arr.raw`` for the arrays), as every other channel here
returns an object the receiver owns. A zero-copy ``memoryview`` would measure something no receiver can
use as a message: the slot goes back to the sender for the next message, so a receiver that keeps the
view has its data overwritten under it, and one that must keep the slot holds the sender back for as long
as it works on the data, which is a protocol of the application's own, not of the mechanism. It would
also be a figure for nothing: the stream's consumer drops what it receives, so with a view no byte of a
1 MiB payload would ever be read on the receiving side, while a pipe's receiver has copied all of them.
What a user pays is counted instead: one copy in (``buf[off:off + n] = payload``, a ``memcpy``), one copy
out, the notification and the semaphore. Against ``pipe_duplex`` that is two ``memcpy`` calls instead of
pickling plus the kernel's two copies through a socket, and the same wake-up per small message.

**Copy in for the arrays: ``arr.raw = payload``**, the ``c_char`` array's documented bulk setter (a
``memcpy``; through the synchronized wrapper it runs under the array's lock, as does the getter
``arr.raw``). ``arr[:] = payload`` reads as the obvious line, but ctypes assigns a slice item by item:
about 42 ms per MiB on the 2-core reference VM against 45 µs for ``.raw``, a trap rather than a mechanism.
The lock of ``sharedctypes_array`` is never contended (the notification already orders the accesses); its
figure beside ``sharedctypes_array_nolock`` is what taking and releasing the lock costs per access.

**Payload kinds: ``bytes`` and ``numpy``** (buffers; an ``object`` payload has no bytes without pickling).
An array goes in through its buffer (``memoryview(arr).cast("B")``, no copy) and comes out as a new,
writable 1-D ``uint8`` array copied out of the slot, the way numpy users read shared memory:
``np.frombuffer(shm.buf, np.uint8, n, offset).copy()`` (``np.frombuffer(arr.get_obj(), ...).copy()`` under
``get_lock()`` for the synchronized array), so the receiver owns it as it owns what pickling delivers.

**Life of a segment.** The maker creates it in the orchestrator (outside the clock), zero-fills it (no
timed write meets a page not yet allocated; ``RawArray`` zero-fills its memory too), and registers its
unlink with ``rnd.stack`` at once, so a round that ends in any way unlinks it; a round killed from outside
(deadline, Ctrl-C, a peer that died: the orchestrator then leaves with ``os._exit``) leaves the name to the
runner's ``/dev/shm`` clean-up, which knows the default ``psm_`` prefix. The ends pickle for spawn and
forkserver peers and attach by name on arrival (fork peers inherit the mapping). The resource tracker:
before Python 3.13, attaching registers the name with the resource tracker, but a peer's tracker is its
creator's (multiprocessing hands the tracker's pipe to every child, fork, spawn and forkserver alike), whose
registry is a set, so the second registration changes nothing and the creator's ``unlink`` unregisters the
name once. Unregistering after attach, the usual advice, is wrong here: it drops the creator's registration,
and the tracker then prints a ``KeyError`` traceback when the creator's ``unlink`` unregisters it again.
From Python 3.13 peers attach with ``track=False`` and register nothing.
"""

from __future__ import annotations

import struct
import sys
from multiprocessing import shared_memory

from ..channels import UNSTAMPED, Endpoint
from . import Mechanism

__all__ = ["KINDS", "ArrayLink", "NoFlowControl", "ShmLink", "TaggedShmLink", "stream_slots"]

KINDS = ("bytes", "numpy")         # buffers; an object payload has no bytes without pickling
SLOTS = 8                          # at most this many slots per stream link (per producer in fanin)
SLOTS_BYTES = 64 * 1024**2         # and at most this many bytes of slots per link (at least 2 slots)
_NOTE = struct.Struct("=iiq")      # slot (-1: the end), tag (the producer in fanin), length
_END = _NOTE.pack(-1, 0, 0)
_ZEROS = 1024**2                   # zero-fill in pieces of this size (no payload-sized temporary)


def stream_slots(payload_bytes: int, producers: int = 1) -> int:
    """Slots per producer of a stream or fanin link: up to ``SLOTS``, all producers' slots together at
    most ``SLOTS_BYTES``, and never fewer than 2 (a sender can fill one while the other is read)."""
    return max(2, min(SLOTS, SLOTS_BYTES // max(1, payload_bytes * producers)))


if sys.version_info >= (3, 13):
    def _attach(name: str) -> shared_memory.SharedMemory:
        return shared_memory.SharedMemory(name, track=False)
else:
    def _attach(name: str) -> shared_memory.SharedMemory:
        # registers the name with the creator's resource tracker, where it already is (see the docstring)
        return shared_memory.SharedMemory(name)


def _frombuffer(as_array: bool):
    """``np.frombuffer`` for links that hand out arrays (numpy imported only then), else None."""
    if not as_array:
        return None
    import numpy as np

    return np.frombuffer



def _copy_out(buf, frombuffer, off: int, n: int):
    """The ``n`` bytes at ``off`` of a slot, copied out before the slot is freed: ``bytes``, or with
    ``frombuffer`` (numpy payloads) a new array."""
    if frombuffer is None:
        return bytes(buf[off:off + n])
    return frombuffer(buf, "u1", n, off).copy()

class _Link:
    """One direction: ``nslots`` slots of ``slot`` bytes, the notification pipe, the free-slot semaphore;
    ``as_array``: ``recv`` hands out uint8 ndarrays instead of bytes. Each sending process keeps its own
    cursor (the next slot it fills)."""

    __slots__ = ("slot", "nslots", "note_r", "note_w", "free", "as_array", "frombuffer", "cursor")

    def __init__(self, slot: int, nslots: int, note_r, note_w, free, as_array: bool):
        self.slot, self.nslots = slot, nslots
        self.note_r, self.note_w, self.free = note_r, note_w, free
        self.as_array, self.frombuffer = as_array, _frombuffer(as_array)
        self.cursor = 0

    def _state(self) -> tuple:
        return (self.slot, self.nslots, self.note_r, self.note_w, self.free, self.as_array)

    def _too_big(self, n: int) -> ValueError:
        return ValueError(f"a message of {n} bytes does not fit a slot of {self.slot} bytes")


class ShmLink(_Link):
    """A link whose slots are one ``SharedMemory`` segment."""

    __slots__ = ("shm", "buf")

    def __init__(self, shm: shared_memory.SharedMemory, *rest):
        super().__init__(*rest)
        self.shm, self.buf = shm, shm.buf

    def send(self, data) -> None:
        if data is None:
            self.note_w.send_bytes(_END)
            return
        if type(data) is not bytes:                  # an ndarray (any buffer): its bytes, no copy
            data = memoryview(data).cast("B")
        n = len(data)
        if n > self.slot:
            raise self._too_big(n)
        self.free.acquire()
        i = self.cursor
        self.cursor = i + 1 if i + 1 < self.nslots else 0
        off = i * self.slot
        self.buf[off:off + n] = data
        self.note_w.send_bytes(_NOTE.pack(i, 0, n))

    def recv(self):
        i, _, n = _NOTE.unpack(self.note_r.recv_bytes())
        if i < 0:
            return None
        data = _copy_out(self.buf, self.frombuffer, i * self.slot, n)
        self.free.release()
        return data

    def __getstate__(self):
        return (self.shm.name, *self._state())

    def __setstate__(self, state) -> None:
        name, *rest = state
        ShmLink.__init__(self, _attach(name), *rest)


class TaggedShmLink(ShmLink):
    """The fanin link: messages are ``(tag, payload)``; producer ``index`` (``tag % UNSTAMPED``: the tag
    also says whether the send was stamped, channels.UNSTAMPED) fills its own ``nslots`` slots (from slot
    ``index * nslots``) and takes its own semaphore ``free[index]``; ``recv`` gives back ``(tag, payload)``."""

    __slots__ = ()

    def send(self, msg) -> None:
        if msg is None:
            self.note_w.send_bytes(_END)
            return
        tag, data = msg
        if type(data) is not bytes:
            data = memoryview(data).cast("B")
        n = len(data)
        if n > self.slot:
            raise self._too_big(n)
        producer = tag % UNSTAMPED          # the tag also says whether the send was stamped
        self.free[producer].acquire()
        c = self.cursor
        self.cursor = c + 1 if c + 1 < self.nslots else 0
        i = producer * self.nslots + c
        off = i * self.slot
        self.buf[off:off + n] = data
        self.note_w.send_bytes(_NOTE.pack(i, tag, n))

    def recv(self):
        i, tag, n = _NOTE.unpack(self.note_r.recv_bytes())
        if i < 0:
            return None
        data = _copy_out(self.buf, self.frombuffer, i * self.slot, n)
        self.free[tag % UNSTAMPED].release()
        return tag, data


class ArrayLink(_Link):
    """A link whose slots are ``c_char`` arrays of multiprocessing's shared heap (``Array`` or ``RawArray``):
    copied in with ``slot.raw = payload`` and out with ``slot.raw`` (under the array's lock when it has one;
    arrays out with ``np.frombuffer(...).copy()``, under ``get_lock()``)."""

    __slots__ = ("slots", "parts")

    def __init__(self, slots: list, *rest):
        super().__init__(*rest)
        self.slots = slots
        # for arrays out: (the lock or None, the ctypes array itself) per slot
        self.parts = [(s.get_lock(), s.get_obj()) if hasattr(s, "get_lock") else (None, s) for s in slots]

    def send(self, data) -> None:
        if data is None:
            self.note_w.send_bytes(_END)
            return
        if type(data) is not bytes:
            data = memoryview(data).cast("B")
        n = len(data)
        if n > self.slot:
            raise self._too_big(n)
        self.free.acquire()
        i = self.cursor
        self.cursor = i + 1 if i + 1 < self.nslots else 0
        self.slots[i].raw = data
        self.note_w.send_bytes(_NOTE.pack(i, 0, n))

    def recv(self):
        i, _, n = _NOTE.unpack(self.note_r.recv_bytes())
        if i < 0:
            return None
        if self.frombuffer is None:
            arr = self.slots[i]
            data = arr.raw if n == self.slot else arr[:n]
        else:
            lock, obj = self.parts[i]
            if lock is None:
                data = self.frombuffer(obj, "u1", n).copy()
            else:
                with lock:
                    data = self.frombuffer(obj, "u1", n).copy()
        self.free.release()
        return data

    def __getstate__(self):
        # Array and RawArray pickle only while a process is being started (multiprocessing's rule): the
        # ends go to peers as Process arguments, never through a channel.
        return (self.slots, *self._state())

    def __setstate__(self, state) -> None:
        ArrayLink.__init__(self, *state)


# -- makers ---------------------------------------------------------------------------------------------
def _discard(shm: shared_memory.SharedMemory) -> None:
    try:
        shm.unlink()
    finally:
        try:
            shm.close()
        except BufferError:          # a view of it still alive somewhere: the mapping goes with the process
            pass


def _segment(rnd, nbytes: int) -> shared_memory.SharedMemory:
    """A new segment (default ``psm_`` name), unlinked when the round closes, zero-filled."""
    shm = shared_memory.SharedMemory(create=True, size=nbytes)
    rnd.stack.callback(_discard, shm)
    zeros = bytes(min(nbytes, _ZEROS))
    buf = shm.buf
    for off in range(0, nbytes, len(zeros)):
        k = min(len(zeros), nbytes - off)
        buf[off:off + k] = zeros[:k]
    return shm


class NoFlowControl:
    """The free-slot semaphore of a round trip's links: not needed (the reply frees the slot)."""

    __slots__ = ()

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


def _note(rnd) -> tuple:
    r, w = rnd.ctx.Pipe(duplex=False)
    rnd.stack.callback(r.close)
    rnd.stack.callback(w.close)
    return r, w


def _shared_memory(rnd, bounded: bool):
    size = max(1, rnd.case.payload_bytes)       # a segment cannot be empty
    as_array = rnd.case.payload_kind == "numpy"

    def link(nslots: int) -> ShmLink:
        free = rnd.ctx.Semaphore(nslots) if bounded else NoFlowControl()
        return ShmLink(_segment(rnd, size * nslots), size, nslots, *_note(rnd), free, as_array)

    if not bounded:
        a, b = link(1), link(1)                  # parent -> peer, peer -> parent
        return Endpoint(b, a), Endpoint(a, b)
    if rnd.case.pattern == "fanin":
        producers = rnd.case.workers
        nslots = stream_slots(size, producers)
        free = [rnd.ctx.Semaphore(nslots) for _ in range(producers)]
        one = TaggedShmLink(_segment(rnd, size * nslots * producers), size, nslots, *_note(rnd), free, as_array)
    else:
        one = link(stream_slots(size))
    return Endpoint(one, one), Endpoint(one, one)


def _array_maker(locked: bool):
    def make_channel(rnd, bounded: bool):
        size = max(1, rnd.case.payload_bytes)
        as_array = rnd.case.payload_kind == "numpy"
        ctx = rnd.ctx

        def link(nslots: int) -> ArrayLink:
            slots = [ctx.Array("c", size) if locked else ctx.RawArray("c", size) for _ in range(nslots)]
            free = ctx.Semaphore(nslots) if bounded else NoFlowControl()
            return ArrayLink(slots, size, nslots, *_note(rnd), free, as_array)

        if not bounded:
            a, b = link(1), link(1)
            return Endpoint(b, a), Endpoint(a, b)
        one = link(stream_slots(size))
        return Endpoint(one, one), Endpoint(one, one)

    return make_channel


MECHANISMS = [
    Mechanism("shared_memory", "shared", "shared_memory.SharedMemory slots: payload copied in and out; a Pipe "
              "notifies, a Semaphore counts free slots", patterns=("roundtrip", "stream", "fanin"),
              make_channel=_shared_memory, payload_kinds=KINDS),
    Mechanism("sharedctypes_array", "shared", "multiprocessing.Array('c') per slot, its lock on every access: "
              ".raw in and out; Pipe + Semaphore", patterns=("roundtrip", "stream"),
              make_channel=_array_maker(locked=True), payload_kinds=KINDS),
    Mechanism("sharedctypes_array_nolock", "shared", "multiprocessing.RawArray('c') per slot, no lock: .raw in "
              "and out; Pipe + Semaphore", patterns=("roundtrip", "stream"), make_channel=_array_maker(locked=False),
              payload_kinds=KINDS),
]
