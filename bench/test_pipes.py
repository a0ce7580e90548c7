"""Pipes: pipe_duplex (a socketpair) and pipe_simplex (os.pipe pairs); roundtrip and stream.

One benchmark per case of the chosen preset (``--ipcbench-preset`` / ``IPCBENCH_PRESET``); what one timed
operation is: ``ipcbench/measure/sessions.py``, and each benchmark's ``extra_info["op"]``."""

import pytest

FAMILY = "pipe"
pytestmark = pytest.mark.ipcbench_cases(families=FAMILY)


def test_pipes(ipcbench_case, case):
    ipcbench_case(case)
