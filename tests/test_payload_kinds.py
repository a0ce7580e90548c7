"""Payload kinds (issue 12): ``bytes``, ``numpy`` (a uint8 array) and ``object`` (nested dicts and lists
whose pickle is about the size). What each payload is, which mechanisms carry which kind, the grid and the
CLI flag, numpy imported only where a numpy payload is, and each kind end to end in real processes."""

import csv
import json
import os
import pickle
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from ipcbench.cli import main
from ipcbench.errors import UserError
from ipcbench.measure import resume
from ipcbench.measure.channels import RawFd
from ipcbench.measure.mechanisms import DeclarationError, Mechanism, all_mechanisms
from ipcbench.measure.payloads import make_payload, modules_for, payload_size
from ipcbench.measure.runner import run_case
from ipcbench.plan.cases import PAYLOAD_KINDS, PAYLOAD_MIN_BYTES, Case
from ipcbench.plan.presets import PRESETS, build_grid, check_payload_kinds, worker_counts
from tests.test_cli import ROOT, cli_env
from tests.test_engine_e2e import OPTS

KiB, MiB = 1024, 1024**2


# -- the payloads ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 8, 255, 256, 1000, 64 * KiB + 3])
def test_bytes_and_numpy_payloads_hold_the_same_bytes(size):
    b, a = make_payload("bytes", size), make_payload("numpy", size)
    assert isinstance(b, bytes) and len(b) == size == payload_size(b)
    assert isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.shape == (size,) and a.nbytes == size
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.owndata
    assert a.tobytes() == b and payload_size(a) == size
    assert make_payload("bytes", size) == b and np.array_equal(make_payload("numpy", size), a)
    if size >= 256:
        assert set(b) == set(range(256))            # not all zeros


@pytest.mark.parametrize("size", [64, 1 * KiB, 64 * KiB, 1 * MiB, 48, 100, 137, 200, 4 * KiB + 5, 300_000])
def test_object_payload_pickles_to_about_its_size(size):
    obj = make_payload("object", size)
    pickled = pickle.dumps(obj, protocol=pickle.DEFAULT_PROTOCOL)
    assert abs(len(pickled) - size) <= 0.1 * size          # the promise; in fact within a few bytes
    assert abs(len(pickled) - size) <= 16
    assert payload_size(obj) == size == obj["nbytes"]
    assert pickle.dumps(make_payload("object", size), protocol=pickle.DEFAULT_PROTOCOL) == pickled   # deterministic
    assert pickle.loads(pickled) == obj


def test_object_payload_shape():
    obj = make_payload("object", 64 * KiB)
    assert set(obj) == {"nbytes", "records", "pad"}
    records = obj["records"]
    assert isinstance(records, list) and 1000 < len(records) < 1300
    assert records[0] == {"id": 100_000, "name": "item-0000000", "score": 0.0, "tags": ["red", "green"],
                          "active": True}
    assert records[5] == {"id": 100_005, "name": "item-0000005", "score": 1.25, "tags": ["blue", "red"],
                          "active": False}
    assert all(isinstance(r["tags"], list) and len(r["tags"]) == 2 for r in records)
    assert len(obj["pad"]) < 2 * 52 + 16                   # the pad only fills the last records' worth
    assert len(make_payload("object", 1 * KiB)["records"]) >= 10


def test_object_payload_below_its_envelope_is_the_envelope():
    """The smallest object payload pickles to PAYLOAD_MIN_BYTES["object"]; the grid skips smaller sizes."""
    for size in (0, 8, 47):
        obj = make_payload("object", size)
        assert obj["records"] == [] and payload_size(obj) == size
        assert len(pickle.dumps(obj, protocol=pickle.DEFAULT_PROTOCOL)) == PAYLOAD_MIN_BYTES["object"]


def test_payload_errors():
    with pytest.raises(ValueError, match="unknown payload kind 'text'; known: bytes, numpy, object"):
        make_payload("text", 8)
    with pytest.raises(ValueError, match="must be >= 0"):
        make_payload("numpy", -1)
    assert list(PAYLOAD_KINDS) == ["bytes", "numpy", "object"]
    assert modules_for(["bytes", "object"]) == [] and modules_for(["numpy", "bytes", "numpy"]) == ["numpy"]


