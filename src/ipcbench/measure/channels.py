"""``Endpoint``: one side of a message channel, with ``send``/``recv`` bound straight to the mechanism's
own methods (``Connection.send``/``recv``, ``Queue.put``/``get``), so the timed loops call exactly what
a user would call, with no wrapper in between. Endpoints pickle (for spawn and forkserver peers) by
their underlying objects and re-bind on arrival.
"""

from __future__ import annotations


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


def bounded_size(payload_bytes: int) -> int:
    """maxsize of the queue in stream/fanin: <= 1000 items and <= 64 MiB of payload, at least 2.

    An unbounded Queue lets ``put`` run arbitrarily far ahead of delivery (a feeder thread does the real
    work), so a stream would measure how fast references are appended to a list.
    """
    return max(2, min(1000, (64 * 1024**2) // max(1, payload_bytes)))
