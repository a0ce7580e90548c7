"""Pool dispatch: pool_apply (one task at a time), pool_apply_async (a batch submitted, then collected; also
with a callback), pool_apply_async_window (one task per worker in flight), pool_map, pool_imap.

One benchmark per case of the chosen preset (``--ipcbench-preset`` / ``IPCBENCH_PRESET``); what one timed
operation is: ``ipcbench/measure/sessions.py``, and each benchmark's ``extra_info["op"]``."""

import pytest

FAMILY = "pool"
pytestmark = pytest.mark.ipcbench_cases(families=FAMILY)


def test_pools(ipcbench_case, case):
    ipcbench_case(case)
