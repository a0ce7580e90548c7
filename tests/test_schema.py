import json

import pytest

from ipcbench.errors import UserError
from ipcbench.results.io import write_json_atomic as write_atomic
from ipcbench.results.schema import SCHEMA_VERSION, load_result
from tests.factories import case_record, result_set, write


def test_write_atomic_roundtrip_and_no_temp_left(tmp_path):
    data = result_set([case_record()])
    path = tmp_path / "sub" / "r.json"
    write_atomic(path, data)
    assert load_result(path)["cases"][0]["case"]["mechanism"] == "pipe_duplex"
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]
    assert path.stat().st_mode & 0o044          # readable by others, not 0600


def test_write_atomic_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_atomic(tmp_path / "x.json", {"v": float("nan")})
    assert list(tmp_path.iterdir()) == []      # nothing half-written


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    ('{"schema": "ipcbench-result", "schema_ver', "not valid JSON"),
    ('{"benchmarks_not": []}', "not an ipcbench result file"),
    ('[1, 2]', "not an ipcbench result file"),
    ('{"schema": "ipcbench-result", "schema_version": 99, "cases": []}', "newer than this ipcbench"),
    ('{"schema": "ipcbench-result", "schema_version": 0, "cases": []}', "cannot be migrated"),
    ('{"schema": "ipcbench-result", "schema_version": "1", "cases": []}', "no integer schema_version"),
])
def test_bad_files_give_one_clear_error(tmp_path, content, message):
    p = tmp_path / "r.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(UserError, match=message) as exc:
        load_result(p)
    assert "\n" not in str(exc.value) and str(p) in str(exc.value)


def test_current_version_loads(tmp_path):
    p = write(tmp_path / "r.json", result_set([]))
    assert load_result(p)["schema_version"] == SCHEMA_VERSION
    assert json.loads(p.read_text())["schema"] == "ipcbench-result"
