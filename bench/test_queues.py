"""multiprocessing.Queue: roundtrip, stream and fanin.

One benchmark per case of the chosen preset; see bench/conftest.py and ipcbench/sessions.py for what
one timed operation is."""

FAMILY = "queue"


def test_queues(ipcbench_case, case):
    ipcbench_case(case)
