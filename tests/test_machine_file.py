"""The per-user machine file: identity made once, distinct for clones, shown and edited by `ipcbench machine`."""

import json

import pytest

from ipcbench import cli
from ipcbench.errors import UserError
from ipcbench.measure import machine_file as mf
from ipcbench.measure.environment import machine_metadata


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("IPCBENCH_MACHINE_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    return tmp_path / "cfg" / "ipcbench" / "machine.json"


def test_made_once_on_first_use_and_kept(home):
    assert not home.exists()
    first = mf.default_machine_id()
    assert home.exists() and json.loads(home.read_text())["machine_id"] == first
    assert first.startswith(mf.hostname() + "-") and len(first) == len(mf.hostname()) + 7
    assert mf.default_machine_id() == first                      # read back, not made again
    assert machine_metadata(with_checks=False)["machine_id"] == first


def test_two_clones_of_one_image_get_different_ids(tmp_path, monkeypatch):
    """Same hostname, same /etc/machine-id: each first run makes its own id."""
    ids = set()
    for clone in ("a", "b"):
        monkeypatch.setenv("IPCBENCH_MACHINE_FILE", str(tmp_path / clone / "machine.json"))
        ids.add(mf.default_machine_id())
    assert len(ids) == 2


def test_cli_shows_and_edits(home, capsys):
    assert cli.main(["machine"]) == 0
    out = capsys.readouterr().out
    assert f"file:        {home}" in out and "description: (none" in out
    assert cli.main(["machine", "--id", "lab-box", "--description", "Ryzen <b>7950X</b>"]) == 0
    out, err = capsys.readouterr()
    assert "machine id:  lab-box" in out and "description: Ryzen <b>7950X</b>" in out
    assert "results already written stay under results/" in err
    md = machine_metadata(with_checks=False)
    assert (md["machine_id"], md["description"]) == ("lab-box", "Ryzen <b>7950X</b>")
    assert machine_metadata("other-id", with_checks=False)["description"] is None     # --machine-id: not ours
    assert cli.main(["machine", "--new"]) == 0
    assert mf.default_machine_id() != "lab-box"


def test_a_renamed_or_cloned_host_is_pointed_out(home, capsys):
    mf.default_machine_id()
    data = json.loads(home.read_text())
    data["hostname"] = "some-other-host"
    home.write_text(json.dumps(data))
    assert cli.main(["machine"]) == 0
    assert "made on host 'some-other-host'" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["", "../etc", "a b", "x/y", "-lead", "a" * 65, "a..b"])
def test_bad_ids_are_refused_in_one_line(home, capsys, bad):
    with pytest.raises(UserError, match="not usable"):
        mf.check_id(bad)
    assert cli.main(["machine", f"--id={bad}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not usable" in err


def test_run_refuses_a_machine_id_that_is_a_path(tmp_path, capsys):
    assert cli.main(["run", "--preset", "smoke", "-m", "pipe_duplex", "--machine-id", "../../tmp/x",
                     "-o", str(tmp_path / "r.json")]) == 2
    assert "is not usable" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("content, message", [("{not json", "not a valid machine file"),
                                              ('{"machine_id": "x"}', "not an ipcbench machine file")])
def test_a_damaged_file_is_one_line(home, capsys, content, message):
    home.parent.mkdir(parents=True)
    home.write_text(content)
    assert cli.main(["machine"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "delete it" in err


def test_unwritable_location_falls_back_to_a_derived_id(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("IPCBENCH_MACHINE_FILE", str(blocker / "machine.json"))     # a parent that is a file
    data = mf.load()
    assert data["saved"] is False and data["machine_id"] == mf.derived_id()
