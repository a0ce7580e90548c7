"""ipcbench: honest benchmarks for Python multiprocessing IPC.

Data flows one way: cases -> runner -> result files -> pandas -> stats -> figures -> report.
Importing the package stays cheap (no numpy/pandas) because every benchmark round starts a fresh
interpreter that imports it.
"""

from ._version import __version__

__all__ = ["__version__", "load"]


def load(paths):
    """Read result files and folders into the tidy pandas frame (one row per case x metric).

    ``ipcbench.frame.load_sets`` gives the raw samples, failures and run metadata as frames too.
    """
    from .results.frame import load as _load

    return _load(paths)
