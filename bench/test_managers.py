"""Manager proxies: manager_dict and manager_list (rpc), manager_queue (roundtrip, fanin).

One benchmark per case of the chosen preset (``--ipcbench-preset`` / ``IPCBENCH_PRESET``); what one timed
operation is: ``ipcbench/measure/sessions.py``, and each benchmark's ``extra_info["op"]``."""

import pytest

FAMILY = "manager"
pytestmark = pytest.mark.ipcbench_cases(families=FAMILY)


def test_managers(ipcbench_case, case):
    ipcbench_case(case)
