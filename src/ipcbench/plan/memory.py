"""How much memory one round of a case may need, so that ``ipcbench run`` refuses, before anything runs,
a case the machine cannot hold (issue 14; measured in ``docs/memory.md``).

Rounds run one at a time, so a run needs what its largest case needs::

    need(P, w) = B + Q + P x (a + b x w)

    P  the payload size; w the case's workers for fanin, rpc, dispatch and contention, 1 otherwise
    B  the process tree without payload (runner, warm launcher, the round's processes):
       80 MiB + 2 MiB x (w + 2) with fork, 80 MiB + 12 MiB x (w + 2) with spawn or forkserver
    Q  64 MiB: what a bounded stream/fanin channel may hold (``channels.bounded_size``)
    a = 8, b = 6.5: the worst case over every mechanism and pattern, payloads 1-128 MiB, every start
       method (manager_queue fanin sets b: the Manager's server keeps every queued item as a copy)

Every one of 230 measured rounds peaked at or below 0.84 of this bound (the exact peak of the round's
memory cgroup). A case is refused when its bound is above ``SHARE`` (80 %) of the machine's memory.

An ``object`` payload (``measure.payloads``) takes ~7.3 times its pickled size in memory (tracemalloc,
64 KiB - 16 MiB), so P counts ``KIND_FACTOR`` times its size for that kind, every copy as if unpickled
(an upper bound, not measured like the rest).
"""

from __future__ import annotations

from .cases import MULTI_WORKER_PATTERNS, PAYLOADLESS_PATTERNS, Case

MiB = 1024**2
BASE = 80 * MiB
PER_PROCESS = {"fork": 2 * MiB}        # spawn and forkserver: a fresh interpreter per peer
PER_FRESH_PROCESS = 12 * MiB
CHANNEL = 64 * MiB
A, B = 8.0, 6.5
SHARE = 0.8
KIND_FACTOR = {"object": 7.5}


def workers_of(case: Case) -> int:
    return case.workers if case.pattern in MULTI_WORKER_PATTERNS else 1


def need(case: Case) -> int:
    """Bytes one round of ``case`` may need at its peak (the bound above)."""
    w = workers_of(case)
    size = 0 if case.pattern in PAYLOADLESS_PATTERNS else case.payload_bytes * KIND_FACTOR.get(case.payload_kind, 1)
    base = BASE + PER_PROCESS.get(case.start_method, PER_FRESH_PROCESS) * (w + 2)
    return int(base + CHANNEL + size * (A + B * w))


def largest(cases) -> tuple[Case, int] | None:
    """The case that needs the most, and its need (None for no cases)."""
    return max(((c, need(c)) for c in cases), key=lambda item: item[1], default=None)
