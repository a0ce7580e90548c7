"""ipcbench: honest benchmarks for Python multiprocessing IPC.

Data flows one way: cases -> runner -> result files -> pandas -> stats -> figures -> report.
Importing the package stays cheap (no numpy/pandas) because every benchmark round starts a fresh
interpreter that imports it: the functions below import what they need when called.

Python API (result files and folders in, pandas frames or files out)::

    import ipcbench
    tidy = ipcbench.load("results/")               # one row per case x metric (the tidy CSV's columns)
    samples = ipcbench.load_samples("r.json")      # one row per stored raw sample (seconds)
    comp = ipcbench.compare("fork.json", "spawn.json")   # comp.frame: ratios, CIs, significance
    ipcbench.report(["results/"], "reports/")      # -> reports/index.html
"""

from ._version import __version__

__all__ = ["__version__", "compare", "load", "load_samples", "report"]


def _path_list(paths) -> list:
    import os

    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


def load(paths):
    """Result files and folders (ipcbench JSON, or pytest-benchmark JSON from ``pytest bench/``) -> the
    tidy pandas frame: one row per case x metric, columns ``machine_id, python_version, start_method,
    mechanism, pattern, payload_kind, payload_bytes, workers, metric, value, unit, flags, result_set``.
    Failed cases have no rows: ``ipcbench.results.frame.load_sets(paths).failures`` lists them."""
    from .results.frame import load as _load

    return _load(_path_list(paths))


def load_samples(paths):
    """Result files and folders -> the raw samples frame: one row per stored per-operation sample, columns
    ``machine_id, python_version, start_method, mechanism, pattern, payload_kind, payload_bytes, workers,
    round, value, result_set``; ``value`` in seconds, ``round`` the round (fresh processes) it came from."""
    from .results.frame import load_sets

    return load_sets(_path_list(paths)).samples


def _side(data, label=None):
    """One side of a comparison from a path, a list of paths (one machine), a result-set dict, or what
    ``ipcbench.results.frame.load_sets`` returns."""
    import os

    from .analysis.compare import Side
    from .errors import UserError
    from .results.frame import read_set, result_files
    from .results.schema import check

    if isinstance(data, dict):
        source = data.get("_source") or label or "result set"
        return Side(label or source, [dict(check(data, source), _source=source)])
    if hasattr(data, "sets") and hasattr(data, "tidy"):            # results.frame.Loaded
        sets = list(data.sets)
        return Side(label or ", ".join(s["_source"] for s in sets), sets)
    if hasattr(data, "columns"):
        raise TypeError("compare() needs the raw samples that a tidy frame does not hold: pass result files "
                        "or folders (or ipcbench.results.frame.load_sets(paths))")
    paths = _path_list(data)
    files = result_files(paths)
    if not files:
        raise UserError(f"{', '.join(map(str, paths))}: no result files found (looked for *.json)")
    return Side(label or ", ".join(os.fspath(p) for p in paths), [read_set(f) for f in files])


def compare(base, *others, metrics="all"):
    """Compare result sets against ``base``: ratios, confidence intervals and significance, as
    ``ipcbench compare`` computes them. Each side is a result file or folder (one machine), a list of them,
    a result-set dict, or ``ipcbench.results.frame.load_sets(paths)``. ``metrics``: "all" or a list of
    metric names (fewer is faster).

    Returns an ``ipcbench.analysis.compare.Comparison``: ``.frame`` (pandas, one row per matched case x
    metric: ``ratio`` = other / base, ``ratio_ci_low``/``ratio_ci_high``, ``p_value``, ``q_value``,
    ``significant``, ``better``, ...), ``.summary()`` (what was matched, missing or failed, in words),
    ``.only_base``, ``.only_other`` and ``.failed`` frames."""
    from .analysis.compare import METRICS, check_metrics
    from .analysis.compare import compare as _compare

    if not others:
        raise TypeError("compare() needs a base and at least one other result set")
    chosen = METRICS if metrics in (None, "all") else check_metrics(_path_list(metrics))
    return _compare(_side(base), [_side(o) for o in others], chosen)


def report(paths, out_dir="reports"):
    """Result files and folders -> one static HTML report, ``out_dir/index.html`` (as ``ipcbench
    report``); returns that path."""
    from .reporting.page import report as _page_report

    return _page_report(_path_list(paths), out_dir)
