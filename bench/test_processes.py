"""Process start-up (process_start), per start method.

One benchmark per case of the chosen preset; see bench/conftest.py and ipcbench/sessions.py for what
one timed operation is."""

FAMILY = "process"


def test_processes(ipcbench_case, case):
    ipcbench_case(case)
