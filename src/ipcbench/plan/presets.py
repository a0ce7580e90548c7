"""Presets, declared as data: which grid to run and how long each round takes.

``smoke``  every mechanism, 3 sizes, workers {1, max}, 2 short rounds: a check that all works (<= 60 s
           on a 2-core machine).
``quick``  the default (``tox -e bench``): the six default sizes, workers 1, 2, 4 ... max, 3 rounds
           (<= 5 min on a 2-core machine).
``full``   14 sizes up to 64 MiB, every start method, 5 longer rounds. Long: watch the ETA.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import UserError
from .cases import MULTI_WORKER_PATTERNS, PAYLOADLESS_PATTERNS, Case, RoundSpec

KiB, MiB = 1024, 1024**2
DEFAULT_SIZES = (8, 1 * KiB, 16 * KiB, 64 * KiB, 1 * MiB, 16 * MiB)
FULL_SIZES = (8, 64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 32 * KiB, 64 * KiB, 128 * KiB, 256 * KiB,
              1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    payload_sizes: tuple[int, ...]
    workers: str            # "ends": {1, max}; "powers": 1, 2, 4 ... max
    start_methods: str      # "default" or "all"
    rounds: int
    spec: RoundSpec


PRESETS = {
    "smoke": Preset("smoke", "every mechanism, 3 sizes, workers {1, max}, 2 short rounds",
                    (8, 64 * KiB, 1 * MiB), "ends", "default", 2,
                    RoundSpec(budget_s=0.03, min_messages=3, max_window_s=2.0, max_messages=3000,
                              warmup=5, warmup_s=0.02)),
    "quick": Preset("quick", "default sizes 8 B..16 MiB, workers 1, 2, 4 ... max, 3 rounds",
                    DEFAULT_SIZES, "powers", "default", 3,
                    RoundSpec(budget_s=0.08, min_messages=5, max_window_s=3.0, max_messages=20_000,
                              warmup=10, warmup_s=0.03)),
    "full": Preset("full", "14 sizes 8 B..64 MiB, workers 1, 2, 4 ... max, every start method, 5 rounds",
                   FULL_SIZES, "powers", "all", 5,
                   RoundSpec(budget_s=0.25, min_messages=10, max_window_s=8.0, max_messages=50_000,
                             warmup=20, warmup_s=0.05)),
}


class Declared(Protocol):
    """What a grid needs to know of a mechanism: its name and the patterns it supports
    (``ipcbench.measure.mechanisms.Mechanism`` is one; plan never imports measure)."""

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


def build_grid(mechanisms: list[str] | None, patterns: list[str] | None, payload_sizes: list[int],
               workers: list[int], methods: list[str], payload_kind: str = "bytes", *,
               catalogue: Sequence[Declared]) -> list[Case]:
    """Every (mechanism, pattern, size, workers, start method) the choices allow, in a stable order.

    ``catalogue``: the declared mechanisms, in order (``ipcbench.measure.mechanisms.all_mechanisms()``);
    ``mechanisms``: names to keep (None: all). Patterns that move no payload run once with 0 bytes;
    one-to-one patterns run with workers = 1.
    """
    by_name = {m.name: m for m in catalogue}
    for name in mechanisms or ():
        if name not in by_name:
            raise UserError(f"unknown mechanism {name!r}; known: {', '.join(by_name)} (see `ipcbench list`)")
    mechs = [by_name[m] for m in mechanisms] if mechanisms else list(catalogue)
    wanted = set(patterns) if patterns else None
    cases = []
    for method in methods:
        for mech in mechs:
            for pattern in mech.patterns:
                if wanted is not None and pattern not in wanted:
                    continue
                sizes = [0] if pattern in PAYLOADLESS_PATTERNS else payload_sizes
                ws = workers if pattern in MULTI_WORKER_PATTERNS else [1]
                for size in sizes:
                    for w in ws:
                        cases.append(Case(mech.name, pattern, payload_kind, size, w, method))
    if not cases:
        raise UserError("the chosen mechanisms and patterns give no case to run; see `ipcbench list`")
    return cases
