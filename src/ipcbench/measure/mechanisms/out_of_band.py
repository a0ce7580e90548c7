"""``pipe_duplex_oob``: ``Pipe()`` carrying pickle protocol 5 with out-of-band buffers (PEP 574,
``channels.OutOfBand``), beside ``pipe_duplex`` (in-band pickles): where an object's buffer can travel
without being copied into the pickle (a numpy array), how much does that save, and what does it cost for
small payloads? ``bytes`` payloads are pickled in-band by protocol 5 too (bytes has no out-of-band form),
so for them the variant measures only its extra messages."""

from ..channels import Endpoint, OutOfBand
from . import Mechanism


def _duplex_oob(rnd, bounded: bool):
    a, b = rnd.ctx.Pipe(duplex=True)
    rnd.stack.callback(a.close)
    rnd.stack.callback(b.close)
    return Endpoint(OutOfBand(a), OutOfBand(a)), Endpoint(OutOfBand(b), OutOfBand(b))


MECHANISMS = [
    Mechanism("pipe_duplex_oob", "pipe", "Pipe() with pickle protocol 5 out-of-band buffers (a numpy array's "
              "buffer sent as its own message, received in place)", patterns=("roundtrip", "stream"),
              make_channel=_duplex_oob),
]
