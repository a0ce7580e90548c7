import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipcbench.cli import main
from tests.factories import case_record, result_set, write

ROOT = Path(__file__).resolve().parent.parent


def cli_env() -> dict:
    """The environment as it is now (so the ``no_leftovers`` mark and ``plugin_env`` reach the CLI)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "ipcbench", *args], capture_output=True, text=True,
                          env=cli_env(), timeout=120, **kw)


@pytest.mark.parametrize("args,message", [
    (["run", "-m", "carrier_pigeon"], "unknown mechanism 'carrier_pigeon'"),
    (["run", "--payload-sizes", "-8"], "payload size '-8' is negative"),
    (["run", "--payload-sizes", "8,lots"], "cannot read payload size 'lots'"),
    (["run", "--workers", "0"], "worker count must be 1 or more"),
    (["run", "--preset", "huge"], "unknown preset 'huge'"),
    (["run", "--start-method", "teleport"], "start method 'teleport' is not available"),
    (["run", "-p", "gossip"], "unknown pattern 'gossip'"),
    (["run", "--seed", "-3"], "--seed must be 0 or more, got -3"),
    (["run", "--rounds", "3", "--max-rounds", "9"], "--rounds sets both --min-rounds and --max-rounds"),
    (["run", "--min-rounds", "0"], "--min-rounds must be 1 or more, got 0"),
    (["run", "--min-rounds", "6", "--max-rounds", "4"], "--max-rounds (4) must be at least --min-rounds (6)"),
    (["run", "--target-ci", "5"], "--target-ci must be a fraction between 0 and 1"),
    (["run", "--case-budget", "-1"], "--case-budget must be 0 (no limit) or more"),
    (["export", "missing.json"], "missing.json: no such file or folder"),
    (["export", "r.json", "--format", "xlsx"], "unknown export format 'xlsx'"),
    (["run", "--bogus-flag"], "unrecognized arguments: --bogus-flag"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "r.json", result_set([case_record()]))
    with pytest.raises(SystemExit) if args[-1] == "--bogus-flag" else _nullcontext() as exc:
        rc = main(args)
    rc = exc.value.code if exc else rc
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))


class _nullcontext:
    value = None

    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def test_truncated_and_foreign_files_through_the_real_cli(tmp_path):
    good = json.dumps(result_set([case_record()]))
    (tmp_path / "cut.json").write_text(good[: len(good) // 2])
    (tmp_path / "foreign.json").write_text('{"hello": "world"}')
    for name, message in (("cut.json", "not valid JSON"), ("foreign.json", "not an ipcbench result file")):
        proc = run_cli("export", str(tmp_path / name))
        assert proc.returncode == 2
        assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_export_csv_has_the_tidy_columns(tmp_path):
    src = write(tmp_path / "r.json", result_set([case_record(), case_record(status="failed")], machine_id="m1"))
    assert main(["export", str(src), "--format", "csv", "-o", str(tmp_path / "r.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert list(rows[0])[:12] == ["machine_id", "python_version", "start_method", "mechanism", "pattern",
                                  "payload_kind", "payload_bytes", "workers", "placement", "metric", "value", "unit"]
    assert {r["machine_id"] for r in rows} == {"m1"}
    p50 = [r for r in rows if r["metric"] == "latency_p50"]
    assert len(p50) == 1 and p50[0]["unit"] == "s" and 40e-6 < float(p50[0]["value"]) < 60e-6


def test_export_csv_opens_text_that_looks_like_a_formula_as_text(tmp_path):
    """A foreign result file's text reaches the CSV as text: a spreadsheet would run '=...' as a formula."""
    from ipcbench.results.formats.csv import without_formulas

    rec = case_record()
    rec["case"]["mechanism"] = '=HYPERLINK("http://x","y")'
    src = write(tmp_path / "r.json", result_set([rec], machine_id="m1"))
    assert main(["export", str(src), "--format", "csv", "-o", str(tmp_path / "r.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert rows and {r["mechanism"] for r in rows} == {"'=HYPERLINK(\"http://x\",\"y\")"}
    import pandas as pd

    frame = pd.DataFrame({"t": ["+1", "-x", "@a", "\tb", "ok", None], "v": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0]})
    got = without_formulas(frame)
    assert got.t.tolist()[:5] == ["'+1", "'-x", "'@a", "'\tb", "ok"] and pd.isna(got.t[5])
    assert got.v.tolist() == frame.v.tolist()
    assert frame.t[0] == "+1"                                   # the caller's frame is left as it was


def test_list_names_every_mechanism(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("queue", "pipe_duplex", "pipe_simplex", "manager_dict", "manager_list", "manager_queue",
                 "pool_apply", "pool_apply_async", "process_start", "lock"):
        assert f"\n  {name} " in out
    assert "latency_p999" in out and "presets:" in out


def test_run_then_export_end_to_end(tmp_path, no_leftovers):
    out = tmp_path / "r.json"
    proc = run_cli("run", "-m", "pipe_duplex,queue,manager_dict,pool_apply", "--payload-sizes", "8",
                   "--workers", "1", "--rounds", "2", "--preset", "smoke", "--payload-kinds", "bytes", "--seed", "77",
                   "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["run"]["status"] == "complete"
    assert data["run"]["order"]["seed"] == 77 and "seed 77" in proc.stderr
    assert sorted(r["order"] for c in data["cases"] for r in c["rounds"]) == list(range(14))
    assert [(c["case"]["mechanism"], c["case"]["pattern"]) for c in data["cases"]] == [
        ("pipe_duplex", "roundtrip"), ("pipe_duplex", "stream"), ("queue", "roundtrip"), ("queue", "stream"),
        ("queue", "fanin"), ("manager_dict", "rpc"), ("pool_apply", "dispatch")]
    assert all(c["status"] == "ok" for c in data["cases"])
    assert {c["case"]["payload_bytes"] for c in data["cases"]} == {8}
    assert data["run"]["launcher"] == "warm-fork" and data["run"]["launcher_starts"] == 1
    assert data["run"]["adaptive"]["rounds_min"] == data["run"]["adaptive"]["rounds_max"] == 2
    assert all(c["stop_reason"] in ("target met", "max rounds") for c in data["cases"])
    assert all(c["target_met"] == (c["stop_reason"] == "target met") for c in data["cases"])
    assert data["machine"]["logical_cores"] >= 1 and data["python"]["pickle_default_protocol"] >= 4
    assert "[7/7]" in proc.stderr and "ETA" in proc.stderr
    csv_out = run_cli("export", str(out), "--format", "csv")
    assert csv_out.returncode == 0
    assert csv_out.stdout.splitlines()[0].startswith("machine_id,python_version,start_method,mechanism")


def test_ctrl_c_keeps_finished_cases(tmp_path, no_leftovers):
    """24 cases x 2 rounds: three blocks of 8 cases in the run order. In the first block every case has its
    first round before any finishes, so Ctrl-C after the first finished case leaves finished and partial
    cases of that block, all kept, and nothing of the others."""
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "ipcbench", "run", "-m", "pipe_duplex,queue,pipe_simplex",
                             "--preset", "smoke", "--payload-kinds", "bytes", "--seed", "5", "-o", str(out)],
                            env=cli_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and json.loads(out.read_text())["cases"]:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    data = json.loads(out.read_text())
    assert data["run"]["status"] == "interrupted" and data["run"]["order"]["seed"] == 5
    assert data["run"]["order"]["block_cases"] == 8 and 8 <= len(data["cases"]) < 24
    # every case that had a round is kept (usually the first block's 8; a late SIGINT on a busy machine
    # may land in the second block's first pass), and no other
    orders = sorted(r["order"] for c in data["cases"] for r in c["rounds"])
    assert orders == list(range(len(orders)))
    assert all(c["status"] == "ok" and c["rounds_planned"] == 2 for c in data["cases"])
    full = [c for c in data["cases"] if len(c["rounds"]) == 2]
    short = [c for c in data["cases"] if len(c["rounds"]) == 1]
    assert len(full) + len(short) == len(data["cases"]) and 1 <= len(full) < len(data["cases"]) and short
    assert all(c["metrics"]["latency_p50"]["value"] > 0 for c in short)      # from the round they have
    assert all(c["stop_reason"] == "interrupted" for c in short)
    assert all(c["stop_reason"] in ("target met", "max rounds") for c in full)
    assert (f"interrupted; {len(full)} finished case(s) kept in {out}, and {len(short)} case(s) with only "
            f"some of their rounds") in err
    assert "Traceback" not in err


def _wait_for_first_case(out, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(out.read_text())["cases"]:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError("no case finished in time")


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["TERM", "HUP"])
def test_sigterm_and_sighup_end_the_run_like_ctrl_c(sig, status, tmp_path, no_leftovers):
    """SIGTERM (a CI job cancelled, a container stopped) or SIGHUP (the terminal closed): rounds killed,
    launcher closed, the file kept and marked interrupted, exit status 128 + the signal's number."""
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "ipcbench", "run", "-m", "pipe_duplex,queue,pipe_simplex",
                             "--preset", "smoke", "--seed", "5", "-o", str(out)], env=cli_env(),
                            stderr=subprocess.PIPE, text=True)
    _wait_for_first_case(out, proc)
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert time.monotonic() - t0 < 10
    data = json.loads(out.read_text())
    assert data["run"]["status"] == "interrupted" and data["cases"]
    assert f"ipcbench: terminated ({sig.name}); " in err and "Traceback" not in err


def test_failed_and_timed_out_cases_leave_nothing_behind(tmp_path, plugin_env, no_leftovers):
    """A crashing peer and a hanging one (killed at the deadline), through the CLI and the warm launcher:
    both recorded as failed with their reasons, and no process or /dev/shm name outlives the run."""
    out = tmp_path / "r.json"
    proc = run_cli("run", "-m", "test_crash,test_hang,pipe_duplex", "-p", "roundtrip", "--payload-sizes", "8",
                   "--workers", "1", "--preset", "smoke", "--payload-kinds", "bytes", "--timeout", "3", "--seed", "3",
                   "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    cases = {c["case"]["mechanism"]: c for c in json.loads(out.read_text())["cases"]}
    assert cases["test_crash"]["status"] == "failed" and "exited with status 3" in cases["test_crash"]["error"]
    assert cases["test_hang"]["error"].startswith("timed out after 3 s in ")
    assert cases["test_hang"]["stop_reason"] == "failed" and cases["pipe_duplex"]["status"] == "ok"
    assert "1 of 1 within" in proc.stderr or "0 of 1 within" in proc.stderr


def test_run_help_explains_adaptive_rounds():
    proc = run_cli("run", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for flag in ("--target-ci", "--min-rounds", "--max-rounds", "--case-budget", "--run-budget", "--fresh-rounds",
                 "--rounds", "--placement"):
        assert flag in text
    assert "stop_reason: target met | max rounds | out of reach | time budget | run budget | failed | interrupted" in text


@pytest.mark.parametrize("command", ["run", "aa", "selfcheck", "compare", "report", "export", "list", "machine"])
def test_help_shows_percent_signs_once(command):
    """argparse formats help= strings with %, not descriptions: a description's '%%' reached the screen."""
    proc = run_cli(command, "--help")
    assert proc.returncode == 0
    assert "%%" not in proc.stdout
    if command == "aa":
        assert "(should be at most 5 %)" in " ".join(proc.stdout.split())


def test_a_payload_the_machine_cannot_hold_is_refused_before_the_run(tmp_path, capsys):
    import psutil

    from ipcbench.plan.cases import Case
    from ipcbench.plan.memory import need

    total = psutil.virtual_memory().total
    too_big = total // 8          # fits one copy many times over, not the 13 copies of a queue fanin with w2
    out = tmp_path / "r.json"
    assert main(["run", "-m", "queue", "--payload-sizes", f"8,{too_big}", "--workers", "1,2", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    worst = Case("queue", "fanin", "bytes", too_big, 2, "fork", "spread")
    assert err.startswith(f"ipcbench: error: case {worst.id} may need up to ") and err.count("\n") == 1
    assert "more than 80% of this machine's" in err and "choose smaller --payload-sizes or fewer --workers" in err
    assert need(worst) > 0.8 * total and not out.exists()
