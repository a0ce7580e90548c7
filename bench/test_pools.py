"""Pool dispatch: pool_apply (one task at a time) and pool_apply_async (a window of tasks in flight).

One benchmark per case of the chosen preset; see bench/conftest.py and ipcbench/sessions.py for what
one timed operation is."""

FAMILY = "pool"


def test_pools(ipcbench_case, case):
    ipcbench_case(case)
