"""The allocator state a run's processes start in: a controlled, recorded setting (``--allocator``).

Large messages are buffers of the payload's size, allocated and freed for every message (the pickle, the
received bytes). glibc's malloc serves a request above its *mmap threshold* (128 KiB at start) with a fresh
``mmap``, every page of which is a minor fault when first touched, and gives it back with ``munmap`` when
freed; a process's history raises that threshold (freeing a mapped chunk lifts it to the chunk's size, up
to 32 MiB) and with it the *trim threshold*, after which such buffers come from the heap, already mapped.
So the same 1 MiB ``Connection.send`` loop ran at 0.65 GB/s in a fresh script and at 4.0 GB/s after the
script had run a Pool (issue 11; ``faults_per_msg`` shows which state a case ran in). Which state a user's
program is in depends on its past; ipcbench measures both, named:

* ``fresh`` (the default): glibc's own defaults, as a new script sees them: every ``MALLOC_*_`` variable
  and any ``glibc.malloc`` tunable of the caller's environment is removed for the round processes.
* ``warm``: the thresholds raised, as in a long-running process whose history has raised them, set through
  glibc's environment variables ``MALLOC_MMAP_THRESHOLD_=64 MiB`` and ``MALLOC_TRIM_THRESHOLD_=256 MiB``
  (the values the issue's measurement used; a fixed threshold also stops glibc's own adjustment).

The setting is read at each process's start: the warm launcher (whose forked rounds inherit the parsed
settings), fresh-interpreter rounds and every spawn or forkserver peer (which inherit the environment) get
it. Other C libraries ignore these variables; the result file records the C library (``run.allocator``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping

STATES = ("fresh", "warm")
DEFAULT = "fresh"
WARM_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024**2), "MALLOC_TRIM_THRESHOLD_": str(256 * 1024**2)}


def _without_malloc(env: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in env.items() if not (k.startswith("MALLOC_") and k.endswith("_"))}
    tunables = out.get("GLIBC_TUNABLES")
    if tunables is not None:
        kept = ":".join(t for t in tunables.split(":") if t and not t.startswith("glibc.malloc."))
        if kept:
            out["GLIBC_TUNABLES"] = kept
        else:
            del out["GLIBC_TUNABLES"]
    return out


def environment(state: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a run's processes in allocator ``state``: ``base`` (default ``os.environ``)
    without the caller's malloc settings, plus ``WARM_ENV`` for ``warm``."""
    if state not in STATES:
        raise ValueError(f"unknown allocator state {state!r}; known: {', '.join(STATES)}")
    env = _without_malloc(os.environ if base is None else base)
    if state == "warm":
        env.update(WARM_ENV)
    return env


def describe(state: str) -> dict:
    """What a result file records about the allocator: the state, the variables set, the C library."""
    lib, version = platform.libc_ver()
    return {"state": state, "env": dict(WARM_ENV) if state == "warm" else {},
            "libc": f"{lib} {version}".strip() or None}
