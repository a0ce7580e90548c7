"""shared_memory, sharedctypes_array and sharedctypes_array_nolock (mechanisms/shared.py): payloads copied
into slots and out again, a Pipe notifying, a Semaphore counting free slots.

Here: the bytes arrive intact (8 B, 64 KiB, 1 MiB) through fork and spawn peers, through every slot of a
stream and by producer in fanin; each mechanism end to end through the runner with fork and spawn; the
resource tracker neither warns nor complains; and no segment is left in /dev/shm after a round that
succeeds, one that fails in the round process, one whose peer is SIGKILLed, and a run stopped by Ctrl-C.
The faulty variants are plain declarations of this module, loaded by round processes through
IPCBENCH_PLUGINS (the ``faulty`` fixture)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipcbench.measure import patterns
from ipcbench.measure.mechanisms import Mechanism, get
from ipcbench.measure.mechanisms.shared import SLOTS, _shared_memory, stream_slots
from ipcbench.measure.runner import RunOptions, run_case
from ipcbench.plan.cases import Case, RoundSpec
from tests.faulty_mechanisms import _faulty_channel, _KilledEnd

ROOT = Path(__file__).resolve().parent.parent
TINY = RoundSpec(budget_s=0.005, min_messages=3, max_window_s=2, max_messages=300, warmup=2, warmup_s=0.01,
                 timeout_s=10)
OPTS = RunOptions(spec=TINY, rounds=2, round_timeout_s=30)
SHARED = {"shared_memory": ("roundtrip", "stream", "fanin"), "sharedctypes_array": ("roundtrip", "stream"),
          "sharedctypes_array_nolock": ("roundtrip", "stream")}
SIZES = [8, 64 * 1024, 1024**2]


def _psm() -> set[str]:
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith("psm_")}
    except OSError:
        return set()


@dataclass
class FakeRound:
    """What a maker reads from ``harness.Round``: the case, a context, the stack that closes the round."""

    case: Case
    ctx: object
    stack: ExitStack


def _ends(mechanism: str, pattern: str, size: int, method: str, stack: ExitStack, workers: int = 1,
          kind: str = "bytes"):
    rnd = FakeRound(Case(mechanism, pattern, kind, size, workers, method), mp.get_context(method), stack)
    return get(mechanism).make_channel(rnd, bounded=pattern != "roundtrip")


def _content(size: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(min(size, 4096))) * (size // 4096) + \
        bytes((i * 7 + seed) % 251 for i in range(size % 4096))


def _start(ctx, target, *args):
    p = ctx.Process(target=target, args=args, daemon=True)
    p.start()
    return p


def _recv(end, peers):
    """``end.recv()``, once its notification pipe has something (a peer that died, e.g. because something
    unlinked what it attaches to, fails the test with its exit status instead of hanging it)."""
    if not end.rx.note_r.poll(20):
        raise AssertionError(f"nothing to receive after 20 s; peers' exit statuses: {[p.exitcode for p in peers]}")
    return end.recv()


def _join(procs) -> None:
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join()
    assert [p.exitcode for p in procs] == [0] * len(procs)


@pytest.fixture(scope="module")
def tracker():
    """The tests that make channels in this process start its resource tracker (a segment registers with
    it), which lives as long as pytest: start it before ``no_leftovers`` marks the test's processes."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


# -- the bytes arrive intact ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("mechanism", list(SHARED))
def test_round_trips_carry_exact_bytes(mechanism, method, tracker, no_leftovers):
    """The real echo peer in a fork or spawn process: every size comes back byte for byte, twice (the slot
    is reused), as ``bytes`` the receiver owns, and None ends it."""
    for size in SIZES:
        with ExitStack() as stack:
            parent, child = _ends(mechanism, "roundtrip", size, method, stack)
            peer = _start(mp.get_context(method), patterns.echo_peer, child)
            for seed in (1, 2):
                sent = _content(size, seed)
                parent.send(sent)
                got = _recv(parent, [peer])
                assert type(got) is bytes and got == sent, (size, seed)
            parent.send(None)
            _join([peer])


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("mechanism", list(SHARED))
def test_numpy_payloads_come_back_as_arrays_the_receiver_owns(mechanism, method, tracker, no_leftovers):
    """The ``numpy`` kind: the array's buffer goes in, a new writable uint8 array comes out, equal."""
    np = pytest.importorskip("numpy")
    size = 64 * 1024 + 3
    with ExitStack() as stack:
        parent, child = _ends(mechanism, "roundtrip", size, method, stack, kind="numpy")
        peer = _start(mp.get_context(method), patterns.echo_peer, child)
        for seed in (1, 2):
            sent = np.frombuffer(_content(size, seed), dtype=np.uint8).copy()
            parent.send(sent)
            got = _recv(parent, [peer])
            assert isinstance(got, np.ndarray) and got.dtype == np.uint8 and got.flags.writeable
            assert np.array_equal(got, sent)
        parent.send(None)
        _join([peer])


