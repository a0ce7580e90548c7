"""The public Python API (``ipcbench.load``, ``load_samples``, ``compare``, ``report``) on hand-built result sets."""

import inspect
import subprocess
import sys

import numpy as np
import pytest

import ipcbench
from ipcbench.analysis.compare import METRICS
from ipcbench.errors import UserError
from ipcbench.results.frame import TIDY_COLUMNS, load_sets
from tests import factories as f

BASE_NS = np.full(1200, 50_000, dtype=np.int64) + np.arange(1200) % 7    # ~50 us, 3 rounds of 400 (a p99)
SLOW_NS = 2 * BASE_NS


@pytest.fixture
def files(tmp_path):
    """Two machines, two cases each (8 B, 64 KiB); the other machine is twice as slow at 8 B."""
    base = f.result_set([f.case_record(samples_ns=BASE_NS), f.case_record(samples_ns=BASE_NS, payload_bytes=65536),
                         f.case_record(status="failed", error="peer died", mechanism="queue")],
                        machine_id="m-base")
    other = f.result_set([f.case_record(samples_ns=SLOW_NS), f.case_record(samples_ns=BASE_NS, payload_bytes=65536)],
                         machine_id="m-other")
    return f.write(tmp_path / "base" / "r.json", base), f.write(tmp_path / "other.json", other)


def test_all_names_the_api():
    assert set(ipcbench.__all__) == {"__version__", "load", "load_samples", "compare", "report"}
    assert all(callable(getattr(ipcbench, n)) for n in ipcbench.__all__ if n != "__version__")
    assert str(inspect.signature(ipcbench.report)) == "(paths, out_dir='reports')"


def test_import_is_cheap():
    code = "import sys, ipcbench; print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_load_gives_the_tidy_frame(files):
    base, other = files
    df = ipcbench.load(base)                                  # one path, not only a list
    assert list(df.columns[:len(TIDY_COLUMNS)]) == TIDY_COLUMNS
    assert set(df.machine_id) == {"m-base"} and sorted(df.payload_bytes.unique()) == [8, 65536]
    p50 = df[(df.metric == "latency_p50") & (df.payload_bytes == 8)].value.item()
    assert p50 == pytest.approx(np.percentile(BASE_NS, 50) / 1e9)
    assert "queue" not in set(df.mechanism)                  # the failed case has no metrics
    both = ipcbench.load([base.parent, other])              # folders and files
    assert set(both.machine_id) == {"m-base", "m-other"} and len(both) == 2 * len(df)


def test_load_samples_gives_every_stored_sample_in_seconds(files):
    base, _ = files
    s = ipcbench.load_samples(str(base))
    assert len(s) == 2 * len(BASE_NS) and sorted(s["round"].unique()) == [0, 1, 2]
    one = s[s.payload_bytes == 8].sort_values(["round"], kind="stable")
    assert one.value.to_numpy() == pytest.approx(BASE_NS / 1e9)
    assert {"machine_id", "mechanism", "pattern", "workers", "round", "value", "result_set"} <= set(s.columns)


def test_compare_paths(files):
    base, other = files
    comp = ipcbench.compare(base, other)
    assert comp.matched == {str(other): 2}
    p50 = comp.frame[comp.frame.metric == "latency_p50"].set_index("payload_bytes")
    assert p50.loc[8, "ratio"] == pytest.approx(2.0, rel=1e-3)
    assert bool(p50.loc[8, "significant"]) and p50.loc[8, "better"] == "base"
    assert p50.loc[65536, "ratio"] == pytest.approx(1.0) and not p50.loc[65536, "significant"]
    assert {"latency_p50", "latency_p99", "throughput_msgs", "throughput_bytes"} <= set(comp.frame.metric) <= set(METRICS)
    assert len(comp.failed) == 1 and comp.failed.error.item() == "peer died"


def test_compare_loaded_sets_dicts_and_chosen_metrics(files):
    base, other = files
    comp = ipcbench.compare(load_sets([base]), f.result_set([f.case_record(samples_ns=SLOW_NS)], machine_id="x"),
                            metrics=["latency_p50"])
    assert set(comp.frame.metric) == {"latency_p50"} and len(comp.frame) == 1
    assert comp.frame.ratio.item() == pytest.approx(2.0, rel=1e-3)
    assert any("1 case(s) compared" in line for line in comp.summary())


def test_compare_refuses_what_it_cannot_compare(files):
    base, other = files
    with pytest.raises(TypeError, match="raw samples"):
        ipcbench.compare(ipcbench.load(base), other)
    with pytest.raises(TypeError, match="at least one other"):
        ipcbench.compare(base)
    with pytest.raises(UserError, match="cannot compare metric"):
        ipcbench.compare(base, other, metrics=["nope"])
    with pytest.raises(UserError, match="no such file"):
        ipcbench.compare(base, base.parent / "missing.json")


def test_report_writes_one_page(files, tmp_path):
    base, other = files
    out = ipcbench.report([base, other], tmp_path / "site")
    assert out == tmp_path / "site" / "index.html"
    page = out.read_text()
    assert "m-base" in page and "m-other" in page and "<svg" in page
    # still callable once the report subpackage's modules are imported, and still that subpackage
    assert ipcbench.report(base, tmp_path / "one") == tmp_path / "one" / "index.html"
    import ipcbench.reporting.page as page_module
    from ipcbench import report

    assert report is ipcbench.report and ipcbench.reporting.page is page_module
