"""multiprocessing.Pool dispatching an echo task: ``apply``, the ``apply_async`` forms, ``map``, ``imap``.

``pool_apply_async`` is what users write (the seed's usage): submit a batch of tasks, then ``get()`` each;
``pool_apply_async_callback`` collects them with a callback instead; ``pool_apply_async_window`` keeps one
task per worker in flight, submitting the next as each completes, and so has a per-task latency to set
beside ``pool_apply``'s at the same concurrency (one worker). The batch size K and the window are recorded
in each round's ``params``.
"""

from . import Mechanism

MECHANISMS = [
    Mechanism("pool_apply", "pool", "Pool.apply: one task at a time, the caller waits for each result",
              patterns=("dispatch",), dispatch="apply"),
    Mechanism("pool_apply_async", "pool",
              "Pool.apply_async as users write it: submit K tasks (1,024, <= 32 MiB), then get() each; "
              "latency = one batch", patterns=("dispatch",), dispatch="apply_async"),
    Mechanism("pool_apply_async_callback", "pool",
              "Pool.apply_async(callback=...): submit K tasks, collect by callback, wait for all; "
              "latency = one batch", patterns=("dispatch",), dispatch="apply_async_callback"),
    Mechanism("pool_apply_async_window", "pool",
              "Pool.apply_async keeping one task per worker in flight (the next submitted as one completes); "
              "latency = one task", patterns=("dispatch",), dispatch="apply_async_window"),
]

MECHANISMS += [
    Mechanism("pool_map", "pool", "Pool.map of K echo tasks per call, default chunksize (ceil(K / 4 workers)); "
              "latency = one call, throughput = tasks/s", patterns=("dispatch",), dispatch="map"),
    Mechanism("pool_map_chunksize1", "pool", "Pool.map of K echo tasks per call, chunksize=1; latency = one call",
              patterns=("dispatch",), dispatch="map_chunksize1"),
    Mechanism("pool_imap", "pool", "Pool.imap of K echo tasks per call, consumed in full (its default chunksize is 1, "
              "so no separate chunksize-1 variant); latency = one call", patterns=("dispatch",), dispatch="imap"),
]