def _produce(end, size: int, count: int, tag) -> None:
    for k in range(count):
        data = _content(size, k)
        end.send(data if tag is None else (tag, data))
    end.send(None)


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("mechanism", list(SHARED))
def test_streams_deliver_every_message_in_order_through_every_slot(mechanism, method, tracker, no_leftovers):
    """More messages than slots, each different: the producer waits for free slots and never overwrites
    one that has not been read."""
    size, count = 64 * 1024, 3 * SLOTS + 1
    with ExitStack() as stack:
        consumer, producer = _ends(mechanism, "stream", size, method, stack)
        peer = _start(mp.get_context(method), _produce, producer, size, count, None)
        time.sleep(0.2)                      # let the producer fill every slot and wait
        got = [_recv(consumer, [peer]) for _ in range(count + 1)]
        _join([peer])
    assert got[-1] is None
    assert [g == _content(size, k) for k, g in enumerate(got[:-1])] == [True] * count


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_fanin_keeps_each_producers_messages_apart(method, tracker, no_leftovers):
    size, count, producers = 1024, 2 * SLOTS + 3, 2
    with ExitStack() as stack:
        consumer, producer = _ends("shared_memory", "fanin", size, method, stack, workers=producers)
        peers = [_start(mp.get_context(method), _produce, producer, size, count, i) for i in range(producers)]
        time.sleep(0.2)
        got: dict[int, list[bytes]] = {i: [] for i in range(producers)}
        ended = 0
        while ended < producers:
            msg = _recv(consumer, peers)
            if msg is None:
                ended += 1
            else:
                got[msg[0]].append(msg[1])
        _join(peers)
    for i in range(producers):
        assert got[i] == [_content(size, k) for k in range(count)], i


def test_slots_and_limits(tracker):
    assert stream_slots(8) == SLOTS == 8
    assert stream_slots(16 * 1024**2) == 4 and stream_slots(64 * 1024**2) == 2    # <= 64 MiB, >= 2 slots
    assert stream_slots(1024**2, producers=16) == 4
    with ExitStack() as stack:
        parent, _ = _ends("shared_memory", "roundtrip", 8, "fork", stack)
        with pytest.raises(ValueError, match="a message of 9 bytes does not fit a slot of 8 bytes"):
            parent.send(b"x" * 9)
        parent, _ = _ends("sharedctypes_array", "roundtrip", 8, "fork", stack)
        with pytest.raises(ValueError):
            parent.send(b"x" * 9)


def test_segments_are_psm_names_unlinked_when_the_round_closes(tracker, no_leftovers):
    """Named ``psm_...`` (the runner's /dev/shm clean-up knows the prefix), and unlinked by the round's
    stack whether it closes normally or on an exception."""
    before = _psm()
    with ExitStack() as stack:
        _ends("shared_memory", "roundtrip", 8, "fork", stack)
        _ends("shared_memory", "stream", 1024, "fork", stack)
        made = _psm() - before
        assert len(made) == 3                # two links for the round trip, one for the stream
    assert not (_psm() & made)
    with pytest.raises(RuntimeError), ExitStack() as stack:
        _ends("shared_memory", "fanin", 1024, "spawn", stack, workers=2)
        made = _psm() - before
        assert len(made) == 1
        raise RuntimeError("the round failed")
    assert not (_psm() & made)


# -- end to end, through the runner -------------------------------------------------------------------------
E2E = [Case(m, p, "bytes", 64 * 1024, 2 if p == "fanin" else 1, method)
       for m, pats in SHARED.items() for p in pats for method in ("fork", "spawn")]
E2E += [Case("shared_memory", "roundtrip", "bytes", 1024**2, 1, "fork")]
E2E += [Case(m, "roundtrip", "numpy", 64 * 1024, 1, "fork") for m in SHARED]
E2E += [Case("shared_memory", "fanin", "numpy", 64 * 1024, 2, "fork")]


@pytest.mark.parametrize("case", E2E, ids=lambda c: f"{c.mechanism}-{c.pattern}-{c.payload_kind}-{c.payload_bytes}-"
                                                  f"{c.start_method}")
def test_end_to_end(case, no_leftovers):
    rec = run_case(case, OPTS)
    assert rec["status"] == "ok", rec["error"]
    m = {k: v["value"] for k, v in rec["metrics"].items()}
    assert m["latency_p50"] > 0 and m["throughput_msgs"] > 0 and m["cpu_per_msg"] > 0
    assert len(rec["rounds"]) == 2 and all(r["ok"] for r in rec["rounds"])


