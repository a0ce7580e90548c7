#!/usr/bin/env python3
"""Peak memory of single ipcbench rounds, one case per invocation.

Each case is one ``ipcbench run ... --rounds 1 --placement os -q`` (mode "cli"), or one round run straight
through the orchestrator with a custom RoundSpec (mode "orch", for long rounds), started from the
package in IPCBENCH_SRC (default: this checkout's src/; docs/memory.md's figures came from a frozen copy of it).

While it runs, a sampler (every SAMPLE_S) sums over the ipcbench process and all its descendants:
  * USS (psutil memory_full_info().uss: private pages, no double counting of fork-shared pages)
  * PSS (shared pages divided among their sharers)
and keeps the peak of the sum, split into "round" processes (the orchestrator = the round's process and
everything below it: peers, Manager server, Pool workers) and "frame" (the ipcbench runner and its warm
launcher). The case also runs in a memory cgroup (v1) of its own, nested in this session's cgroup, whose
memory.max_usage_in_bytes is an exact (not sampled) peak of everything (frame + round + kernel memory).

Usage:
  measure.py [--filter SUBSTR] [--set NAME] [--out data.jsonl]
Sets: see SETS below. Results are appended as JSON lines to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import psutil

SNAP = os.environ.get("IPCBENCH_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
PY = sys.executable
OUTDIR = os.environ.get("IPCBENCH_MEM_OUT", "/tmp/ipcbench-memory")
SAMPLE_S = 0.010
MiB = 1024**2
CLI = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from ipcbench.cli import main; "
       "sys.argv[0] = 'ipcbench'; raise SystemExit(main())")
ORCH = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
        "runpy.run_module('ipcbench.measure.orchestrator', run_name='__main__', alter_sys=True)")

# --- cgroup v1 memory controller: a child of this process's own cgroup ------------------------------
def _my_memcg() -> str | None:
    try:
        for line in open("/proc/self/cgroup"):
            _, ctrl, path = line.strip().split(":", 2)
            if "memory" in ctrl.split(","):
                base = "/sys/fs/cgroup/memory" + path
                return base if os.access(base, os.W_OK) else None
    except OSError:
        pass
    return None


MEMCG = _my_memcg()


def cg_create(tag: str) -> str | None:
    if MEMCG is None:
        return None
    path = os.path.join(MEMCG, f"ipcmem-{os.getpid()}-{tag}")
    try:
        os.mkdir(path)
        return path
    except OSError:
        return None


def cg_read(cg: str | None, name: str) -> int | None:
    if cg is None:
        return None
    try:
        return int(open(os.path.join(cg, name)).read())
    except (OSError, ValueError):
        return None


def cg_remove(cg: str | None) -> None:
    if cg is None:
        return
    for _ in range(50):
        try:
            os.rmdir(cg)       # page cache charged here moves to the parent
            return
        except OSError:
            time.sleep(0.1)


# --- cases ---------------------------------------------------------------------------------------------
ONE = [("pipe_duplex", "roundtrip"), ("pipe_duplex", "stream"), ("pipe_simplex", "roundtrip"),
       ("pipe_simplex", "stream"), ("queue", "roundtrip"), ("queue", "stream"), ("manager_queue", "roundtrip"),
       ("process_start", "startup")]
MULTI = [("queue", "fanin"), ("manager_queue", "fanin"), ("manager_dict", "rpc"), ("manager_list", "rpc"),
         ("pool_apply", "dispatch"), ("pool_apply_async", "dispatch")]
KiB = 1024


def _grid(sizes, workers, method="fork"):
    out = []
    for size in sizes:
        for m, p in ONE:
            out.append(dict(mech=m, pattern=p, size=size, workers=1, method=method))
        for m, p in MULTI:
            for w in workers:
                out.append(dict(mech=m, pattern=p, size=size, workers=w, method=method))
    return out


SETS = {
    # the main grid: baseline (8 B), the bounded-queue regime (1 MiB), and two large sizes
    "main": lambda: _grid([8, 1 * MiB, 16 * MiB, 64 * MiB], [1, 2, 4])
    + [dict(mech="lock", pattern="contention", size=0, workers=w, method="fork") for w in (1, 2, 4)],
    # more workers than CPUs, for the slope of the multi-worker patterns
    "w8": lambda: [dict(mech=m, pattern=p, size=s, workers=8, method="fork")
                   for s in (8, 16 * MiB, 64 * MiB) for m, p in MULTI],
    # other start methods: the per-process baseline of spawned interpreters, and the startup payload
    "spawn": lambda: _grid([8, 16 * MiB], [1, 4], "spawn")
    + [dict(mech="lock", pattern="contention", size=0, workers=4, method="spawn")],
    "forkserver": lambda: _grid([16 * MiB], [4], "forkserver"),
    # the payload sizes between, where the bounded queues hold up to 64 MiB of small messages
    "mid": lambda: [dict(mech=m, pattern=p, size=s, workers=w, method="fork")
                    for s in (64 * KiB, 256 * KiB, 4 * MiB)
                    for m, p, w in (("queue", "fanin", 4), ("manager_queue", "fanin", 4), ("queue", "stream", 1),
                                    ("manager_queue", "roundtrip", 1), ("pool_apply_async", "dispatch", 4))],
    # the full preset's longer rounds
    "full": lambda: [dict(mech=m, pattern=p, size=s, workers=w, method="fork", preset="full")
                     for s in (1 * MiB, 64 * MiB)
                     for m, p, w in (ONE_W + MULTI_W)],
    # long rounds (orchestrator with a custom spec): does memory grow with round length?
    "long": lambda: [dict(mech=m, pattern=p, size=s, workers=w, method="fork", mode="orch",
                          spec=dict(budget_s=4.0, min_messages=5, max_window_s=8.0, max_messages=10_000_000,
                                    warmup=10, warmup_s=0.05, timeout_s=30.0))
                     for s in (8, 64 * KiB)
                     for m, p, w in (ONE_W + MULTI_W) if m != "process_start"],
    # big payloads, to check the linearity at the top
    "big": lambda: [dict(mech=m, pattern=p, size=128 * MiB, workers=w, method="fork")
                    for m, p, w in (("queue", "roundtrip", 1), ("pipe_duplex", "roundtrip", 1),
                                    ("queue", "fanin", 4), ("manager_queue", "fanin", 4), ("manager_dict", "rpc", 4),
                                    ("pool_apply", "dispatch", 4), ("pool_apply_async", "dispatch", 4))],
}
ONE_W = [(m, p, 1) for m, p in ONE]
MULTI_W = [(m, p, 4) for m, p in MULTI]


def tag_of(c: dict) -> str:
    t = f"{c['mech']}-{c['pattern']}-{c['size']}-w{c['workers']}-{c['method']}"
    if c.get("preset"):
        t += f"-{c['preset']}"
    if c.get("mode") == "orch":
        t += "-long"
    return t


# --- one case ------------------------------------------------------------------------------------------
def _command(c: dict, out: str, job: str) -> list[str]:
    if c.get("mode") == "orch":
        sys.path.insert(0, SNAP)
        from ipcbench.plan.cases import Case, RoundSpec
        case = Case(c["mech"], c["pattern"], "bytes", c["size"], c["workers"], c["method"], "os")
        with open(job, "w") as f:
            json.dump({"case": case.to_dict(), "spec": RoundSpec(**c["spec"]).to_dict()}, f)
        return [PY, "-c", ORCH, SNAP, job, out]
    argv = [PY, "-c", CLI, SNAP, "run", "-m", c["mech"], "-p", c["pattern"], "--payload-sizes", str(c["size"]),
            "--workers", str(c["workers"]), "--start-method", c["method"], "--rounds", "1",
            "--placement", "os", "-q", "-o", out, "--timeout", "120"]
    if c.get("preset"):
        argv += ["--preset", c["preset"]]
    return argv


def _result(c: dict, out: str) -> dict:
    try:
        d = json.load(open(out))
    except (OSError, ValueError) as exc:
        return {"ok": False, "error": f"no result: {exc}"}
    if c.get("mode") == "orch":
        if not d.get("ok"):
            return {"ok": False, "error": d.get("error")}
        r = d["result"]
        return {"ok": True, "ops": r.get("ops"), "window_s": (r.get("window_ns") or 0) / 1e9}
    case = d["cases"][0]
    rnd = (case.get("rounds") or [{}])[0]
    res = rnd.get("result", rnd) if isinstance(rnd, dict) else {}
    return {"ok": case["status"] == "ok", "error": case.get("error"), "ops": res.get("ops"),
            "window_s": (res.get("window_ns") or 0) / 1e9 if res.get("window_ns") else None}


def run_case(c: dict) -> dict:
    os.makedirs(OUTDIR, exist_ok=True)
    tag = tag_of(c)
    out, job, log = (os.path.join(OUTDIR, f"{tag}.{x}") for x in ("json", "job.json", "log"))
    for p in (out, job):
        if os.path.exists(p):
            os.unlink(p)
    cg = cg_create(tag)
    procs_file = os.path.join(cg, "cgroup.procs") if cg else None

    def join_cg():
        if procs_file:
            with open(procs_file, "w") as f:
                f.write(str(os.getpid()))

    argv = _command(c, out, job)
    t0 = time.monotonic()
    with open(log, "w") as logf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, preexec_fn=join_cg,
                                cwd=OUTDIR)
    root = psutil.Process(proc.pid)
    cache: dict[int, psutil.Process] = {proc.pid: root}
    roles: dict[int, str] = {proc.pid: "runner" if c.get("mode") != "orch" else "orchestrator"}
    ppids: dict[int, int] = {}
    peak = {"round_uss": 0, "round_pss": 0, "total_uss": 0, "total_pss": 0, "frame_uss": 0}
    at_peak: list = []
    per_pid_peak: dict[int, int] = {}
    series = []          # (t, round_uss, n_round_procs)
    max_procs = 0
    while proc.poll() is None:
        ts = time.monotonic()
        try:
            kids = root.children(recursive=True)
        except psutil.Error:
            kids = []
        procs = [root]
        for k in kids:
            p = cache.setdefault(k.pid, k)
            procs.append(p)
            if k.pid in roles and roles[k.pid] != "?":
                continue
            # decided again on every sample until it is certain: a child read just after fork (before
            # exec) still shows its parent's command line
            try:
                cmd = " ".join(p.cmdline())
                ppid = p.ppid()
            except psutil.Error:
                continue
            if ppid == proc.pid:
                roles[k.pid] = "launcher" if "launcher import serve" in cmd else "?"
            else:
                ppids[k.pid] = ppid
                roles[k.pid] = "child"
        for pid, ppid in ppids.items():
            if roles.get(pid) == "child" and roles.get(ppid) == "launcher":
                roles[pid] = "orchestrator"
        s = {"round_uss": 0, "round_pss": 0, "total_uss": 0, "total_pss": 0, "frame_uss": 0}
        snap = []
        for p in procs:
            try:
                mi = p.memory_full_info()
            except psutil.Error:
                continue
            role = roles.get(p.pid, "?")
            s["total_uss"] += mi.uss
            s["total_pss"] += mi.pss
            if role in ("runner", "launcher"):
                s["frame_uss"] += mi.uss
            else:
                s["round_uss"] += mi.uss
                s["round_pss"] += mi.pss
                per_pid_peak[p.pid] = max(per_pid_peak.get(p.pid, 0), mi.uss)
                try:
                    nthr = p.num_threads()
                except psutil.Error:
                    nthr = None
                snap.append((role, p.pid, round(mi.uss / MiB, 1), nthr))
        nround = len(snap)
        max_procs = max(max_procs, nround)
        if s["round_uss"] > peak["round_uss"]:
            at_peak = snap
        for k in peak:
            peak[k] = max(peak[k], s[k])
        series.append((round(ts - t0, 3), round(s["round_uss"] / MiB, 1), nround))
        dt = SAMPLE_S - (time.monotonic() - ts)
        if dt > 0:
            time.sleep(dt)
    wall = time.monotonic() - t0
    cg_peak = cg_read(cg, "memory.max_usage_in_bytes")
    cg_remove(cg)
    rec = {**{k: v for k, v in c.items()}, "tag": tag, "rc": proc.returncode, "wall_s": round(wall, 2),
           "samples": len(series), "max_round_procs": max_procs,
           **{f"peak_{k}_mib": round(v / MiB, 1) for k, v in peak.items()},
           "cgroup_peak_mib": None if cg_peak is None else round(cg_peak / MiB, 1),
           "at_peak": at_peak, "per_pid_peak_mib": sorted((round(v / MiB, 1) for v in per_pid_peak.values()),
                                                          reverse=True),
           **_result(c, out)}
    # keep a thinned series (every ~0.1 s) to see growth within a round
    step = max(1, len(series) // 100)
    rec["series"] = series[::step]
    return rec


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="main", choices=sorted(SETS))
    ap.add_argument("--filter", default="")
    ap.add_argument("--out", default=os.path.join(OUTDIR, "data.jsonl"))
    ap.add_argument("--dry", action="store_true")
    a = ap.parse_args()
    cases = [c for c in SETS[a.set]() if a.filter in tag_of(c)]
    print(f"{len(cases)} cases; cgroup: {MEMCG}", file=sys.stderr)
    for i, c in enumerate(cases):
        if a.dry:
            print(tag_of(c))
            continue
        rec = run_case(c)
        rec["set"] = a.set
        with open(a.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"[{i + 1}/{len(cases)}] {rec['tag']:<55} ok={rec['ok']} wall={rec['wall_s']:5.1f}s "
              f"round USS {rec['peak_round_uss_mib']:8.1f} PSS {rec['peak_round_pss_mib']:8.1f} "
              f"total USS {rec['peak_total_uss_mib']:8.1f} cg {rec['cgroup_peak_mib']} MiB "
              f"procs {rec['max_round_procs']} ops {rec.get('ops')}"
              + ("" if rec["ok"] else f"  ERROR {rec.get('error')}"), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
