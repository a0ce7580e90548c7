"""The memory bound of one round (plan/memory.py, measured in docs/memory.md)."""

import pytest

from ipcbench.plan import memory
from ipcbench.plan.cases import Case

MiB = 1024**2


def case(mechanism, pattern, size, workers=1, method="fork"):
    return Case(mechanism, pattern, "bytes", size, workers, method, "spread")


def test_need_follows_the_documented_formula():
    # fork, fanin w4: 80 + 2 x 6 + 64 MiB + 16 MiB x (8 + 6.5 x 4)
    assert memory.need(case("manager_queue", "fanin", 16 * MiB, 4)) == (80 + 12 + 64) * MiB + 16 * MiB * 34
    # one-to-one patterns count one worker whatever the case says; spawn peers are fresh interpreters
    assert memory.need(case("pipe_duplex", "roundtrip", MiB, 1, "spawn")) == (80 + 12 * 3 + 64) * MiB + MiB * 14.5
    assert memory.workers_of(case("queue", "stream", 8, 4)) == 1
    # contention carries no payload
    assert memory.need(case("lock", "contention", 10**9, 2)) == (80 + 2 * 4 + 64) * MiB


@pytest.mark.parametrize("mech, pattern, size, workers, measured_mib", [
    # the closest measured rounds (cgroup peaks of docs/memory.md) stay under the bound
    ("manager_queue", "fanin", 16 * MiB, 4, 589.1),
    ("manager_queue", "fanin", 64 * MiB, 8, 2347.6),
    ("queue", "roundtrip", 128 * MiB, 1, 941.1),
    ("queue", "fanin", 64 * MiB, 8, 1278.7),
])
def test_measured_peaks_are_within_the_bound(mech, pattern, size, workers, measured_mib):
    assert measured_mib * MiB <= memory.need(case(mech, pattern, size, workers))


def test_largest_names_the_case_that_needs_most():
    cases = [case("pipe_duplex", "roundtrip", 64 * MiB), case("queue", "fanin", 64 * MiB, 2),
             case("lock", "contention", 0, 8)]
    worst, need = memory.largest(cases)
    assert worst == cases[1] and need == memory.need(cases[1])
    assert memory.largest([]) is None
