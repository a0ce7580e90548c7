"""Mechanisms that misbehave on purpose, loaded through IPCBENCH_PLUGINS by the `plugin_env` fixture.

Plain declarations: they use the real roundtrip pattern and its real echo peer, with a pipe channel whose
peer end misbehaves inside the echo peer process (or, for ``test_refuse``, a channel maker that refuses).
"""

import os
import time

from ipcbench.measure.channels import Endpoint
from ipcbench.measure.harness import RoundFailed
from ipcbench.measure.mechanisms import Mechanism


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
