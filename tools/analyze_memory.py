#!/usr/bin/env python3
"""Tables and fits from the data.jsonl that tools/measure_memory.py writes (the file given, else
/tmp/ipcbench-memory/data.jsonl). Prints markdown (docs/memory.md came from it)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict

MiB = 1024**2
rows = [json.loads(line) for line in open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ipcbench-memory/data.jsonl")]


def key(r, size=None):
    return (r["mech"], r["pattern"], r["workers"], r["method"], r.get("preset"), r.get("mode"),
            r["size"] if size is None else size)


by = {key(r): r for r in rows}          # last record of a case wins


def base_of(r):
    """The same case with an 8 B payload (the baseline), or None."""
    return by.get(key(r, 8))


def fmt_size(n):
    if n >= MiB:
        return f"{n // MiB} MiB"
    if n >= 1024:
        return f"{n // 1024} KiB"
    return f"{n} B"


out = []
p = out.append
# ---------------------------------------------------------------------------------------------- table
for label, sel in (("fork, quick preset, one round", lambda r: r["method"] == "fork" and not r.get("preset")
                    and r.get("mode") != "orch"),
                   ("spawn / forkserver, quick preset", lambda r: r["method"] != "fork"),
                   ("fork, full preset (longer rounds)", lambda r: r.get("preset") == "full"),
                   ("fork, long rounds (orchestrator, budget_s=4)", lambda r: r.get("mode") == "orch")):
    sub = sorted((r for r in by.values() if sel(r)),
                 key=lambda r: (r["mech"], r["pattern"], r["method"], r["size"], r["workers"]))
    if not sub:
        continue
    p(f"\n### {label}\n")
    p("| mechanism | pattern | start | payload | workers | procs | ok | peak round USS MiB | round USS / payload "
      "| peak tree USS MiB | peak tree PSS MiB | cgroup peak MiB | (cgroup - 8 B case) / payload | ops | wall s |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sub:
        b = base_of(r)
        P = r["size"]
        ratio_uss = f"{r['peak_round_uss_mib'] * MiB / P:.2f}" if P >= MiB else ""
        ratio_cg = (f"{(r['cgroup_peak_mib'] - b['cgroup_peak_mib']) * MiB / P:.2f}"
                    if b and P >= MiB and r["cgroup_peak_mib"] is not None else "")
        p(f"| {r['mech']} | {r['pattern']} | {r['method']} | {fmt_size(P)} | {r['workers']} | {r['max_round_procs']} "
          f"| {'yes' if r['ok'] else 'NO'} | {r['peak_round_uss_mib']:.1f} | {ratio_uss} | {r['peak_total_uss_mib']:.1f} "
          f"| {r['peak_total_pss_mib']:.1f} | {r['cgroup_peak_mib']} | {ratio_cg} | {r.get('ops')} | {r['wall_s']} |")

# ---------------------------------------------------------------------------------------------- fits
def ratios(sel, min_size):
    """{(mech, pattern): [(w, P, ratio_cg, ratio_uss)]} over cases with a baseline."""
    d = defaultdict(list)
    for r in by.values():
        if not sel(r) or r["size"] < min_size or not r["ok"]:
            continue
        b = base_of(r)
        if not b:
            continue
        rc = (r["cgroup_peak_mib"] - b["cgroup_peak_mib"]) * MiB / r["size"]
        ru = (r["peak_total_uss_mib"] - b["peak_total_uss_mib"]) * MiB / r["size"]
        d[(r["mech"], r["pattern"])].append((r["workers"], r["size"], rc, ru))
    return d


def lsq(pts):
    n = len(pts)
    xs = [x for x, _ in pts]
    ys = [y for _, y in pts]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else 0.0
    return my - b * mx, b


def envelope(pts, b=None):
    """(a, b): least-squares slope (or the given one), then a raised so that no point lies above a + b w."""
    if b is None:
        _, b = lsq(pts)
        b = max(b, 0.0)
    a = max(y - b * x for x, y in pts)
    return a, b


fork_quick = lambda r: r["method"] == "fork" and r.get("mode") != "orch"   # noqa: E731
for title, min_size in (("all payloads >= 16 MiB", 16 * MiB), ("payloads >= 64 MiB", 64 * MiB)):
    d = ratios(fork_quick, min_size)
    p(f"\n### Fit per mechanism/pattern, fork, {title}: (peak - 8 B peak) / payload <= a + b x workers\n")
    p("Cgroup peak (exact); in brackets the same fit on the sampled sum of USS.\n")
    p("| mechanism | pattern | points (w, MiB, ratio) | a | b | [USS a | USS b] |")
    p("|---|---|---|---|---|---|")
    all_c, all_u, slopes_c, slopes_u = [], [], [], []
    for (m, pat), pts in sorted(d.items()):
        pc = [(w, rc) for w, _, rc, _ in pts]
        pu = [(w, ru) for w, _, _, ru in pts]
        multi = len({w for w, _ in pc}) > 1
        a, b = envelope(pc) if multi else envelope(pc, 0.0)
        au, bu = envelope(pu) if multi else envelope(pu, 0.0)
        if multi:
            slopes_c.append(b)
            slopes_u.append(bu)
        all_c += pc
        all_u += pu
        pts_s = ", ".join(f"({w}, {P // MiB}, {rc:.1f})" for w, P, rc, _ in sorted(pts))
        p(f"| {m} | {pat} | {pts_s} | {a:.2f} | {b:.2f} | [{au:.2f} | {bu:.2f}] |")
    for name, pts, slopes in (("cgroup", all_c, slopes_c), ("USS", all_u, slopes_u)):
        b = max(slopes)
        a = max(y - b * x for x, y in pts)
        worst = max(pts, key=lambda t: t[1] - b * t[0])
        p(f"\n**Worst case ({name}, {title})**: a = {a:.2f}, b = {b:.2f} (b = the largest per-pattern slope; a = "
          f"the smallest intercept that then covers every point; the point that sets a: workers {worst[0]}, "
          f"ratio {worst[1]:.2f})")

# ---------------------------------------------------------------------------------------------- baselines
p("\n### Baselines (8 B payload, or 0 B for contention): whole tree (runner + launcher + round)\n")
p("| start | mechanism | pattern | workers | procs | cgroup peak MiB | tree USS MiB | tree PSS MiB | round USS MiB |")
p("|---|---|---|---|---|---|---|---|---|")
for r in sorted((r for r in by.values() if r["size"] <= 8 and r.get("mode") != "orch" and not r.get("preset")),
                key=lambda r: (r["method"], r["mech"], r["pattern"], r["workers"])):
    p(f"| {r['method']} | {r['mech']} | {r['pattern']} | {r['workers']} | {r['max_round_procs']} | {r['cgroup_peak_mib']} "
      f"| {r['peak_total_uss_mib']} | {r['peak_total_pss_mib']} | {r['peak_round_uss_mib']} |")

print("\n".join(out))


# ---------------------------------------------------------------------------------------------- proposed bound check
def bounded_queue_mib(P):
    """What a bounded stream/fanin queue (channels.bounded_size) can hold: <= 64 MiB, or 2 payloads."""
    return max(2, min(1000, (64 * MiB) // max(1, P))) * P / MiB


def proposed(r, a, b, q=True):
    """Proposed bound (MiB) for the whole tree of a run: frame + per-process baseline + payload term."""
    P, w = r["size"], r["workers"]
    procs = w + 2            # round process + peers/server (upper count; startup/roundtrip: 1 peer)
    base = 80 + (12 * procs if r["method"] != "fork" else 2 * procs)
    return base + (64 if q else 0) + P / MiB * (a + b * w)


def coverage(a, b, label):
    worst = []
    for r in rows:
        if not r["ok"] or r["cgroup_peak_mib"] is None or r.get("mode") == "orch":
            continue
        bound = proposed(r, a, b)
        worst.append((r["cgroup_peak_mib"] / bound, r["tag"] + (" [MALLOC_MMAP_THRESHOLD_]" if r.get("set") == "malloc" else ""),
                      r["cgroup_peak_mib"], round(bound, 1)))
    worst.sort(reverse=True)
    p(f"\n### Proposed bound {label}: measured cgroup peak / bound, the 8 closest cases (all {len(worst)} runs)\n")
    p("| measured / bound | case | cgroup peak MiB | bound MiB |")
    p("|---|---|---|---|")
    for x in worst[:8]:
        p(f"| {x[0]:.2f} | {x[1]} | {x[2]} | {x[3]} |")


out.clear()
coverage(8, 6.5, "a = 8, b = 6.5 (every payload size)")
coverage(5, 4, "a = 5, b = 4 (fits payloads >= 32 MiB only)")
print("\n".join(out))
