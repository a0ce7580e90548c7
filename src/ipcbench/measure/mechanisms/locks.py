"""``lock``: multiprocessing.Lock (a POSIX semaphore) shared by N processes."""

from . import Mechanism


def _lock(ctx):
    return ctx.Lock()


MECHANISMS = [
    Mechanism("lock", "sync", "multiprocessing.Lock: acquire+release by N processes at once",
              patterns=("contention",), make_lock=_lock),
]
