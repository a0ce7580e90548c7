"""The floors: raw bytes between processes with no pickling and no multiprocessing framing, the least an
IPC mechanism can cost on this machine. ``os_pipe``: a pair of ``os.pipe()``s (one per direction);
``socketpair``: ``socket.socketpair()`` (AF_UNIX, as ``Pipe()`` uses). Both carry a payload as an 8-byte
length and the bytes (``channels.RawFd``); a mechanism's figure beside its floor's is what pickling and
multiprocessing's own framing cost. They run roundtrip and stream (fanin needs a tag per message, which
would be a protocol of its own)."""

import socket

from ..channels import Endpoint, RawFd
from . import Mechanism


def _os_pipe(rnd, bounded: bool):
    r1, w1 = rnd.ctx.Pipe(duplex=False)     # parent -> peer; Connections hold the fds (and travel to peers)
    r2, w2 = rnd.ctx.Pipe(duplex=False)     # peer -> parent
    for c in (r1, w1, r2, w2):
        rnd.stack.callback(c.close)
    if bounded:                              # stream: the peer writes w1, the parent reads r1
        return Endpoint(RawFd(r1, w2), RawFd(r1, w2)), Endpoint(RawFd(r2, w1), RawFd(r2, w1))
    return Endpoint(RawFd(r2, w1), RawFd(r2, w1)), Endpoint(RawFd(r1, w2), RawFd(r1, w2))


def _socketpair(rnd, bounded: bool):
    a, b = socket.socketpair()
    rnd.stack.callback(a.close)
    rnd.stack.callback(b.close)
    return Endpoint(RawFd(a, a), RawFd(a, a)), Endpoint(RawFd(b, b), RawFd(b, b))


MECHANISMS = [
    Mechanism("os_pipe", "floor", "os.pipe() pair: raw bytes with a length, no pickle (the floor of pipe_simplex)",
              patterns=("roundtrip", "stream"), make_channel=_os_pipe),
    Mechanism("socketpair", "floor", "socket.socketpair(): raw bytes with a length, no pickle (the floor of "
              "pipe_duplex)", patterns=("roundtrip", "stream"), make_channel=_socketpair),
]
