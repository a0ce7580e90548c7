"""Mechanisms beyond the seed (issue 12): simple_queue, joinable_queue and the raw floors os_pipe and
socketpair. ``test_engine_e2e.py`` runs each on a tiny case of every pattern it declares; here: what is
particular to each (the raw framing, task_done, spawn peers)."""

import json
import multiprocessing as mp
import os
import pickle
import socket
import threading

import pytest

from ipcbench.cli import main
from ipcbench.measure.channels import ConsumeEnd, RawFd
from ipcbench.measure.runner import run_case
from ipcbench.plan.cases import Case


class Holder:
    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd


@pytest.mark.parametrize("size", [0, 1, 8, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 3 * 1024 * 1024 + 7])
def test_raw_framing_delivers_exact_bytes_through_partial_writes(size):
    """Past the pipe's 64 KiB buffer a write is partial and the reader must loop: the bytes arrive whole,
    in order, and None (a mark and filler as long as a message) arrives as None."""
    r, w = os.pipe()
    try:
        sender, receiver = RawFd(Holder(r), Holder(w), size), RawFd(Holder(r), Holder(w), size)
        data = bytes(i % 251 for i in range(size))
        other = bytearray(reversed(data))
        t = threading.Thread(target=lambda: (sender.send(data), sender.send(other), sender.send(None)))
        t.start()
        got = [receiver.recv(), receiver.recv(), receiver.recv()]
        t.join()
        assert got[0] == data and isinstance(got[0], bytes | bytearray)
        assert got[1] == other and got[2] is None
    finally:
        os.close(r)
        os.close(w)


def test_raw_channel_carries_one_size_and_says_when_the_other_end_closed():
    a, b = socket.socketpair()
    end = RawFd(a, a, 16)
    with pytest.raises(ValueError, match="carries messages of 16 bytes, not 3"):
        end.send(b"abc")
    b.sendall(b"xabc")                      # a 16-byte message cut short
    b.close()
    with pytest.raises(EOFError, match="the other end closed"):
        end.recv()
    a.close()
    c, d = socket.socketpair()
    big = RawFd(c, c, 100_000)
    d.sendall(b"x" + bytes(10))
    d.close()
    with pytest.raises(EOFError, match="the other end closed"):
        big.recv()
    c.close()


@pytest.mark.parametrize("mechanism", ["os_pipe", "socketpair", "simple_queue", "joinable_queue", "pipe_duplex_oob"])
@pytest.mark.parametrize("pattern", ["roundtrip", "stream"])
def test_ends_travel_to_spawned_peers(mechanism, pattern, no_leftovers):
    """The ends pickle for spawn peers (file descriptors duplicated by multiprocessing) and work there:
    a 100 KiB payload (past one pipe buffer) goes both ways, checked by the round's echo check."""
    from tests.test_engine_e2e import OPTS

    rec = run_case(Case(mechanism, pattern, "bytes", 100_000, 1, "spawn"), OPTS)
    assert rec["status"] == "ok", rec["error"]
    assert rec["metrics"]["throughput_bytes"]["value"] > 0


def test_joinable_queue_consumer_marks_every_item_done():
    q = mp.get_context("fork").JoinableQueue()
    try:
        for i in range(3):
            q.put(i)
        end = ConsumeEnd(q)
        assert [end.recv() for _ in range(3)] == [0, 1, 2]
        done = threading.Thread(target=q.join)
        done.start()
        done.join(5)
        assert not done.is_alive()           # join() returns: task_done was called for each item
    finally:
        q.close()
        q.join_thread()


def test_new_mechanisms_in_a_run_and_the_export(tmp_path, no_leftovers):
    out, csv = tmp_path / "r.json", tmp_path / "r.csv"
    assert main(["run", "--preset", "smoke", "-m", "simple_queue,joinable_queue,os_pipe,socketpair",
                 "--payload-sizes", "8,64KiB", "--payload-kinds", "bytes", "--workers", "1", "-q", "-o", str(out)]) == 0
    cases = json.loads(out.read_text())["cases"]
    assert all(c["status"] == "ok" for c in cases)
    got = {(c["case"]["mechanism"], c["case"]["pattern"]) for c in cases}
    assert got == {("simple_queue", p) for p in ("roundtrip", "stream", "fanin")} | \
        {("joinable_queue", p) for p in ("roundtrip", "stream", "fanin")} | \
        {(m, p) for m in ("os_pipe", "socketpair") for p in ("roundtrip", "stream")}
    assert main(["export", str(out), "--format", "csv", "-o", str(csv)]) == 0
    rows = csv.read_text().splitlines()
    for mech in ("simple_queue", "joinable_queue", "os_pipe", "socketpair"):
        assert any(f",{mech}," in row for row in rows), mech


def test_thread_queue_peers_are_threads_of_the_round(no_leftovers):
    """The baseline starts no process: its echo and producers are threads of the round's process, each
    pinned to the CPU a peer process would get (recorded as a thread in the round's placement)."""
    from tests.test_engine_e2e import OPTS

    for pattern, peers in (("roundtrip", {"echo"}), ("fanin", {"producer-0", "producer-1"})):
        rec = run_case(Case("thread_queue", pattern, "bytes", 1024, 2, "fork", "spread"), OPTS)
        assert rec["status"] == "ok", rec["error"]
        assigned = rec["rounds"][0]["placement"]["assigned"].values()
        assert {v["role"] for v in assigned} == {"driver"} | peers
        assert all(v.get("thread") is True for v in assigned if v["role"] != "driver")


