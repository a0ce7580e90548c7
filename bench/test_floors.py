"""The floors: os_pipe (a pair of os.pipe) and socketpair, raw bytes with a length and no pickle; roundtrip
and stream. What a mechanism costs beyond moving its bytes is its figure against its floor's.

One benchmark per case of the chosen preset (``--ipcbench-preset`` / ``IPCBENCH_PRESET``); what one timed
operation is: ``ipcbench/measure/sessions.py``, and each benchmark's ``extra_info["op"]``."""

import pytest

FAMILY = "floor"
pytestmark = pytest.mark.ipcbench_cases(families=FAMILY)


def test_floors(ipcbench_case, case):
    ipcbench_case(case)