def test_numpy_is_imported_only_for_numpy_payloads():
    """A round process imports what preload imports; bytes and object payloads (and their echo checks)
    leave numpy out, a numpy payload brings it in."""
    code = ("import sys; from ipcbench.measure import orchestrator; orchestrator.preload(); "
            "from ipcbench.measure import payloads as p; "
            "x = [p.payload_size(p.make_payload(k, 4096)) for k in ('bytes', 'object')]; "
            "print('numpy' in sys.modules, end=' '); p.make_payload('numpy', 8); print('numpy' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]


# -- the raw floors carry arrays --------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 8, 64 * KiB, 64 * KiB + 1, 1 * MiB + 3])
def test_raw_ends_send_an_array_s_buffer_and_can_hand_out_arrays(size):
    a, b = socket.socketpair()
    c, d = socket.socketpair()          # one reader per socket: a reader keeps what it read ahead
    try:
        sender, as_bytes = RawFd(a, a, size), RawFd(b, b, size)
        sender2, as_array = RawFd(c, c, size), RawFd(d, d, size, as_array=True)
        arr = make_payload("numpy", size)
        t = threading.Thread(target=lambda: (sender.send(arr), sender2.send(arr), sender2.send(None)))
        t.start()
        got_bytes, got_array, end = as_bytes.recv(), as_array.recv(), as_array.recv()
        t.join()
        assert isinstance(got_bytes, bytes | bytearray) and got_bytes == arr.tobytes()
        assert isinstance(got_array, np.ndarray) and got_array.dtype == np.uint8 and np.array_equal(got_array, arr)
        assert got_array.flags.writeable and end is None
        copy = RawFd.__new__(RawFd)          # as a peer unpickles it (multiprocessing pickles the socket)
        copy.__setstate__(as_array.__getstate__())
        assert copy.as_array and copy.rfd == as_array.rfd and copy.size == size
        assert as_bytes.__getstate__()[3] is False
    finally:
        for s in (a, b, c, d):
            s.close()


# -- which mechanisms carry which kinds, and the grid ------------------------------------------------------
def test_floors_carry_bytes_and_numpy_and_the_rest_every_kind():
    kinds = {m.name: m.payload_kinds for m in all_mechanisms()}
    assert kinds["os_pipe"] == kinds["socketpair"] == ("bytes", "numpy")
    assert kinds["pipe_duplex"] == kinds["queue"] == kinds["pool_apply"] == ("bytes", "numpy", "object")
    m = Mechanism("x", "test", "x", patterns=("startup",), payload_kinds=["object", "bytes"])
    assert m.payload_kinds == ("bytes", "object") and m.carries("object") and not m.carries("numpy")
    with pytest.raises(DeclarationError, match="payload_kinds=.* has unknown kind 'text'; known: bytes, numpy, object"):
        Mechanism("x", "test", "x", patterns=("startup",), payload_kinds=("bytes", "text"))
    with pytest.raises(DeclarationError, match="names no kind"):
        Mechanism("x", "test", "x", patterns=("startup",), payload_kinds=())


def test_grid_runs_each_kind_a_mechanism_carries():
    grid = build_grid(["pipe_duplex", "os_pipe", "lock"], None, [8, 1 * KiB], [1, 2], ["fork"],
                      ["bytes", "numpy", "object"], catalogue=all_mechanisms(), kind_sizes={"numpy": [64 * KiB]})
    got = {(c.mechanism, c.pattern, c.payload_kind, c.payload_bytes) for c in grid}
    assert got == {
        *((m, p, "bytes", s) for m in ("pipe_duplex", "os_pipe") for p in ("roundtrip", "stream") for s in (8, 1 * KiB)),
        *((m, p, "numpy", 64 * KiB) for m in ("pipe_duplex", "os_pipe") for p in ("roundtrip", "stream")),
        *(("pipe_duplex", p, "object", 1 * KiB) for p in ("roundtrip", "stream")),      # 8 B: below an object
        ("lock", "contention", "bytes", 0)}                   # no payload: once, whatever the kinds
    assert len({c.id for c in grid}) == len(grid) == len({c.label() for c in grid})
    assert [c.payload_kind for c in grid if c.mechanism == "pipe_duplex" and c.pattern == "roundtrip"] == \
        ["bytes", "bytes", "numpy", "object"]               # kind by kind, each kind's sizes in order
    with pytest.raises(UserError, match="give no case"):
        build_grid(["os_pipe"], None, [1 * KiB], [1], ["fork"], ["object"], catalogue=all_mechanisms())
    assert build_grid(["queue"], ["roundtrip"], [8], [1], ["fork"], "numpy", catalogue=all_mechanisms())[0].payload_kind == "numpy"
    fanin = build_grid(["queue"], ["fanin"], [8], [1, 2], ["fork"], ["bytes", "numpy"], catalogue=all_mechanisms(),
                       kind_workers={"numpy": [1]})
    assert [(c.payload_kind, c.workers) for c in fanin] == [("bytes", 1), ("bytes", 2), ("numpy", 1)]


def test_kinds_give_distinct_ids_and_labels():
    cases = [Case("queue", "roundtrip", kind, 64 * KiB, 1, "fork") for kind in PAYLOAD_KINDS]
    assert [c.id for c in cases] == ["queue/roundtrip/64KiB/w1/fork/spread", "queue/roundtrip/numpy:64KiB/w1/fork/spread",
                                     "queue/roundtrip/object:64KiB/w1/fork/spread"]
    assert [c.label() for c in cases] == ["queue roundtrip 64 KiB w1 fork spread",
                                          "queue roundtrip 64 KiB w1 numpy fork spread",
                                          "queue roundtrip 64 KiB w1 object fork spread"]


def test_presets_kinds():
    smoke, quick, full = PRESETS["smoke"], PRESETS["quick"], PRESETS["full"]
    assert smoke.payload_kinds == full.payload_kinds == ("bytes", "numpy", "object") and quick.payload_kinds == ("bytes",)
    grid = build_grid(None, None, list(smoke.payload_sizes), worker_counts(smoke.workers, 2), ["fork"],
                      list(smoke.payload_kinds), catalogue=all_mechanisms(), kind_sizes=smoke.kind_sizes,
                      kind_workers=smoke.kind_workers)
    assert {c.payload_kind for c in grid} == {"bytes", "numpy", "object"}
    for kind in ("numpy", "object"):          # every mechanism that carries the kind, at the kind's sizes
        assert {c.payload_bytes for c in grid if c.payload_kind == kind} == set(smoke.sizes_for(kind))
        assert {c.workers for c in grid if c.payload_kind == kind} == {1}
        assert {c.mechanism for c in grid if c.payload_kind == kind} == \
            {m.name for m in all_mechanisms() if m.carries(kind) and set(m.patterns) - {"contention"}}
    assert not {c.mechanism for c in grid if c.payload_kind == "object"} & {"os_pipe", "socketpair"}
    assert max(full.sizes_for("object")) == 1 * MiB and min(full.sizes_for("object")) >= PAYLOAD_MIN_BYTES["object"]
    assert full.sizes_for("numpy") == full.payload_sizes
    assert {c.workers for c in grid if c.payload_kind == "bytes"} == {1, 2}
    assert check_payload_kinds([]) == ["bytes"] and check_payload_kinds(["object", "bytes", "object"]) == ["object", "bytes"]


# -- reading results: kinds are never mixed ------------------------------------------------------------
def test_each_kind_is_its_own_setup_in_answers_findings_and_the_report(tmp_path):
    """A result set with bytes and numpy cases of the same mechanisms and sizes: the answer table, the
    findings and the report keep the kinds apart (the answer table used to fail on the duplicate cases)."""
    from ipcbench.analysis.answers import answers
    from ipcbench.analysis.findings import key_findings
    from ipcbench.analysis.setups import setup_label, setups
    from ipcbench.reporting.page import report
    from ipcbench.results.frame import load_sets
    from tests.factories import case_record, result_set, write

    recs = [case_record(np.full(1200, base * (2 if kind == "numpy" else 1), dtype=np.int64), mechanism=mech,
                        payload_kind=kind, payload_bytes=size)
            for kind in ("bytes", "numpy") for mech, base in (("pipe_duplex", 40_000), ("queue", 60_000))
            for size in (8, 64 * KiB)]
    src = write(tmp_path / "r.json", result_set(recs))
    tidy = load_sets([src]).tidy
    labels = [label for label, _ in setups(tidy)]
    assert labels == ["test-machine · Python 3.11.7 · fork · spread",
                      "test-machine · Python 3.11.7 · fork · spread · numpy payloads"]
    assert setup_label("m", "3.12", "fork", "os", "object") == "m · Python 3.12 · fork · os · object payloads"
    table = answers(tidy)
    assert sorted(table["setup"].unique()) == labels and len(table) == 4
    assert set(table["leader"]) == {"pipe_duplex"}
    found = key_findings(tidy)
    assert any(f.setup == labels[1] for f in found) and any(f.setup == labels[0] for f in found)
    out = tmp_path / "report"
    report([src], out)
    assert "numpy payloads" in (out / "index.html").read_text()


# -- the command line ------------------------------------------------------------------------------------
def test_unknown_payload_kind_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ipcbench", "run", "--payload-kinds", "bytes,text", "-o",
                           str(tmp_path / "r.json")], capture_output=True, text=True, timeout=60, env=cli_env())
    assert proc.returncode == 2
    assert proc.stderr == "ipcbench: error: unknown payload kind 'text'; choose from bytes, numpy, object\n"
    assert not (tmp_path / "r.json").exists()


