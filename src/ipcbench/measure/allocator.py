"""The allocator state a run's processes start in: a controlled, recorded setting (``--allocator``).

Large messages are buffers of the payload's size, allocated and freed for every message (the pickle, the
received bytes). glibc's malloc serves a request above its *mmap threshold* (128 KiB at start) with a fresh
``mmap``, every page of which is a minor fault when first touched, and gives it back with ``munmap`` when
freed; a process's history raises that threshold (freeing a mapped chunk lifts it to the chunk's size, up
to 32 MiB) and with it the *trim threshold*, after which such buffers come from the heap, already mapped.
So the same 1 MiB ``Connection.send`` loop ran at 0.65 GB/s in a fresh script and at 4.0 GB/s after the
script had run a Pool (issue 11; ``faults_per_msg`` shows which state a case ran in). Which state a user's
program is in depends on its past; ipcbench measures the two ends, held so that they are reproducible:

* ``cold`` (the default): glibc's start-up thresholds (128 KiB each), *held*: every buffer above 128 KiB is
  mapped, faulted in and unmapped, as a new script's first large messages are. Set through
  ``MALLOC_MMAP_THRESHOLD_=131072`` and ``MALLOC_TRIM_THRESHOLD_=131072``; setting a threshold stops glibc's
  own adjustment, so the state stays as it started, whatever ipcbench's own code allocated before.
* ``warm``: the thresholds raised, as in a long-running process whose history has raised them,
  ``MALLOC_MMAP_THRESHOLD_=64 MiB`` and ``MALLOC_TRIM_THRESHOLD_=256 MiB`` (the values the issue's measurement
  used): large buffers come from heap memory already mapped.
* ``fresh``: glibc's defaults *unheld*, as a new script starts; the thresholds then move with every large
  mapped buffer the process frees (a freed mapped chunk lifts the mmap threshold to its size, and the trim
  threshold to twice that). The rate then depends on the exact sizes the process has allocated and freed
  before: five runs of one standalone script of 1 MiB round trips gave
  271-507/s, and ipcbench's rounds (whose own code frees other buffers than a hand loop's) read 1.7-1.8x a
  hand loop's streams (docs/measurement.md). It is uncontrolled, so not the default, and not reproducible
  to the selfcheck's 10 %; it was the default before ``cold`` existed, and result files from before the
  setting ran in it.

Every state removes any ``MALLOC_*_`` variable and ``glibc.malloc`` tunable of the caller's environment first.
The setting is read at each process's start: the warm launcher (whose forked rounds inherit the parsed
settings), fresh-interpreter rounds and every spawn or forkserver peer (which inherit the environment) get
it. Other C libraries ignore these variables; the result file records the C library (``run.allocator``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping

STATES = ("cold", "warm", "fresh")
DEFAULT = "cold"
COLD_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024), "MALLOC_TRIM_THRESHOLD_": str(128 * 1024)}
WARM_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024**2), "MALLOC_TRIM_THRESHOLD_": str(256 * 1024**2)}
STATE_ENV = {"cold": COLD_ENV, "warm": WARM_ENV, "fresh": {}}
HELP = ("cold (glibc's start-up thresholds held: every buffer above 128 KiB mapped and unmapped, as a new "
        "script's first large messages; the default), warm (thresholds raised, as in a long-running process: "
        "large buffers reuse mapped memory) or fresh (glibc's defaults unheld: they move with the process's "
        "history, so large-message rates are not reproducible); docs/measurement.md")


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
    without the caller's malloc settings, plus the state's own (``STATE_ENV``)."""
    if state not in STATES:
        raise ValueError(f"unknown allocator state {state!r}; known: {', '.join(STATES)}")
    env = _without_malloc(os.environ if base is None else base)
    env.update(STATE_ENV[state])
    return env


def describe(state: str) -> dict:
    """What a result file records about the allocator: the state, the variables set, the C library."""
    lib, version = platform.libc_ver()
    return {"state": state, "env": dict(STATE_ENV[state]),
            "libc": f"{lib} {version}".strip() or None}
