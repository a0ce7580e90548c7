"""Mechanisms of families that no other module here claims (a new family, or one from
IPCBENCH_PLUGINS): they run here until they get a module of their own. Deselected when there are none."""

import re
from pathlib import Path

import pytest

CLAIMED = sorted({m.group(1) for p in Path(__file__).parent.glob("test_*.py")
                  for m in re.finditer(r"^FAMILY\s*=\s*[\"'](\w+)[\"']", p.read_text(), re.M)})
pytestmark = pytest.mark.ipcbench_cases(exclude_families=CLAIMED)


def test_other(ipcbench_case, case):
    ipcbench_case(case)
