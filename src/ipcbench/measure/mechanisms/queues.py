"""``queue``: multiprocessing.Queue (a pipe, a lock, and a feeder thread that pickles in the background)."""

from ..channels import one_way_maxsize, queue_pair, shared_queue
from . import Mechanism


def _channel(rnd, bounded: bool):
    if bounded:                 # one queue, one way: Queue() as users make it (channels.one_way_maxsize)
        q = rnd.ctx.Queue(one_way_maxsize(rnd))
        rnd.stack.callback(_close, q)
        return shared_queue(q)
    parent, child = queue_pair(rnd.ctx.Queue)
    for q in (parent.rx, parent.tx):
        rnd.stack.callback(_close, q)
    return parent, child


def _close(q) -> None:
    # Everything was drained by the pattern; never block teardown on a feeder thread.
    q.cancel_join_thread()
    q.close()


MECHANISMS = [
    Mechanism("queue", "queue", "multiprocessing.Queue: put/get, pickled by a feeder thread",
              patterns=("roundtrip", "stream", "fanin"), make_channel=_channel),
]
