"""``simple_queue`` (multiprocessing.SimpleQueue: a pipe and a lock, pickled in the caller, no feeder thread)
and ``joinable_queue`` (multiprocessing.JoinableQueue: a Queue whose consumer calls ``task_done()`` for
every item)."""

from ..channels import ConsumeEnd, Endpoint, one_way_maxsize
from . import Mechanism


def _simple(rnd, bounded: bool):
    # SimpleQueue has no maxsize; put() writes to the pipe itself, so a full pipe holds the producer back:
    # it cannot run ahead of delivery the way an unbounded Queue's feeder thread lets put() do.
    if bounded:
        rnd.channel_params["maxsize"] = "pipe buffer"
        q = rnd.ctx.SimpleQueue()
        rnd.stack.callback(q.close)
        return Endpoint(q, q, "get", "put"), Endpoint(q, q, "get", "put")
    a, b = rnd.ctx.SimpleQueue(), rnd.ctx.SimpleQueue()
    rnd.stack.callback(a.close)
    rnd.stack.callback(b.close)
    return Endpoint(b, a, "get", "put"), Endpoint(a, b, "get", "put")


def _joinable(rnd, bounded: bool):
    if bounded:
        q = rnd.ctx.JoinableQueue(one_way_maxsize(rnd))
        rnd.stack.callback(_close, q)
        return Endpoint(ConsumeEnd(q), q, "recv", "put"), Endpoint(ConsumeEnd(q), q, "recv", "put")
    a, b = rnd.ctx.JoinableQueue(), rnd.ctx.JoinableQueue()
    for q in (a, b):
        rnd.stack.callback(_close, q)
    return Endpoint(ConsumeEnd(b), a, "recv", "put"), Endpoint(ConsumeEnd(a), b, "recv", "put")


def _close(q) -> None:
    q.cancel_join_thread()
    q.close()


MECHANISMS = [
    Mechanism("simple_queue", "queue", "multiprocessing.SimpleQueue: put/get pickled in the caller, no feeder thread",
              patterns=("roundtrip", "stream", "fanin"), make_channel=_simple),
    Mechanism("joinable_queue", "queue", "multiprocessing.JoinableQueue: put, then get + task_done per item",
              patterns=("roundtrip", "stream", "fanin"), make_channel=_joinable),
]
