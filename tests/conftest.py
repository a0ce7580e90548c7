import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))          # so `tests.factories` imports from any working directory


@pytest.fixture(autouse=True, scope="session")
def _machine_file(tmp_path_factory):
    """Tests never touch the user's machine file (~/.config/ipcbench/machine.json): one of their own."""
    path = tmp_path_factory.mktemp("config") / "machine.json"
    old = os.environ.get("IPCBENCH_MACHINE_FILE")
    os.environ["IPCBENCH_MACHINE_FILE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("IPCBENCH_MACHINE_FILE", None)
    else:
        os.environ["IPCBENCH_MACHINE_FILE"] = old


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
    from ipcbench.measure import mechanisms

    monkeypatch.setattr(mechanisms, "_REGISTRY", None)
    yield
    mechanisms._REGISTRY = None


def _marked(mark: str) -> list:
    import psutil

    found = []
    for p in psutil.process_iter():
        if p.pid == os.getpid():
            continue
        try:
            if p.environ().get("IPCBENCH_TEST_MARK") == mark:
                found.append(p)
        except (psutil.Error, OSError):
            pass
    return found


def _shm() -> set:
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith(("sem.mp-", "psm_", "mp-"))}
    except OSError:
        return set()


@pytest.fixture
def no_leftovers(monkeypatch):
    """Every process started under the test carries a mark in its environment; none may outlive it,
    and no multiprocessing semaphore or shared-memory name may be left in /dev/shm."""
    import uuid

    import psutil

    mark = uuid.uuid4().hex
    monkeypatch.setenv("IPCBENCH_TEST_MARK", mark)
    before = _shm()
    yield mark
    left = _marked(mark)
    if left:
        _, left = psutil.wait_procs(left, timeout=5)
    names = [" ".join(p.cmdline()[:4]) for p in left if p.is_running()]
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
    assert not names, f"processes outlived the test: {names}"
    import time

    deadline = time.monotonic() + 3      # a resource tracker may still be unlinking
    while _shm() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (_shm() - before), f"left in /dev/shm: {sorted(_shm() - before)}"
