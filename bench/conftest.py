"""``pytest bench/``: the fixtures, marker and options come from ipcbench's pytest plugin
(``src/ipcbench/pytest_plugin.py``, loaded through its ``pytest11`` entry point when ipcbench is installed)."""

import sys
from pathlib import Path

try:
    import ipcbench  # noqa: F401
except ImportError:  # a checkout without installing (spawn and forkserver children inherit sys.path)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
if "ipcbench.pytest_plugin" not in sys.modules:  # not installed: no entry point loaded it
    pytest_plugins = ["ipcbench.pytest_plugin"]
