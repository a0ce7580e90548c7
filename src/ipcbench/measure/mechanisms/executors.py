"""``concurrent.futures.ProcessPoolExecutor``, the standard library's other process pool, with the case's
start method: ``process_pool_executor`` (submit K futures, then ``result()`` each, as users write it),
``process_pool_executor_window`` (one future per worker in flight, as ``pool_apply_async_window``) and
``process_pool_executor_map`` (``.map`` of K tasks per call, its default chunksize 1)."""

from . import Mechanism

MECHANISMS = [
    Mechanism("process_pool_executor", "executor",
              "ProcessPoolExecutor.submit as users write it: K futures (1,024, <= 32 MiB), then result() each; "
              "latency = one batch", patterns=("dispatch",), dispatch="executor_submit"),
    Mechanism("process_pool_executor_window", "executor",
              "ProcessPoolExecutor.submit keeping one future per worker in flight; latency = one task",
              patterns=("dispatch",), dispatch="executor_submit_window"),
    Mechanism("process_pool_executor_map", "executor",
              "ProcessPoolExecutor.map of K echo tasks per call (chunksize 1); latency = one call",
              patterns=("dispatch",), dispatch="executor_map"),
]
