"""Celery beside ``multiprocessing.Pool``: the cost of a task through a broker against a task through a pool.

Drawn in the report's "Celery beside Pool" section (not in ``figures.FIGURES``: most runs have no celery
cases, and the section says why when celery was skipped). The numbers behind it are in
``analysis.references.celery_tables``.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ..analysis.references import CELERY, CELERY_PATTERN, POOL_LATENCY, POOL_THROUGHPUT
from ..analysis.setups import setups
from ..units import format_size
from .base import (
    LINESTYLES,
    NoData,
    ci_band,
    mechanism_color,
    mechanism_legend,
    mechanism_sort_key,
    new_figure,
    plural,
    rate_axis,
    seconds_axis,
    size_axis,
    suptitle,
)
from .scaling import representative_sizes, workers_axis

MECHANISMS = (POOL_LATENCY, POOL_THROUGHPUT, CELERY)


def celery_beside_pool(tidy: pd.DataFrame) -> Figure:
    """A row per setup with celery dispatch cases. Left: latency per task (p50, one task at a time)
    against payload size, ``celery`` and ``pool_apply`` at the setup's smallest worker count, 95 % CI
    shaded; lines labelled ``"<mechanism>"``. Right: tasks per second against worker count (Celery's
    concurrency, the pool's size), ``celery`` and ``pool_apply_async``, line style = payload size (up to
    three); lines labelled ``"<mechanism> <size>"``."""
    df = tidy[(tidy["pattern"] == CELERY_PATTERN) & tidy["mechanism"].isin(list(MECHANISMS))
              & tidy["metric"].isin(["latency_p50", "throughput_msgs"]) & (tidy["value"] > 0)]
    panels = [(label, part) for label, part in setups(df) if (part["mechanism"] == CELERY).any()]
    if not panels:
        raise NoData("no celery (dispatch) cases")
    fig, axes = new_figure(len(panels), 2)
    names: set[str] = set()
    size_styles: dict[int, object] = {}
    for row, (label, part) in zip(axes, panels, strict=True):
        lat = part[(part["metric"] == "latency_p50") & part["mechanism"].isin([POOL_LATENCY, CELERY])]
        workers = int(lat.loc[lat["mechanism"] == CELERY, "workers"].min()) if (lat["mechanism"] == CELERY).any() \
            else int(part["workers"].min())
        lat = lat[lat["workers"] == workers]
        for mech in sorted({str(m) for m in lat["mechanism"]}, key=mechanism_sort_key):
            m = lat[lat["mechanism"] == mech].sort_values("payload_bytes")
            color = mechanism_color(mech)
            row[0].plot(m["payload_bytes"], m["value"], color=color, marker="o", ms=3.5, label=mech)
            ci_band(row[0], m, "payload_bytes", color)
            names.add(mech)
        size_axis(row[0], lat["payload_bytes"] if len(lat) else [1])
        seconds_axis(row[0], "latency per task, p50")
        row[0].set_title(f"overhead per task, {plural(workers, 'worker')}\n{label}", fontsize="small")
        thr = part[(part["metric"] == "throughput_msgs") & part["mechanism"].isin([POOL_THROUGHPUT, CELERY])]
        sizes = representative_sizes(thr["payload_bytes"])
        for size in sizes:
            size_styles.setdefault(size, LINESTYLES[len(size_styles) % len(LINESTYLES)])
        for mech in sorted({str(m) for m in thr["mechanism"]}, key=mechanism_sort_key):
            for size in sizes:
                m = thr[(thr["mechanism"] == mech) & (thr["payload_bytes"] == size)].sort_values("workers")
                if m.empty:
                    continue
                color = mechanism_color(mech)
                row[1].plot(m["workers"], m["value"], color=color, ls=size_styles[size], marker="o", ms=3.5,
                            label=f"{mech} {format_size(size)}")
                ci_band(row[1], m, "workers", color)
                names.add(mech)
        workers_axis(row[1], thr["workers"] if len(thr) else [1])
        rate_axis(row[1], "tasks completed", "tasks/s")
        row[1].set_title(f"throughput per worker count\n{label}", fontsize="small")
        for ax in row:
            ax.grid(True, which="major", alpha=0.3)
            if not ax.get_lines():
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")
    suptitle(fig, "Celery beside Pool (shaded: 95 % CI)\nleft: latency per task, one at a time, against pool_apply; "
                  "right: tasks per second, many in flight, against pool_apply_async")
    mechanism_legend(fig, sorted(names, key=mechanism_sort_key),
                     [(format_size(s), {"ls": ls}) for s, ls in sorted(size_styles.items())])
    return fig
