"""Mechanisms of families that no other module here claims (a new family, or one from
IPCBENCH_PLUGINS): they run here until they get a module of their own. Deselected when there are none."""

FAMILY = None


def test_other(ipcbench_case, case):
    ipcbench_case(case)
