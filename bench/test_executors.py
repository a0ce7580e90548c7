"""Executors: process_pool_executor (ProcessPoolExecutor.submit of a batch, then result() each),
process_pool_executor_window (one future per worker in flight) and process_pool_executor_map; dispatch.

One benchmark per case of the chosen preset (``--ipcbench-preset`` / ``IPCBENCH_PRESET``); what one timed
operation is: ``ipcbench/measure/sessions.py``, and each benchmark's ``extra_info["op"]``."""

import pytest

FAMILY = "executor"
pytestmark = pytest.mark.ipcbench_cases(families=FAMILY)


def test_executors(ipcbench_case, case):
    ipcbench_case(case)
