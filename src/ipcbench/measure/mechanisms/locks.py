"""``lock``: multiprocessing.Lock (a POSIX semaphore) shared by N processes."""

from functools import partial

from .. import patterns
from . import Mechanism


def _lock(ctx):
    return ctx.Lock()


MECHANISMS = [
    Mechanism("lock", "sync", "multiprocessing.Lock: acquire+release by N processes at once",
              {"contention": partial(patterns.contention, make_lock=_lock)}),
]
