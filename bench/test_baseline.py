"""The baseline: thread_queue (queue.Queue between threads of one process); roundtrip, stream and fanin. What
the same exchange costs without crossing a process boundary.

One benchmark per case of the chosen preset (``--ipcbench-preset`` / ``IPCBENCH_PRESET``); what one timed
operation is: ``ipcbench/measure/sessions.py``, and each benchmark's ``extra_info["op"]``."""

import pytest

FAMILY = "baseline"
pytestmark = pytest.mark.ipcbench_cases(families=FAMILY)


def test_baseline(ipcbench_case, case):
    ipcbench_case(case)
