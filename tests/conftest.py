import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))          # so `tests.factories` imports from any working directory


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        plt.close("all")


@pytest.fixture
def plugin_env(monkeypatch):
    """Make the faulty test mechanisms (tests/faulty_mechanisms.py) visible to orchestrator processes."""
    monkeypatch.setenv("IPCBENCH_PLUGINS", "tests.faulty_mechanisms")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    from ipcbench import mechanisms

    monkeypatch.setattr(mechanisms, "_REGISTRY", None)
    yield
    mechanisms._REGISTRY = None
