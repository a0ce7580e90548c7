"""``process_pool_executor`` (``concurrent.futures.ProcessPoolExecutor.submit``, a window of futures in
flight, as ``pool_apply_async``) and ``process_pool_executor_map`` (``.map`` of K tasks per call, its
default chunksize 1): the standard library's other process pool, with the case's start method."""

from . import Mechanism

MECHANISMS = [
    Mechanism("process_pool_executor", "executor",
              "ProcessPoolExecutor.submit: up to 4 futures per worker in flight (<= 256 MiB), done callbacks",
              patterns=("dispatch",), dispatch="executor_submit"),
    Mechanism("process_pool_executor_map", "executor",
              "ProcessPoolExecutor.map of K echo tasks per call (chunksize 1); latency = one call",
              patterns=("dispatch",), dispatch="executor_map"),
]
