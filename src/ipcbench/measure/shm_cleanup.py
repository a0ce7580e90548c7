"""The ``/dev/shm`` names a round or a hand loop may leave behind, and their clean-up.

multiprocessing's named semaphores (``sem.mp-*``), shared-memory segments (``psm_*``) and glibc's
temporary semaphore names (``mp-*``) live in ``/dev/shm``. A round or a hand loop that is killed cannot
unlink its own: the runner and ``user_loops.run_hand`` take ``shm_names()`` before and ``clean_shm(before)``
after, which removes only the new names no live process still maps.
"""

from __future__ import annotations

import os
from pathlib import Path

SHM_DIR = Path("/dev/shm")
SHM_PREFIXES = ("sem.mp-", "psm_", "mp-")


def shm_names() -> set[str]:
    """The names of ours-looking files in /dev/shm now (empty where it cannot be read)."""
    try:
        return {n for n in os.listdir(SHM_DIR) if n.startswith(SHM_PREFIXES)}
    except OSError:
        return set()


def clean_shm(before: set[str]) -> None:
    """Unlink the /dev/shm names that appeared during a round that failed or was killed, except those some
    live process still maps: another program's (or another ipcbench run's) semaphores and segments that
    happened to be made meanwhile are not ours to remove."""
    new = shm_names() - before
    if not new:
        return
    in_use = mapped_shm_inodes()
    for name in new:
        try:
            if os.stat(SHM_DIR / name).st_ino not in in_use:
                os.unlink(SHM_DIR / name)
        except OSError:
            pass


def mapped_shm_inodes() -> set[int]:
    """Inodes of the /dev/shm files some process maps now, from every readable /proc/PID/maps (a named
    semaphore or a shared memory segment stays mapped while it is open; glibc maps a semaphore under the
    temporary name it created it with, so the inode, not the name, says which file it is)."""
    found: set[int] = set()
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    if "/dev/shm/" in line:
                        found.add(int(line.split()[4]))
        except (OSError, ValueError, IndexError):
            continue
    return found
