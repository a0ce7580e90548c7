"""The floors: raw bytes between processes with no pickling and no multiprocessing framing, the least an
IPC mechanism can cost on this machine. ``os_pipe``: a pair of ``os.pipe()``s (one per direction);
``socketpair``: ``socket.socketpair()`` (AF_UNIX, as ``Pipe()`` uses). Both carry a payload as a 1-byte
mark and the bytes, every message of a round the payload's size, as a user who knows the size writes it
(``channels.RawFd``); a mechanism's figure beside its floor's is what pickling and
multiprocessing's own framing cost. They run roundtrip and stream (fanin needs a tag per message, which
would be a protocol of its own).

Payload kinds: ``bytes`` and ``numpy`` (the array's buffer is sent as it is, and received into a new
buffer handed out as an ndarray, ``np.frombuffer``: zero-copy, so the floor delivers an array as the
pickling mechanisms do); not ``object``, which has no bytes without pickling."""

import socket

from ..channels import Endpoint, RawFd
from . import Mechanism


def _end(rnd, rx, tx) -> Endpoint:
    """One end reading ``rx`` and writing ``tx``; in a round of numpy payloads it receives arrays."""
    as_array, size = rnd.case.payload_kind == "numpy", rnd.case.payload_bytes
    return Endpoint(RawFd(rx, tx, size, as_array), RawFd(rx, tx, size, as_array))


def _os_pipe(rnd, bounded: bool):
    r1, w1 = rnd.ctx.Pipe(duplex=False)     # parent -> peer; Connections hold the fds (and travel to peers)
    r2, w2 = rnd.ctx.Pipe(duplex=False)     # peer -> parent
    for c in (r1, w1, r2, w2):
        rnd.stack.callback(c.close)
    if bounded:                              # stream: the peer writes w1, the parent reads r1
        return _end(rnd, r1, w2), _end(rnd, r2, w1)
    return _end(rnd, r2, w1), _end(rnd, r1, w2)


def _socketpair(rnd, bounded: bool):
    a, b = socket.socketpair()
    rnd.stack.callback(a.close)
    rnd.stack.callback(b.close)
    return _end(rnd, a, a), _end(rnd, b, b)


RAW_KINDS = ("bytes", "numpy")     # buffers; an object payload has no bytes without pickling

MECHANISMS = [
    Mechanism("os_pipe", "floor", "os.pipe() pair: raw fixed-size messages, no pickle (the floor of pipe_simplex)",
              patterns=("roundtrip", "stream"), make_channel=_os_pipe, payload_kinds=RAW_KINDS),
    Mechanism("socketpair", "floor", "socket.socketpair(): raw fixed-size messages, no pickle (the floor of "
              "pipe_duplex)", patterns=("roundtrip", "stream"), make_channel=_socketpair,
              payload_kinds=RAW_KINDS),
]
