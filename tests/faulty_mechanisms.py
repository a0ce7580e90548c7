"""Mechanisms that misbehave on purpose, loaded through IPCBENCH_PLUGINS by the `plugin_env` fixture.

They reuse the real pipe channel and the real roundtrip pattern; only the peer misbehaves.
"""

import os
import time
from functools import partial

from ipcbench.measure import patterns
from ipcbench.measure.channels import Endpoint
from ipcbench.measure.harness import RoundFailed
from ipcbench.measure.mechanisms import Mechanism


def _pipe(rnd, bounded):
    a, b = rnd.ctx.Pipe()
    rnd.stack.callback(a.close)
    rnd.stack.callback(b.close)
    return Endpoint(a, a), Endpoint(b, b)


def _crashing_echo(end):
    for _ in range(3):
        end.send(end.recv())
    os._exit(3)


def _raising_echo(end):
    end.recv()
    raise ValueError("bad peer on purpose")


def _silent_peer(end):
    end.recv()
    time.sleep(3600)


def _roundtrip_with(peer, rnd):
    original = patterns._echo_peer
    patterns._echo_peer = peer       # only inside this orchestrator process
    try:
        return patterns.roundtrip(rnd, _pipe)
    finally:
        patterns._echo_peer = original


def _refuse(rnd):
    raise RoundFailed("refused on purpose")


MECHANISMS = [
    Mechanism("test_crash", "test", "echo peer exits with status 3 after 3 messages",
              {"roundtrip": partial(_roundtrip_with, _crashing_echo)}),
    Mechanism("test_raise", "test", "echo peer raises ValueError",
              {"roundtrip": partial(_roundtrip_with, _raising_echo)}),
    Mechanism("test_hang", "test", "peer never answers", {"roundtrip": partial(_roundtrip_with, _silent_peer)}),
    Mechanism("test_refuse", "test", "pattern fails at once", {"roundtrip": _refuse}),
]