# -- the resource tracker -----------------------------------------------------------------------------------
def _orchestrate(tmp_path, case: Case) -> tuple[dict, str]:
    """One round in ``python -m ipcbench.measure.orchestrator`` (no runner: nothing cleans up after it),
    its stderr, and the resource tracker's (which the round process starts, and which inherits its
    stderr): (result, stderr once every process of the round has exited)."""
    job, out = tmp_path / "job.json", tmp_path / "out.json"
    job.write_text(json.dumps({"case": case.to_dict(), "spec": TINY.to_dict()}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "ipcbench.measure.orchestrator", str(job), str(out)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stderr


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("pattern", ["roundtrip", "fanin"])
def test_peers_attach_without_resource_tracker_trouble(pattern, method, tmp_path, no_leftovers):
    """Peers attach by name (spawn, forkserver) or inherit the mapping (fork); the segment is unlinked by
    the round itself, and the resource tracker says nothing: no leaked segment, no unregister of a name it
    does not hold (what unregistering after attach would give: a KeyError traceback)."""
    before = _psm()
    got, err = _orchestrate(tmp_path, Case("shared_memory", pattern, "bytes", 4096, 2 if pattern == "fanin" else 1,
                                           method))
    assert got["ok"], got
    assert not (_psm() - before)
    assert "resource_tracker" not in err and "KeyError" not in err and "Traceback" not in err, err


# -- failures ---------------------------------------------------------------------------------------------
class _Truncating:
    """An echo peer's end that sends back one byte too few: the round process's echo check fails."""

    def __init__(self, end):
        self.end = end

    def recv(self):
        return self.end.recv()

    def send(self, obj):
        self.end.send(obj if obj is None else obj[:-1])


def _truncating(rnd, bounded):
    parent, child = _shared_memory(rnd, bounded)
    return parent, _Truncating(child)


MECHANISMS = [
    Mechanism("test_shm_kill_roundtrip", "test", "shared_memory, the echo peer SIGKILLs itself mid-round",
              patterns=("roundtrip",), make_channel=_faulty_channel(_shared_memory, _KilledEnd, at=7)),
    Mechanism("test_shm_kill_stream", "test", "shared_memory, the producer SIGKILLs itself mid-stream",
              patterns=("stream",), make_channel=_faulty_channel(_shared_memory, _KilledEnd, at=4)),
    Mechanism("test_shm_truncate", "test", "shared_memory, the echo comes back one byte short",
              patterns=("roundtrip",), make_channel=_truncating),
]


@pytest.fixture
def faulty(monkeypatch):
    """This module's faulty mechanisms, visible to round processes."""
    monkeypatch.setenv("IPCBENCH_PLUGINS", "tests.test_shared_memory")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    from ipcbench.measure import mechanisms

    monkeypatch.setattr(mechanisms, "_REGISTRY", None)
    yield
    mechanisms._REGISTRY = None


@pytest.mark.parametrize("mechanism, pattern, method, peer", [
    ("test_shm_kill_roundtrip", "roundtrip", "fork", "echo"),
    ("test_shm_kill_stream", "stream", "spawn", "producer-0"),
])
def test_a_killed_peer_fails_the_case_and_leaves_no_segment(mechanism, pattern, method, peer, faulty,
                                                             no_leftovers):
    """The round process leaves at once (``os._exit``) when a peer dies; the runner unlinks what it left."""
    before = _psm()
    rec = run_case(Case(mechanism, pattern, "bytes", 64 * 1024, 1, method), OPTS)
    assert rec["status"] == "failed"
    assert f"peer process {peer!r} was killed by signal 9 during the round" in rec["error"]
    assert not (_psm() - before)


def test_a_failed_round_unlinks_its_own_segments(faulty, tmp_path, no_leftovers):
    """A round that fails inside the round process (here the echo check) unlinks its segments itself."""
    before = _psm()
    got, err = _orchestrate(tmp_path, Case("test_shm_truncate", "roundtrip", "bytes", 1024, 1, "spawn"))
    assert got == {"ok": False, "error": "echo returned 1023 bytes, expected 1024 bytes"}
    assert not (_psm() - before)
    assert "resource_tracker" not in err, err


def _cases(path: Path) -> list:
    try:
        return json.loads(path.read_text())["cases"]
    except (OSError, ValueError, KeyError):
        return []


def test_ctrl_c_leaves_no_segment(tmp_path, no_leftovers):
    """SIGINT in the middle of a run of the three mechanisms with large payloads (after its first case,
    while a round holds a segment): the run stops as usual (exit 130, the file marked interrupted) and no
    ``psm_`` segment is left."""
    before = _psm()
    out = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "ipcbench", "run", "-m", ",".join(SHARED), "--preset", "smoke",
                             "--payload-kinds", "bytes", "--payload-sizes", "1MiB,4MiB", "--seed", "3",
                             "-o", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    seen = threading.Event()

    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if _psm() - before and _cases(out):
                seen.set()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    watcher.join()
    assert seen.is_set(), "no finished case and segment seen"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert json.loads(out.read_text())["run"]["status"] == "interrupted"
    assert "Traceback" not in err
    assert not (_psm() - before)


def test_listed(capsys):
    from ipcbench.cli import main

    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    for name, pats in SHARED.items():
        assert any(line.split()[:2] == [name, ",".join(pats)] for line in listing.splitlines()), name
