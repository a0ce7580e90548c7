"""``thread_queue``: ``queue.Queue`` between threads of one process, the baseline every IPC figure is drawn
beside (what the same exchange costs without crossing a process boundary: no pickling, no system call on
the fast path, but the GIL handed between threads). Its peers are threads of the round's process
(``peers="thread"``), pinned where a peer process would be; the case's start method does not apply."""

import queue

from ..channels import Endpoint, one_way_maxsize
from . import Mechanism


def _channel(rnd, bounded: bool):
    if bounded:
        q = queue.Queue(one_way_maxsize(rnd))
        return Endpoint(q, q, "get", "put"), Endpoint(q, q, "get", "put")
    a, b = queue.Queue(), queue.Queue()
    return Endpoint(b, a, "get", "put"), Endpoint(a, b, "get", "put")


MECHANISMS = [
    Mechanism("thread_queue", "baseline", "queue.Queue between threads of one process: the in-process baseline",
              patterns=("roundtrip", "stream", "fanin"), make_channel=_channel, peers="thread"),
]
