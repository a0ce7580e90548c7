"""Distributed task queues: celery (a Redis broker and Celery prefork workers; dispatch). Its rounds start a
Redis server and a Celery worker each, which the pytest-benchmark front end has no session form for: its
cases are collected here and skipped with the reason; `ipcbench run -m celery` measures them
(docs/celery.md)."""

import pytest

FAMILY = "distributed"
pytestmark = pytest.mark.ipcbench_cases(families=FAMILY)


def test_distributed(ipcbench_case, case):
    ipcbench_case(case)
