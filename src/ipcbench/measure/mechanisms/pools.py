"""``pool_apply`` and ``pool_apply_async``: multiprocessing.Pool dispatching an echo task."""

from . import Mechanism

MECHANISMS = [
    Mechanism("pool_apply", "pool", "Pool.apply: one task at a time, the caller waits for each result",
              patterns=("dispatch",), dispatch="apply"),
    Mechanism("pool_apply_async", "pool",
              "Pool.apply_async: up to 4 tasks per worker in flight (<= 256 MiB), results via callback",
              patterns=("dispatch",), dispatch="apply_async"),
]

MECHANISMS += [
    Mechanism("pool_map", "pool", "Pool.map of K echo tasks per call, default chunksize (ceil(K / 4 workers)); "
              "latency = one call, throughput = tasks/s", patterns=("dispatch",), dispatch="map"),
    Mechanism("pool_map_chunksize1", "pool", "Pool.map of K echo tasks per call, chunksize=1; latency = one call",
              patterns=("dispatch",), dispatch="map_chunksize1"),
    Mechanism("pool_imap", "pool", "Pool.imap of K echo tasks per call, consumed in full (its default chunksize is 1, "
              "so no separate chunksize-1 variant); latency = one call", patterns=("dispatch",), dispatch="imap"),
]
