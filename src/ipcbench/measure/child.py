"""The child of the ``startup`` pattern, in a module that imports nothing.

A spawn or forkserver child imports the module that defines its target and re-runs its parent's main
module. A user's script is usually light; the round's main module (the orchestrator) imports psutil and
the harness, about 18 ms on the 2-vCPU reference VM, which a start-up figure must not include. So
``patterns.startup`` starts this target with this module standing in as ``__main__`` (``light_main``), and
a forkserver preloads it: the child imports ``ipcbench``, ``ipcbench.measure`` and this file, all free of
imports beyond the standard library's ``sys``.
"""

import sys
from contextlib import contextmanager


def started_child(conn, payload) -> None:
    """The startup child: write one byte as its first act."""
    conn.send_bytes(b"!")
    conn.close()


@contextmanager
def light_main():
    """This module as ``__main__`` while a startup child is started (spawn and forkserver read it then)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = sys.modules[__name__]
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