def test_list_shows_kinds_and_restrictions(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "payload kinds (--payload-kinds):" in out and "\n  numpy " in out and "\n  object " in out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("  os_pipe ")]
    assert line.endswith("[payload kinds: bytes, numpy only]")
    (line,) = [ln for ln in out.splitlines() if ln.startswith("  queue ")]
    assert "payload kinds" not in line


def test_run_records_its_kinds_and_resume_rebuilds_them(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["run", "-m", "pipe_duplex", "-p", "roundtrip", "--payload-kinds", "object,numpy",
                 "--payload-sizes", "8,1KiB", "--rounds", "1", "--preset", "smoke", "-q", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["run"]["payload_kinds"] == ["object", "numpy"] and data["run"]["kind_sizes"] == {}
    assert data["run"]["kind_workers"] == {"numpy": [1], "object": [1]}
    assert [(c["case"]["payload_kind"], c["case"]["payload_bytes"]) for c in data["cases"]] == [
        ("object", 1024), ("numpy", 8), ("numpy", 1024)]
    assert all(c["status"] == "ok" for c in data["cases"]), [c.get("error") for c in data["cases"]]
    # the preset's own sizes per kind when --payload-sizes is not given
    from ipcbench.cli import build_parser
    from ipcbench.commands.run import _grid, _settings

    args = build_parser().parse_args(["run", "--preset", "smoke", "-m", "queue"])
    settings, _ = _settings(args)
    assert settings["payload_kinds"] == ["bytes", "numpy", "object"]
    assert settings["kind_sizes"] == {"numpy": [64 * KiB], "object": [1 * KiB]}
    assert settings["kind_workers"] == {"numpy": [1], "object": [1]}
    assert {(c.payload_kind, c.payload_bytes, c.workers) for c in _grid(settings) if c.pattern == "fanin"} == {
        *(("bytes", s, w) for s in (8, 64 * KiB, 256 * KiB) for w in sorted({1, worker_counts("ends")[-1]})),
        ("numpy", 64 * KiB, 1), ("object", 1 * KiB, 1)}
    settings, _ = _settings(build_parser().parse_args(["run", "--preset", "smoke", "--workers", "1,2"]))
    assert settings["kind_workers"] == {}                     # --workers: the workers of every kind
    # a file from before payload kinds resumes as bytes only; --resume refuses --payload-kinds
    del data["run"]["payload_kinds"], data["run"]["kind_sizes"], data["run"]["kind_workers"]
    run = resume.settings_of(data, "old.json")
    assert run["payload_kinds"] == ["bytes"] and run["kind_sizes"] == run["kind_workers"] == {}
    data["run"]["status"] = "interrupted"
    out.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--payload-kinds", "numpy"]) == 2
    assert "drop --payload-kinds" in capsys.readouterr().err


# -- end to end, in real processes -------------------------------------------------------------------------
E2E = [("pipe_duplex", "roundtrip"), ("queue", "stream"), ("socketpair", "roundtrip"), ("pool_apply_async", "dispatch")]


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("mechanism, pattern, kind", [(m, p, k) for m, p in E2E for k in PAYLOAD_KINDS
                                                      if not (k == "object" and m == "socketpair")],
                         ids=lambda v: v)            # the floors carry no object payload (tested below)
def test_each_kind_end_to_end(mechanism, pattern, kind, method, no_leftovers):
    size = 2 * KiB
    rec = run_case(Case(mechanism, pattern, kind, size, 1, method), OPTS)
    assert rec["status"] == "ok", rec["error"]
    assert rec["case"]["payload_kind"] == kind
    m = {k: v["value"] for k, v in rec["metrics"].items()}
    assert m["latency_p50"] > 0 and m["throughput_bytes"] > 0
    per_op = 1 if pattern == "stream" else 2
    assert all(r["bytes_per_op"] == per_op * size for r in rec["rounds"])


@pytest.mark.slow
def test_smoke_preset_runs_every_kind_and_exports_them(tmp_path):
    """``ipcbench run --preset smoke`` then ``ipcbench export --format csv``: rows of every kind."""
    out, table = tmp_path / "smoke.json", tmp_path / "smoke.csv"
    proc = subprocess.run([sys.executable, "-m", "ipcbench", "run", "--preset", "smoke", "-q", "-o", str(out)],
                          capture_output=True, text=True, env=cli_env(), timeout=400, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    failed = [(c["case"], c["error"]) for c in data["cases"] if c["status"] != "ok"]
    assert not failed
    proc = subprocess.run([sys.executable, "-m", "ipcbench", "export", str(out), "--format", "csv", "-o", str(table)],
                          capture_output=True, text=True, env=cli_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    with table.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["payload_kind"] for r in rows} == {"bytes", "numpy", "object"}
    assert {r["mechanism"] for r in rows if r["payload_kind"] == "object"}.isdisjoint({"os_pipe", "socketpair"})
    assert {r["payload_bytes"] for r in rows if r["payload_kind"] == "object"} == {"1024"}
    assert os.path.getsize(table) > 0
