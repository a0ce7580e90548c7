"""``ipcbench run --resume FILE`` and the checks before a run writes anything (issue 14): a run ended by a
signal is completed without repeating its finished cases; a file of another machine, Python or version,
a complete run, a run still being written and a file without its settings are refused; an existing,
unwritable or too-full output place is refused before anything runs; a write that fails mid-run loses
nothing."""

import json
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest

from ipcbench import __version__
from ipcbench.cli import main
from ipcbench.errors import UserError
from ipcbench.measure import resume, runner
from ipcbench.plan.cases import Case
from tests.test_cli import _wait_for_first_case, cli_env

RUN = ["run", "-m", "pipe_duplex,queue,pipe_simplex", "--preset", "smoke", "--payload-kinds", "bytes", "--seed", "5"]


def _ids(data):
    return [Case.from_dict(c["case"]).id for c in data["cases"]]


def test_sigterm_then_resume_completes_the_run_without_repeating_finished_cases(tmp_path, no_leftovers):
    """The smoke grid of three mechanisms (24 cases x 2 rounds), ended by SIGTERM after its first finished
    case, then resumed: the file ends complete, in grid order, with every case once; the finished cases
    are the very records of the first part; interrupted cases ran again, their partial records kept in
    run.resumed; the round numbers and clock go on from the first part; nothing is left running."""
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "ipcbench", *RUN, "-o", str(out)], env=cli_env(),
                            stderr=subprocess.PIPE, text=True)
    _wait_for_first_case(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert f"`ipcbench run --resume {out}` goes on" in err
    first = json.loads(out.read_text())
    assert first["run"]["status"] == "interrupted"
    finished = {cid: rec for cid, rec in zip(_ids(first), first["cases"]) if rec["stop_reason"] != "interrupted"}
    partial = {cid: rec for cid, rec in zip(_ids(first), first["cases"]) if rec["stop_reason"] == "interrupted"}
    assert finished and len(first["cases"]) < 24
    last_order = max(r["order"] for c in first["cases"] for r in c["rounds"])

    done = subprocess.run([sys.executable, "-m", "ipcbench", "run", "--resume", str(out)], env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (f"resuming {out}: {len(finished)} finished case(s) kept, {24 - len(finished)} to run "
            f"({len(partial)} interrupted case(s) start again") in done.stderr
    data = json.loads(out.read_text())
    assert data["run"]["status"] == "complete" and data["run"]["finished"]
    ids = _ids(data)
    assert len(ids) == 24 and len(set(ids)) == 24
    assert ids == [c.id for c in _grid_of(data)]                        # grid order, as a run in one go
    for cid, rec in finished.items():
        assert data["cases"][ids.index(cid)] == rec                     # kept as they were
    assert all(c["stop_reason"] in ("target met", "max rounds") and len(c["rounds"]) == 2 for c in data["cases"])
    (entry,) = data["run"]["resumed"]
    assert entry["cases_kept"] == len(finished) and entry["cases_to_run"] == 24 - len(finished)
    assert {Case.from_dict(r["case"]).id for r in entry["superseded"]} == set(partial)
    assert isinstance(entry["order"]["seed"], int) and entry["order"]["rule"] == first["run"]["order"]["rule"]
    assert entry["launcher"] in ("warm-fork", "fresh-interpreter") and data["run"]["order"] == first["run"]["order"]
    new_rounds = [r for cid, c in zip(ids, data["cases"]) if cid not in finished for r in c["rounds"]]
    assert sorted(r["order"] for r in new_rounds) == list(range(last_order + 1, last_order + 1 + len(new_rounds)))
    last_start = max(r["start_s"] for c in first["cases"] for r in c["rounds"])
    assert min(r["start_s"] for r in new_rounds) > last_start
    assert "Traceback" not in done.stderr

    again = subprocess.run([sys.executable, "-m", "ipcbench", "run", "--resume", str(out)], env=cli_env(),
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"ipcbench: error: {out}: its run is 'complete'; only an interrupted run (or one that was killed, "
        f"still marked \"running\") can be resumed"]


def _grid_of(data):
    """The grid the file's recorded settings make, as ``ipcbench run`` builds it."""
    from ipcbench.commands.run import _grid

    run = data["run"]
    return _grid({k: run[k] for k in ("mechanisms", "patterns", "payload_sizes", "workers", "start_methods",
                                      "placements")})


# -- what is checked, without measuring ----------------------------------------------------------------
def _unfinished(tmp_path, capsys=None, **changes):
    """A small real run's file, turned into an interrupted one: ``cases`` 0 and 1 finished, 2 interrupted."""
    out = tmp_path / "u.json"
    assert main(["run", "-m", "pipe_duplex", "-p", "roundtrip", "--payload-sizes", "8,64,1KiB", "--rounds", "1",
                 "--preset", "smoke", "--payload-kinds", "bytes", "-q", "--overwrite", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    data["run"]["status"] = "interrupted"
    data["cases"][2]["stop_reason"] = "interrupted"
    for key, value in changes.items():
        node = data
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    out.write_text(json.dumps(data))
    if capsys is not None:
        capsys.readouterr()
    return out, data


@pytest.fixture
def fake_run(monkeypatch):
    """``run_cases`` of a resumed run replaced by one that records what it was given and adds nothing
    (a run that is not resumed runs for real)."""
    seen = {}
    real = runner.run_cases

    def fake(cases, opts, writer, progress, continuation=None):
        if continuation is None:
            return real(cases, opts, writer, progress)
        seen.update(cases=cases, opts=opts, continuation=continuation)
        writer.finish("complete")
        return writer.data

    monkeypatch.setattr(runner, "run_cases", fake)
    return seen


def test_resume_runs_what_is_left_with_the_recorded_settings(tmp_path, fake_run, capsys):
    out, data = _unfinished(tmp_path, **{"run.adaptive.run_budget_s": 30.0})
    assert main(["run", "--resume", str(out), "--seed", "9"]) == 0
    assert [c.id for c in fake_run["cases"]] == [_ids(data)[2]]
    cont, opts = fake_run["continuation"], fake_run["opts"]
    assert list(cont.positions) == [2]
    assert cont.order_start == 1 + max(r["order"] for c in data["cases"] for r in c["rounds"])
    assert cont.start_s > 0
    assert opts.seed == 9 and opts.rounds == 1 and opts.rounds_max == 1
    assert opts.run_budget_s == pytest.approx(10.0)          # the budget's share of the 1 case left of 3
    assert opts.round_timeout_s == data["run"]["round_timeout_s"]
    assert opts.spec.to_dict() == data["run"]["spec"]
    written = json.loads(out.read_text())
    assert written["cases"] == data["cases"][:2]             # the interrupted one moved out
    assert written["run"]["resumed"][0]["superseded"] == [data["cases"][2]]
    assert "resuming" in capsys.readouterr().err


def test_resume_keeps_the_floor_of_the_run_and_old_files_have_none(tmp_path, fake_run):
    out, _ = _unfinished(tmp_path, **{"run.adaptive.run_budget_s": 30.0, "run.adaptive.rounds_floor": 3})
    assert main(["run", "--resume", str(out)]) == 0
    assert fake_run["opts"].floor_rounds == 3 and fake_run["opts"].stop_rule().floor_rounds == 3
    old = tmp_path / "old"
    old.mkdir()
    out, data = _unfinished(old, **{"run.adaptive.run_budget_s": 30.0})
    data["run"]["adaptive"].pop("rounds_floor", None)           # written before the floor existed
    out.write_text(json.dumps(data))
    assert main(["run", "--resume", str(out)]) == 0
    assert fake_run["opts"].floor_rounds is None


def test_resume_with_nothing_left_just_completes_the_file(tmp_path, fake_run, capsys):
    out, data = _unfinished(tmp_path)
    data["cases"][2]["stop_reason"] = "max rounds"
    out.write_text(json.dumps(data))
    assert main(["run", "--resume", str(out)]) == 0
    assert "cases" not in fake_run
    assert json.loads(out.read_text())["run"]["status"] == "complete"
    assert "nothing was left to run" in capsys.readouterr().err


@pytest.mark.parametrize("changes, message", [
    ({"run.status": "complete"}, "its run is 'complete'; only an interrupted run"),
    ({"machine.identity": "elsewhere-abc123"}, "was measured on another machine ('elsewhere-abc123'"),
    ({"python.python_version": "2.7.18"}, "was measured with CPython 2.7.18 and this is CPython"),
    ({"ipcbench_version": "0.0.1"}, f"was measured with ipcbench 0.0.1 and this is {__version__}"),
    ({"run.adaptive": {"rounds_min": 1}}, "cannot be resumed: its run does not record adaptive.rounds_max"),
    ({"run.mechanisms": None, "run.patterns": ["stream"]}, "has case pipe_duplex/roundtrip/8B/w1/fork/spread, "
                                                           "which its recorded settings do not make"),
])
def test_resume_refuses_what_it_cannot_continue(tmp_path, fake_run, capsys, changes, message):
    out, _ = _unfinished(tmp_path, capsys, **changes)
    before = out.read_bytes()
    assert main(["run", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ipcbench: error: {out}: ") and message in err and len(err.splitlines()) == 1
    assert out.read_bytes() == before and "cases" not in fake_run


def test_resume_refuses_a_file_without_settings_and_a_case_twice(tmp_path, fake_run, capsys):
    out, data = _unfinished(tmp_path, capsys)
    del data["run"]["fresh_rounds"], data["run"]["mechanisms"]
    out.write_text(json.dumps(data))
    assert main(["run", "--resume", str(out)]) == 2
    assert "does not record mechanisms, fresh_rounds (written by an ipcbench before --resume" in capsys.readouterr().err
    out, data = _unfinished(tmp_path, capsys)
    data["cases"].append(data["cases"][0])
    out.write_text(json.dumps(data))
    assert main(["run", "--resume", str(out)]) == 2
    assert "has case pipe_duplex/roundtrip/8B/w1/fork/spread twice" in capsys.readouterr().err


def test_resume_refuses_a_run_that_is_still_being_written(tmp_path, fake_run, capsys):
    parent = os.getppid()         # a live process that started before the run (the pytest launcher)
    out, _ = _unfinished(tmp_path, capsys, **{"run.status": "running", "run.pid": parent})
    assert main(["run", "--resume", str(out)]) == 2
    assert f"is still being written by process {parent}" in capsys.readouterr().err
    gone = subprocess.Popen(["true"])
    gone.wait()
    out, _ = _unfinished(tmp_path, **{"run.status": "running", "run.pid": gone.pid})
    assert main(["run", "--resume", str(out)]) == 0           # killed: its process is gone


def test_resume_takes_no_measurement_flags(tmp_path, fake_run, capsys):
    out, _ = _unfinished(tmp_path, capsys)
    assert main(["run", "--resume", str(out), "-m", "queue", "--rounds", "3", "--fresh-rounds"]) == 2
    assert capsys.readouterr().err == ("ipcbench: error: --resume takes every measurement setting from the file; "
                                       "drop --mechanisms, --rounds, --fresh-rounds (only --seed and -q go with "
                                       "--resume)\n")


def test_plan_keeps_finished_cases_and_supersedes_interrupted_ones():
    grid = [Case("pipe_duplex", "roundtrip", "bytes", size, 1, "fork", "spread") for size in (8, 64, 1024, 4096)]
    recs = [{"case": grid[3].to_dict(), "stop_reason": "max rounds"},
            {"case": grid[1].to_dict(), "stop_reason": "interrupted"},
            {"case": grid[0].to_dict(), "stop_reason": "failed"}]
    p = resume.plan({"cases": recs}, grid, "f.json")
    assert p.kept == [(recs[0], 3), (recs[2], 0)]
    assert p.todo == [1, 2] and p.superseded == [recs[1]]
    with pytest.raises(UserError, match="has case pipe_duplex/roundtrip/8B/w1/fork/spread, which"):
        resume.plan({"cases": recs}, grid[1:], "f.json")


def test_next_order_and_the_clock_of_a_resumed_part():
    from datetime import datetime, timezone

    data = {"run": {"started": "2026-12-02T10:00:00+00:00",
                    "resumed": [{"superseded": [{"rounds": [{"order": 11}, {"ok": False}]}]}]},
            "cases": [{"rounds": [{"order": 3}, {"order": 7}]}, {"rounds": []}]}
    assert resume.next_order(data) == 12
    assert resume.next_order({"cases": []}) == 0
    now = datetime(2026, 12, 2, 10, 1, 30, tzinfo=timezone.utc)
    assert resume.seconds_since_start(data, now) == 90.0
    assert resume.seconds_since_start({"run": {}}, now) == 0.0


# -- the output place, checked before anything runs -------------------------------------------------------
def _run_args(out, *extra):
    return ["run", "-m", "pipe_duplex", "-p", "roundtrip", "--payload-sizes", "8", "--payload-kinds", "bytes",
            "--rounds", "1", "--preset", "smoke", "-q", "-o", str(out), *extra]


def test_an_existing_result_file_is_never_overwritten_by_accident(tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("precious")
    assert main(_run_args(out)) == 2
    assert capsys.readouterr().err == (f"ipcbench: error: {out} exists; give another -o, --resume it if its run "
                                       f"was interrupted, or add --overwrite to replace it\n")
    assert out.read_text() == "precious"
    assert main(_run_args(out, "--overwrite")) == 0
    assert json.loads(out.read_text())["run"]["status"] == "complete"


def test_an_unusable_output_place_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(_run_args(blocker / "sub" / "r.json")) == 2
    assert capsys.readouterr().err == (f"ipcbench: error: cannot write {blocker}/sub/r.json: {blocker} is a file, "
                                       f"not a folder; give -o a writable place\n")
    assert main(_run_args(tmp_path)) == 2
    assert f"{tmp_path} is a folder; give -o a file name" in capsys.readouterr().err

    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: SimpleNamespace(total=10**9, used=10**9 - 5000, free=5000))
    out = tmp_path / "full" / "r.json"
    assert main(_run_args(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ipcbench: error: only 4.9 KiB free in {out.parent}; the result file of 1 cases needs up to ")
    assert not out.exists()


def test_a_write_that_fails_mid_run_keeps_everything_in_a_rescue_file(tmp_path, monkeypatch, capsys):
    """The disk fills up after the run started: the set goes to a rescue file (said once), and back to the
    real file when it can be written again."""
    out = tmp_path / "r.json"
    real = runner.write_json_atomic
    failing = {"on": False}

    def flaky(path, data):
        if failing["on"] and os.fspath(path) == os.fspath(out):
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(runner, "write_json_atomic", flaky)
    writer = runner.ResultWriter(out, "m-1", {"preset": "test"})
    failing["on"] = True
    writer.add({"case": {"n": 1}}, position=0)
    writer.add({"case": {"n": 2}}, position=1)
    err = capsys.readouterr().err
    rescue = writer.rescue_path
    assert err == (f"ipcbench: cannot write {out} (No space left on device); the results are kept in {rescue} "
                   f"meanwhile\n")
    assert [c["case"]["n"] for c in json.loads(rescue.read_text())["cases"]] == [1, 2]
    assert json.loads(out.read_text())["cases"] == []
    failing["on"] = False
    writer.finish("complete")
    assert [c["case"]["n"] for c in json.loads(out.read_text())["cases"]] == [1, 2]
    assert f"{out} is written again; the rescue copy {rescue} can go" in capsys.readouterr().err
    assert writer.rescue_path is None
    rescue.unlink()


def test_the_run_records_what_resume_needs(tmp_path):
    out = tmp_path / "r.json"
    assert main(_run_args(out)) == 0
    run = json.loads(out.read_text())["run"]
    assert set(resume.SETTINGS) <= set(run) and set(resume.ADAPTIVE) <= set(run["adaptive"])
    assert set(resume.DEFAULTS) <= set(run) and run["payload_kinds"] == ["bytes"]
    assert run["mechanisms"] == ["pipe_duplex"] and run["patterns"] == ["roundtrip"]
    assert run["pid"] == os.getpid() and run["fresh_rounds"] is False
    from ipcbench.measure.machine_file import load

    assert json.loads(out.read_text())["machine"]["identity"] == load()["machine_id"]


def test_a_run_that_could_only_write_its_rescue_file_says_where_it_is(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r.json"
    real = runner.write_json_atomic
    calls = {"n": 0}

    def full_after_the_first(path, data):
        if os.fspath(path) == os.fspath(out):
            calls["n"] += 1
            if calls["n"] > 1:
                raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(runner, "write_json_atomic", full_after_the_first)
    assert main(_run_args(out)) == 1
    err = capsys.readouterr().err.splitlines()
    rescue = err[0].rsplit(" are kept in ", 1)[1].removesuffix(" meanwhile")
    assert err[-1] == f"ipcbench: error: could not write {out}; the results are in {rescue}"
    data = json.loads(open(rescue).read())
    assert data["run"]["status"] == "complete" and len(data["cases"]) == 1
    os.unlink(rescue)


def test_a_refused_seed_writes_nothing(tmp_path, capsys):
    """Every setting is checked before the output folder is made."""
    assert main(["run", "-m", "queue", "--seed", "-1", "-o", str(tmp_path / "sub" / "r.json")]) == 2
    assert "--seed must be 0 or more, got -1" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_quick_floor_gives_way_to_a_given_minimum(tmp_path, monkeypatch):
    """quick's run budget caps its own minimum (down to its floor); a --min-rounds or --rounds is kept."""
    seen = []

    def fake(cases, opts, writer, progress, continuation=None):
        seen.append(opts)
        writer.finish("complete")
        return writer.data

    monkeypatch.setattr(runner, "run_cases", fake)
    base = ["run", "--preset", "quick", "-m", "pipe_duplex", "-p", "roundtrip", "--payload-sizes", "8", "-q",
            "--overwrite", "-o", str(tmp_path / "q.json")]
    for extra, floor in (([], 3), (["--min-rounds", "6"], None), (["--rounds", "4"], None)):
        assert main(base + extra) == 0
        assert seen[-1].floor_rounds == floor and seen[-1].run_budget_s == 240.0
