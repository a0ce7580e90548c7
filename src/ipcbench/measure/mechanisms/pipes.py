"""``pipe_duplex`` (``Pipe()``: a socketpair) and ``pipe_simplex`` (``Pipe(duplex=False)``: an os.pipe;
a pair of them for round trips)."""

from ..channels import Endpoint
from . import Mechanism


def _duplex(rnd, bounded: bool):
    a, b = rnd.ctx.Pipe(duplex=True)
    rnd.stack.callback(a.close)
    rnd.stack.callback(b.close)
    return Endpoint(a, a), Endpoint(b, b)


def _simplex(rnd, bounded: bool):
    r1, w1 = rnd.ctx.Pipe(duplex=False)   # parent -> peer
    r2, w2 = rnd.ctx.Pipe(duplex=False)   # peer -> parent
    for c in (r1, w1, r2, w2):
        rnd.stack.callback(c.close)
    # The stream pattern uses only the first pipe: parent end receives on r1, peer end sends on w1.
    if bounded:
        return Endpoint(r1, w1), Endpoint(r1, w1)
    return Endpoint(r2, w1), Endpoint(r1, w2)


MECHANISMS = [
    Mechanism("pipe_duplex", "pipe", "multiprocessing.Pipe(): a socketpair, send/recv pickled in the caller",
              patterns=("roundtrip", "stream"), make_channel=_duplex),
    Mechanism("pipe_simplex", "pipe", "multiprocessing.Pipe(duplex=False): an os.pipe per direction",
              patterns=("roundtrip", "stream"), make_channel=_simplex),
]
