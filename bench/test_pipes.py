"""Pipes: pipe_duplex (a socketpair) and pipe_simplex (os.pipe pairs); roundtrip and stream.

One benchmark per case of the chosen preset; see bench/conftest.py and ipcbench/sessions.py for what
one timed operation is."""

FAMILY = "pipe"


def test_pipes(ipcbench_case, case):
    ipcbench_case(case)