def test_a_failing_thread_peer_fails_the_round(plugin_env, no_leftovers):
    from tests.test_engine_e2e import OPTS

    rec = run_case(Case("test_thread_raises", "roundtrip", "bytes", 8, 1, "fork"), OPTS)
    assert rec["status"] == "failed"
    assert rec["error"] == "peer thread 'echo' raised ValueError: bad thread peer on purpose"


@pytest.mark.parametrize("mechanism, method, chunksize", [
    ("pool_map", "fork", 2),                      # ceil(16 tasks / (4 x 2 workers)), Pool.map's own default
    ("pool_map_chunksize1", "spawn", 1),
    ("pool_imap", "fork", 1),
    ("process_pool_executor_map", "spawn", 1),
])
def test_batch_dispatch_records_what_one_op_and_one_sample_are(mechanism, method, chunksize, no_leftovers):
    """map, imap and executor map: one op is one task, one latency sample one call of K tasks; the round
    records K and the chunksize actually used (the library's default where none is given)."""
    from ipcbench.measure.patterns import tasks_per_call
    from tests.test_engine_e2e import OPTS

    size = 1024 * 1024                            # 16 tasks of 1 MiB per call (<= 32 MiB both ways)
    rec = run_case(Case(mechanism, "dispatch", "bytes", size, 2, method), OPTS)
    assert rec["status"] == "ok", rec["error"]
    k = tasks_per_call(size)
    assert k == 16
    for r in rec["rounds"]:
        assert r["params"]["tasks_per_call"] == k and r["params"]["chunksize"] == chunksize
        assert r["ops"] == k * r["samples_total"] and r["bytes_per_op"] == 2 * size
        assert r["params"]["latency_is"] == "one call of 16 tasks"


def test_executor_window_keeps_one_future_per_worker_in_flight_and_its_workers_are_watched(no_leftovers):
    from tests.test_engine_e2e import OPTS

    rec = run_case(Case("process_pool_executor_window", "dispatch", "bytes", 64, 2, "forkserver"), OPTS)
    assert rec["status"] == "ok", rec["error"]
    roles = [v["role"] for v in rec["rounds"][0]["placement"]["assigned"].values()]
    assert roles.count("executor-worker") == 2
    assert all(r["params"] == {"in_flight": 2, "latency_is": "one task"} for r in rec["rounds"])


@pytest.mark.parametrize("mechanism", ["pool_apply_async", "pool_apply_async_callback", "process_pool_executor"])
def test_submit_all_forms_submit_a_batch_then_collect_it(mechanism, no_leftovers):
    """As users write it: K tasks submitted, then every result collected; one op is one task, one latency
    sample one batch."""
    from tests.test_engine_e2e import OPTS

    rec = run_case(Case(mechanism, "dispatch", "bytes", 1024, 2, "fork"), OPTS)
    assert rec["status"] == "ok", rec["error"]
    k = OPTS.spec.max_messages // OPTS.spec.min_messages      # 100 < BATCH_TASKS: room for min_messages calls
    for r in rec["rounds"]:
        assert r["params"]["tasks_per_call"] == k and "chunksize" not in r["params"]
        assert r["ops"] == k * r["samples_total"] and r["samples_total"] >= OPTS.spec.min_messages
        assert r["bytes_per_op"] == 2 * 1024 and r["params"]["latency_is"] == f"one call of {k} tasks"


@pytest.mark.parametrize("mechanism, timed, k", [
    ("pool_map", "latency", 64),            # one call of 64 tasks of 64 B, both ways
    ("pool_imap", "latency", 64),
    ("process_pool_executor_map", "latency", 64),
    ("process_pool_executor", "latency", 100),         # submit K futures, then result() each; K = 300 / 3
    ("pool_apply_async", "latency", 100),
    ("pool_apply_async_callback", "latency", 100),
    ("process_pool_executor_window", "interval", 1),
    ("pool_apply_async_window", "interval", 1),
])
def test_the_dispatch_styles_have_pytest_benchmark_sessions(mechanism, timed, k, no_leftovers):
    from ipcbench.measure.sessions import open_session
    from tests.test_engine_e2e import TINY

    with open_session(Case(mechanism, "dispatch", "bytes", 64, 2, "fork"), TINY) as s:
        assert (s.op.timed, s.op.bytes_per_op) == (timed, 2 * 64 * k)
        s.warmup()
        results = [s.op.call() for _ in range(3)]
        s.op.check(results[-1])
    if timed == "latency":
        assert all(len(r) == k and all(len(x) == 64 for x in r) for r in results)
    else:
        assert s.op.extra() == {"in_flight": 2}


def test_out_of_band_pickles_send_an_array_s_buffer_apart_and_receive_it_writable():
    import socket

    import numpy as np

    from ipcbench.measure.channels import OutOfBand
    from ipcbench.measure.payloads import make_payload

    a, b = socket.socketpair()
    from multiprocessing.connection import Connection

    ca, cb = Connection(a.detach()), Connection(b.detach())
    try:
        sender, receiver = OutOfBand(ca), OutOfBand(cb)
        arr = make_payload("numpy", 100_000)
        t = threading.Thread(target=lambda: (sender.send(arr), sender.send(b"xy"), sender.send(None)))
        t.start()
        got = [receiver.recv(), receiver.recv(), receiver.recv()]
        t.join()
        assert isinstance(got[0], np.ndarray) and np.array_equal(got[0], arr) and got[0].flags.writeable
        assert got[1:] == [b"xy", None]
        # bytes has no out-of-band buffer: one message, a zero count and the pickle, as the PEP's loop sends
        sender.send(b"xy")
        assert cb.recv_bytes() == bytes(4) + pickle.dumps(b"xy", protocol=5)
        copy = OutOfBand.__new__(OutOfBand)
        copy.__setstate__(receiver.__getstate__())
        assert copy.conn is cb
    finally:
        ca.close()
        cb.close()
