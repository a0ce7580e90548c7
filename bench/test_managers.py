"""Manager proxies: manager_dict and manager_list (rpc), manager_queue (roundtrip, fanin).

One benchmark per case of the chosen preset; see bench/conftest.py and ipcbench/sessions.py for what
one timed operation is."""

FAMILY = "manager"


def test_managers(ipcbench_case, case):
    ipcbench_case(case)
