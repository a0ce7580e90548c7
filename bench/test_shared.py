"""Shared memory carrying the payload: ``shared_memory`` (a SharedMemory segment of slots; roundtrip, stream,
fanin), ``sharedctypes_array`` and ``sharedctypes_array_nolock`` (an Array or RawArray per slot; roundtrip,
stream), each with a Pipe notifying and a Semaphore counting free slots.

One benchmark per case of the chosen preset (``--ipcbench-preset`` / ``IPCBENCH_PRESET``); what one timed
operation is: ``ipcbench/measure/sessions.py``, and each benchmark's ``extra_info["op"]``."""

import pytest

FAMILY = "shared"
pytestmark = pytest.mark.ipcbench_cases(families=FAMILY)


def test_shared(ipcbench_case, case):
    ipcbench_case(case)
