"""The A/A check: two runs of the same cases on one machine should agree (DESIGN.md rule 9).

Run the same selection twice, back to back, on an idle machine, then hold the runs against each other:

* ``significant``: the share of compared rows (per metric) that ``compare`` calls significantly
  different. Nothing changed, so this should be about the false-discovery rate: at most ``MAX_SIGNIFICANT``.
* ``coverage``: the share of cases where run A's round-level 95 % CI of a metric holds run B's estimate.
  Even perfect CIs hold another run's *estimate* less often than 95 % (both runs are noisy: about 83 % for
  equal spreads and many rounds, more with few rounds), so the bar is ``MIN_COVERAGE``. Much lower means
  the CIs claim a certainty the machine does not give, e.g. because between-run drift exceeds what the
  rounds of one run show.

* ``run_sd``: how much the runs differ beyond what their rounds show, per metric: the between-run
  variance component of a two-level design (Kalibera and Jones, "Rigorous Benchmarking in Reasonable
  Time", 2013), by the method of moments over the cases: for each case, d = log(B / A) of the estimates
  and se^2 = var(log round values) / rounds of each run; sigma_run^2 = max(0, (mean(d^2) - mean(se_a^2 +
  se_b^2)) / 2). ``shift`` is the median of d: a part common to every case (the whole machine faster or
  slower in one run). A ``run_sd`` near or above the CIs' half-widths / 2 is what makes coverage fail: then
  a run's CI describes that run, and only more runs (pooled: ``ipcbench report`` pools the runs of one
  setup) narrow the answer for the next.

Pure: result sets in, an ``AAResult`` out. ``ipcbench aa A.json B.json`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..results.frame import tidy_frame
from ..results.schema import CASE_COLUMNS
from .compare import Side, compare

MAX_SIGNIFICANT = 0.05
MIN_COVERAGE = 0.80
METRICS = ("latency_p50", "throughput_msgs")
_KEY = [*CASE_COLUMNS[2:], "metric"]      # a case of one machine, and a metric


@dataclass
class AAResult:
    per_metric: pd.DataFrame       # metric, rows, significant, sig_fraction, coverable, covered, coverage
    significant_rows: pd.DataFrame  # the comparison rows called significant (what an A/A should not have)
    uncovered: pd.DataFrame        # cases where A's CI misses B's estimate
    max_significant: float = MAX_SIGNIFICANT
    min_coverage: float = MIN_COVERAGE
    notes: list[str] = field(default_factory=list)
    run_sd: dict[str, float] = field(default_factory=dict)    # metric -> between-run sd (log scale, ~relative)
    shift: dict[str, float] = field(default_factory=dict)     # metric -> median log(B / A)

    @property
    def sig_fraction(self) -> float:
        rows = int(self.per_metric["rows"].sum())
        return float(self.per_metric["significant"].sum()) / rows if rows else float("nan")

    @property
    def coverage(self) -> float:
        n = int(self.per_metric["coverable"].sum())
        return float(self.per_metric["covered"].sum()) / n if n else float("nan")

    @property
    def passed(self) -> bool:
        return bool(self.sig_fraction <= self.max_significant and self.coverage >= self.min_coverage)

    def lines(self) -> list[str]:
        out = []
        for r in self.per_metric.itertuples(index=False):
            out.append(f"{r.metric}: {r.significant} of {r.rows} rows significant ({r.sig_fraction:.1%}); "
                       f"A's 95 % CI holds B's estimate in {r.covered} of {r.coverable} cases ({r.coverage:.1%})")
        out.append(f"overall: {self.sig_fraction:.1%} significant (at most {self.max_significant:.0%} expected), "
                   f"coverage {self.coverage:.1%} (at least {self.min_coverage:.0%} expected): "
                   + ("PASS" if self.passed else "FAIL"))
        for m, sd in self.run_sd.items():
            out.append(f"{m}: the runs differ beyond their rounds by a sd of {sd:.1%} per run "
                       f"(common shift B/A {np.exp(self.shift[m]) - 1:+.1%})")
        return out + self.notes


def aa_check(a: Side, b: Side, metrics=METRICS, max_significant: float = MAX_SIGNIFICANT,
             min_coverage: float = MIN_COVERAGE) -> AAResult:
    """Hold run B against run A (see the module doc)."""
    comp = compare(a, [b], metrics)
    frame = comp.frame
    ta, tb = tidy_frame(a.sets), tidy_frame(b.sets)
    ta, tb = ta[ta.metric.isin(metrics)], tb[tb.metric.isin(metrics)]
    both = ta[[*_KEY, "ci_low", "ci_high"]].merge(tb[[*_KEY, "value"]], on=_KEY, how="inner")
    has_ci = np.isfinite(both.ci_low) & np.isfinite(both.ci_high)
    both = both[has_ci].assign(covered=lambda d: (d.ci_low <= d.value) & (d.value <= d.ci_high))
    rows = []
    for m in metrics:
        fm, bm = frame[frame.metric == m], both[both.metric == m]
        n, s = len(fm), int(fm.significant.sum())
        c, k = len(bm), int(bm.covered.sum())
        rows.append({"metric": m, "rows": n, "significant": s, "sig_fraction": s / n if n else float("nan"),
                     "coverable": c, "covered": k, "coverage": k / c if c else float("nan")})
    run_sd, shift = between_runs(a.sets, b.sets, metrics)
    notes = []
    without_ci = int((~has_ci).sum())
    if without_ci:
        notes.append(f"{without_ci} case x metric(s) of A have no CI (one round, or a version-1 file's missing "
                     f"values) and are left out of the coverage")
    return AAResult(pd.DataFrame(rows), frame[frame.significant], both[~both.covered].drop(columns="covered"),
                    max_significant, min_coverage, notes, run_sd, shift)


ROUND_VALUES = {"latency_p50": "round_p50_s", "throughput_msgs": "round_throughput"}


def _by_case(sets: list[dict], metric: str) -> dict[tuple, np.ndarray]:
    out = {}
    for rs in sets:
        for rec in rs["cases"]:
            values = (rec.get("noise") or {}).get(ROUND_VALUES[metric]) or []
            v = np.log(np.asarray([x for x in values if x and x > 0], dtype=float))
            if rec.get("status") == "ok" and v.size >= 2:
                c = rec["case"]
                out[tuple(c.get(k) for k in _KEY[:-1])] = v
    return out


def between_runs(a_sets: list[dict], b_sets: list[dict], metrics=METRICS) -> tuple[dict, dict]:
    """``(run_sd, shift)`` per metric (module doc): the between-run variance component beyond the rounds,
    from the cases both runs measured with at least two rounds each; metrics without such cases are left
    out."""
    sd, shift = {}, {}
    for m in metrics:
        va, vb = _by_case(a_sets, m), _by_case(b_sets, m)
        keys = [k for k in va if k in vb]
        if not keys:
            continue
        d = np.array([vb[k].mean() - va[k].mean() for k in keys])
        se2 = np.array([va[k].var(ddof=1) / va[k].size + vb[k].var(ddof=1) / vb[k].size for k in keys])
        sd[m] = float(np.sqrt(max(0.0, (np.mean(d ** 2) - np.mean(se2)) / 2)))
        shift[m] = float(np.median(d))
    return sd, shift
