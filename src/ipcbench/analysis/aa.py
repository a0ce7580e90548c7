"""The A/A check: two runs of the same cases on one machine should agree (DESIGN.md rule 9).

Run the same selection twice, back to back, on an idle machine, then hold the runs against each other:

* ``significant``: the share of compared rows (per metric) that ``compare`` calls significantly
  different. Nothing changed, so this should be about the false-discovery rate: at most ``MAX_SIGNIFICANT``.
* ``coverage``: the share of cases where run A's round-level 95 % CI of a metric holds run B's estimate.
  Even perfect CIs hold another run's *estimate* less often than 95 % (both runs are noisy: about 83 % for
  equal spreads and many rounds, more with few rounds), so the bar is ``MIN_COVERAGE``. Much lower means
  the CIs claim a certainty the machine does not give, e.g. because between-run drift exceeds what the
  rounds of one run show.

Pure: result sets in, an ``AAResult`` out. ``ipcbench aa A.json B.json`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..results.frame import tidy_frame
from .compare import Side, compare

MAX_SIGNIFICANT = 0.05
MIN_COVERAGE = 0.80
METRICS = ("latency_p50", "throughput_msgs")
_KEY = ["mechanism", "pattern", "payload_kind", "payload_bytes", "workers", "start_method", "placement", "metric"]


@dataclass
class AAResult:
    per_metric: pd.DataFrame       # metric, rows, significant, sig_fraction, coverable, covered, coverage
    significant_rows: pd.DataFrame  # the comparison rows called significant (what an A/A should not have)
    uncovered: pd.DataFrame        # cases where A's CI misses B's estimate
    max_significant: float = MAX_SIGNIFICANT
    min_coverage: float = MIN_COVERAGE
    notes: list[str] = field(default_factory=list)

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
    notes = []
    without_ci = int((~has_ci).sum())
    if without_ci:
        notes.append(f"{without_ci} case x metric(s) of A have no CI (one round, or a version-1 file's missing "
                     f"values) and are left out of the coverage")
    return AAResult(pd.DataFrame(rows), frame[frame.significant], both[~both.covered].drop(columns="covered"),
                    max_significant, min_coverage, notes)
