"""multiprocessing.Lock under contention (lock).

One benchmark per case of the chosen preset (``--ipcbench-preset`` / ``IPCBENCH_PRESET``); what one timed
operation is: ``ipcbench/measure/sessions.py``, and each benchmark's ``extra_info["op"]``."""

import pytest

FAMILY = "sync"
pytestmark = pytest.mark.ipcbench_cases(families=FAMILY)


def test_locks(ipcbench_case, case):
    ipcbench_case(case)
