"""multiprocessing.Lock under contention (lock).

One benchmark per case of the chosen preset; see bench/conftest.py and ipcbench/sessions.py for what
one timed operation is."""

FAMILY = "sync"


def test_locks(ipcbench_case, case):
    ipcbench_case(case)
