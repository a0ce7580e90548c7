"""``pool_apply`` and ``pool_apply_async``: multiprocessing.Pool dispatching an echo task."""

from . import Mechanism

MECHANISMS = [
    Mechanism("pool_apply", "pool", "Pool.apply: one task at a time, the caller waits for each result",
              patterns=("dispatch",), dispatch="apply"),
    Mechanism("pool_apply_async", "pool",
              "Pool.apply_async: up to 4 tasks per worker in flight (<= 256 MiB), results via callback",
              patterns=("dispatch",), dispatch="apply_async"),
]
