"""Presets, declared as data: which grid to run, how long each round takes, and how many rounds a case
gets (``rounds`` every case, then more up to ``max_rounds`` while its round-level CI is wider than
+-``target_ci``, its rounds have taken less than ``case_budget_s``, the next round fits its share of the
run's ``run_budget_s`` and the target is within reach (``reach_factor``); see ``measure.runner.decide``).

``smoke``  every mechanism, exactly 2 short rounds: a check that all works. Every payload kind: bytes at
           8 B, 64 KiB and 256 KiB (``SMOKE_SIZES``) and workers {1, max}; numpy at 64 KiB and object at 1 KiB,
           with 1 worker (one size and worker count are enough to check that a kind works). 265 cases with
           the 28 mechanisms. With 1 MiB as its large size, 30 ms windows after a 20 ms warm-up and 3,000
           messages at most it took 60-80 s on the 2-vCPU VM (2026-12-02): 66.3 s at 13:49 UTC, idle, of
           which 30 s were dispatch rounds and 20 s the 1 MiB cases. Now (the large size 256 KiB: still
           above glibc's mmap threshold and four times a pipe's buffer; 20 ms windows after a 10 ms warm-up;
           at most 96 messages, which caps a batch of Pool tasks at 32) 53-55 s (13:52-13:54 UTC: run
           ``ipcbench run --preset smoke -o s.json`` on an idle machine): each of its 530
           rounds costs ~40 ms before it measures anything (a fresh process, its peers, placement).
``quick``  the default (``tox -e bench``): bytes payloads (``--payload-kinds`` adds the others), five
           sizes 8 B .. 1 MiB (``QUICK_SIZES``: the default sizes but 16 MiB, whose rounds take 0.4-3 s
           and which took half of a 374-case run's time), workers 1, 2, 4 ... max, 5 to 30 rounds of
           ~0.1 s, at most 4 s of rounds per case and 240 s for the whole run: the rounds beyond the
           minimum share what is left of the 240 s, and where the 240 s cannot pay even 5 rounds a case
           (the 28 mechanisms' 312 cases take 250-300 s at 5 rounds on the 2-vCPU VM, by its phase) the
           cases still to run get 4, or at least 3 (``floor_rounds``; ``measure.runner.affordable_min``).
``full``   every payload kind: bytes and numpy at 14 sizes up to 64 MiB, object at 64 B .. 1 MiB
           (``OBJECT_SIZES``); every start method, 5 to 30 longer rounds, at most 6 s of rounds per case.
           Long: watch the ETA.

``smoke`` and ``quick`` leave ``celery`` out unless it is named (``leaves_out``, ``LEFT_OUT``): its rounds
start a Redis server and a Celery worker each; ``full`` runs it where Celery and a Redis server are
installed. ``ipcbench run`` records every mechanism a run leaves out, and why, in the result file.

How the quick settings were chosen (2-vCPU VM): a ~0.06 s window cost ~0.1 s a round with the warm
launcher; the CI narrows with the number of rounds rather than their length. Unpinned, rounds of a case
varied by 10-40 % (sd of logs) and few cases reached +-5 % in 5 minutes; with placement ``spread`` the
median was 3-5 % in a quiet hour, so most of the 122 cases of the 10 seed mechanisms stopped "target
met" at 5 to 10 rounds (102 of 122 within +-5 % in 2 min 45 s, 2026-12-02). The run budget (not a
per-case budget alone) keeps the preset within its time whatever the machine's noise: what is left of
it once every case's minimum rounds are counted is shared by the rounds beyond them; "out of reach"
(rounds varying so much that +-5 % would take over 60 rounds) gives a hopeless case's time to the others.
With 28 mechanisms (312 cases) the minimum rounds alone take ~4.5 min: on 2026-12-02 10:14 UTC (idle, no
steal) the run took 4 min 49 s, every case stopped at 5 rounds, whose values varied by a median 14 %
(sd of logs), and 10 of 312 cases were within +-5 %. The +-5 % bar would take ~30 rounds a case here.
Since the warm-up runs at least 0.05 s (``warmup_min_s``: the start of a round is faster, or for a
stream slower, than its steady state; docs/measurement.md) the window is 0.05 s instead of 0.06, to keep
the minimum rounds within the 5 minutes: 282 s for ``ipcbench run --preset quick`` with 0.06 s windows
and the longer warm-up, 2026-12-02 16:50 UTC. Five rounds a case still took 315 s of run (5 min 55 s for
``tox -e bench`` in a fresh clone, 2026-12-03 02:55 UTC) in a slow phase of the VM whose windows ran
twice as long for the same operations as the day before: so the 240 s are now a budget for the whole
run's rounds (``floor_rounds=3``): ~250 s of rounds for ``tox -e bench`` with its ~26 s install and ~14 s
report, within the 5 minutes. The CI target, not the run time, is what this machine cannot meet: its
rounds vary by a median 9-16 % (sd of logs) by its phase, and the sd is as large between 0.05 s windows
of one round as between rounds (``python tools/variance_levels.py``, docs/measurement.md): +-5 % would
take 15-40 rounds a case, 3-8 times the preset's time.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import UserError
from .cases import (
    DEFAULT_PAYLOAD_KIND,
    DEFAULT_PLACEMENT,
    MULTI_WORKER_PATTERNS,
    PAYLOAD_KINDS,
    PAYLOAD_MIN_BYTES,
    PAYLOADLESS_PATTERNS,
    PLACEMENTS,
    Case,
    RoundSpec,
)

KiB, MiB = 1024, 1024**2
DEFAULT_SIZES = (8, 1 * KiB, 16 * KiB, 64 * KiB, 1 * MiB, 16 * MiB)
# quick: the default sizes but 16 MiB, which took 229 of the 483 s of rounds of a 374-case quick run
# (2026-12-02 10:04 UTC, 8 min 34 s in all); 16 MiB stays in full.
QUICK_SIZES = tuple(s for s in DEFAULT_SIZES if s < 16 * MiB)
# smoke: a small message, a pipe's buffer and a large one
SMOKE_SIZES = (8, 64 * KiB, 256 * KiB)
FULL_SIZES = (8, 64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 32 * KiB, 64 * KiB, 128 * KiB, 256 * KiB,
              1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB)
# object payloads: from the smallest they can be to 1 MiB (beyond, making, pickling and unpickling the
# records dominate: ~0.1 s per MiB each way on the 2-core VM, and they take ~7 x their size in memory)
OBJECT_SIZES = tuple(s for s in FULL_SIZES if 64 <= s <= 1 * MiB)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    payload_sizes: tuple[int, ...]
    workers: str            # "ends": {1, max}; "powers": 1, 2, 4 ... max
    start_methods: str      # "default" or "all"
    rounds: int             # rounds every case gets
    spec: RoundSpec
    max_rounds: int = 0     # more rounds, up to this many, while a case's CI is wider than target_ci
    case_budget_s: float | None = None   # ...and while its rounds have taken less than this
    run_budget_s: float | None = None    # ...and while that round fits the case's share of the run's time
    reach_factor: float | None = None    # ...and while its spread lets it reach target_ci in this x max_rounds
    floor_rounds: int | None = None      # fewer than `rounds`, down to this, where run_budget_s cannot pay them
    target_ci: float = 0.05              # +- relative half-width of the round-level 95 % CIs
    payload_kinds: tuple[str, ...] = (DEFAULT_PAYLOAD_KIND,)   # plan.cases.PAYLOAD_KINDS
    kind_sizes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)   # a kind's own sizes...
    kind_workers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # ...and worker counts
    leaves_out: tuple[str, ...] = ()     # mechanisms run only when named (-m), see LEFT_OUT

    def sizes_for(self, kind: str) -> tuple[int, ...]:
        """The payload sizes of ``kind`` in this preset (``kind_sizes``, else ``payload_sizes``)."""
        return self.kind_sizes.get(kind, self.payload_sizes)


PRESETS = {
    "smoke": Preset("smoke", "every mechanism, bytes at 3 sizes and workers {1, max}, numpy at 64 KiB and "
                    "object at 1 KiB with 1 worker, 2 short rounds",
                    SMOKE_SIZES, "ends", "default", 2,
                    RoundSpec(budget_s=0.02, min_messages=3, max_window_s=2.0, max_messages=96,
                              warmup=2, warmup_s=0.01),
                    max_rounds=2, payload_kinds=("bytes", "numpy", "object"),
                    kind_sizes={"numpy": (64 * KiB,), "object": (1 * KiB,)},
                    kind_workers={"numpy": (1,), "object": (1,)}, leaves_out=("celery",)),
    "quick": Preset("quick", "bytes payloads at 5 sizes 8 B..1 MiB, workers 1, 2, 4 ... max, 5-30 rounds "
                    "(until +-5 %, at most 4 s of rounds per case and 240 s for all; 3 or 4 where the "
                    "240 s cannot pay 5 each)",
                    QUICK_SIZES, "powers", "default", 5,
                    RoundSpec(budget_s=0.05, min_messages=5, max_window_s=3.0, max_messages=20_000,
                              warmup=10, warmup_s=0.05, warmup_min_s=0.05),
                    max_rounds=30, case_budget_s=4.0, run_budget_s=240.0, reach_factor=2.0, floor_rounds=3,
                    leaves_out=("celery",)),
    "full": Preset("full", "bytes and numpy at 14 sizes 8 B..64 MiB, object at 64 B..1 MiB, workers 1, 2, 4 "
                   "... max, every start method, 5-30 rounds (until +-5 %, at most 6 s of rounds per case)",
                   FULL_SIZES, "powers", "all", 5,
                   RoundSpec(budget_s=0.25, min_messages=10, max_window_s=8.0, max_messages=50_000,
                             warmup=20, warmup_s=0.1, warmup_min_s=0.05),
                   max_rounds=30, case_budget_s=6.0, reach_factor=2.0, payload_kinds=("bytes", "numpy", "object"),
                   kind_sizes={"object": OBJECT_SIZES}),
}


# Why a preset that ``leaves_out`` a mechanism does so; ``ipcbench run`` records it in the result file
# (``run["skipped_mechanisms"]``), as it does for a mechanism that cannot run on this machine (celery
# without Celery or a Redis server): never silently. Naming the mechanism (-m) runs it with any preset.
LEFT_OUT = {
    "celery": "each round starts its own Redis server and Celery worker, 1-2 s a round (~9 s at 16 MiB) on the "
              "2-vCPU reference VM, beyond this preset's time; name it (-m celery) or use --preset full",
}


class Declared(Protocol):
    """What a grid needs to know of a mechanism: its name and the patterns it supports, and optionally the
    payload kinds it carries, ``payload_kinds`` (absent: all) (``ipcbench.measure.mechanisms.Mechanism``
    is one; plan never imports measure)."""

    name: str
    patterns: Iterable[str]


def usable_cpus() -> int:
    """CPUs this process may run on (affinity), which is what the workers dimension goes up to."""
    if hasattr(os, "process_cpu_count"):
        n = os.process_cpu_count()
        if n:
            return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None


def worker_counts(style: str, max_workers: int | None = None) -> list[int]:
    top = max_workers or usable_cpus()
    if style == "ends":
        return sorted({1, top})
    counts, n = [], 1
    while n < top:
        counts.append(n)
        n *= 2
    return sorted({*counts, top})


def start_methods(style: str) -> list[str]:
    if style == "all":
        return list(mp.get_all_start_methods())
    return [mp.get_context().get_start_method()]


def check_start_methods(methods: list[str]) -> list[str]:
    known = mp.get_all_start_methods()
    for m in methods:
        if m not in known:
            raise UserError(f"start method {m!r} is not available here; choose from {', '.join(known)}")
    return methods


def check_placements(names: list[str]) -> list[str]:
    """The placements asked for (``[]``: the default one), each known, in the order given."""
    for name in names:
        if name not in PLACEMENTS:
            raise UserError(f"unknown placement {name!r}; choose from {', '.join(PLACEMENTS)}")
    return list(dict.fromkeys(names)) or [DEFAULT_PLACEMENT]


def check_payload_kinds(names: Sequence[str]) -> list[str]:
    """The payload kinds asked for (``[]``: the default one), each known, in the order given."""
    for name in names:
        if name not in PAYLOAD_KINDS:
            raise UserError(f"unknown payload kind {name!r}; choose from {', '.join(PAYLOAD_KINDS)}")
    return list(dict.fromkeys(names)) or [DEFAULT_PAYLOAD_KIND]


def build_grid(mechanisms: list[str] | None, patterns: list[str] | None, payload_sizes: list[int],
               workers: list[int], methods: list[str], payload_kinds: Sequence[str] | str = (DEFAULT_PAYLOAD_KIND,),
               *, catalogue: Sequence[Declared], placements: Sequence[str] = (DEFAULT_PLACEMENT,),
               kind_sizes: Mapping[str, Sequence[int]] | None = None,
               kind_workers: Mapping[str, Sequence[int]] | None = None) -> list[Case]:
    """Every (mechanism, pattern, payload kind, size, workers, start method, placement) the choices allow,
    in a stable order.

    ``catalogue``: the declared mechanisms, in order (``ipcbench.measure.mechanisms.all_mechanisms()``);
    ``mechanisms``: names to keep (None: all). ``payload_kinds``: the kinds (a name or a list), each with
    the sizes ``kind_sizes[kind]`` where given, else ``payload_sizes``, and the worker counts
    ``kind_workers[kind]`` where given, else ``workers``. A mechanism runs only the kinds it
    carries (its ``payload_kinds``), and a kind only its sizes from ``PAYLOAD_MIN_BYTES`` up (an ``object``
    payload cannot pickle to less). Patterns that move no payload run once with 0 bytes, kind ``bytes``;
    one-to-one patterns run with workers = 1.
    """
    kinds = check_payload_kinds([payload_kinds] if isinstance(payload_kinds, str) else list(payload_kinds))
    kind_sizes, kind_workers = kind_sizes or {}, kind_workers or {}
    by_name = {m.name: m for m in catalogue}
    for name in mechanisms or ():
        if name not in by_name:
            raise UserError(f"unknown mechanism {name!r}; known: {', '.join(by_name)} (see `ipcbench list`)")
    mechs = [by_name[m] for m in mechanisms] if mechanisms else list(catalogue)
    wanted = set(patterns) if patterns else None
    cases = []
    for method in methods:
        for placement in placements:
            for mech in mechs:
                for pattern in mech.patterns:
                    if wanted is not None and pattern not in wanted:
                        continue
                    for kind, size in _payloads(mech, pattern, kinds, payload_sizes, kind_sizes):
                        ws = kind_workers.get(kind, workers) if pattern in MULTI_WORKER_PATTERNS else [1]
                        for w in ws:
                            cases.append(Case(mech.name, pattern, kind, size, w, method, placement))
    if not cases:
        raise UserError("the chosen mechanisms, patterns and payload kinds give no case to run; see `ipcbench list`")
    return cases


def _payloads(mech: Declared, pattern: str, kinds: list[str], payload_sizes: Sequence[int],
              kind_sizes: Mapping[str, Sequence[int]]) -> list[tuple[str, int]]:
    """(kind, size) of ``mech``'s cases of ``pattern``, kind by kind."""
    if pattern in PAYLOADLESS_PATTERNS:
        return [(DEFAULT_PAYLOAD_KIND, 0)]
    carried = getattr(mech, "payload_kinds", None)
    return [(kind, size) for kind in kinds if carried is None or kind in carried
            for size in kind_sizes.get(kind, payload_sizes) if size >= PAYLOAD_MIN_BYTES.get(kind, 0)]
