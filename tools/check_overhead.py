"""Does the harness inflate what it measures? Compare ipcbench with minimal hand-written loops.

For each mechanism, alternately run (a) a minimal loop written the way a user would write it, in a
fresh process, timing N round trips with one clock read before and after the whole loop, and (b) the
same case through ipcbench (fresh orchestrator, warm-up, per-message clock reads). Compared: mean time
per operation (hand: total / N; ipcbench: 1 / throughput_msgs, i.e. window / ops). Also prints the cost
of the per-message clock reads and of a Connection.poll() per receive (why the timed loops block).

    PYTHONPATH=src python tools/check_overhead.py [--reps 5] [--size 8] [--placement os] [-m queue,os_pipe]

The hand loops run unpinned, like a user's program, so ipcbench runs with ``--placement os`` by default
here: like for like. ``--placement spread`` (ipcbench's own default) shows what pinning changes.

Run it on an otherwise idle machine: it is a benchmark.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
N_OPS = {"pipe_duplex": 4000, "queue": 3000, "simple_queue": 3000, "joinable_queue": 3000, "os_pipe": 4000,
         "socketpair": 4000, "manager_dict": 2000, "pool_apply": 1500}


def _echo(conn):
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(msg)


def _queue_echo(inq, outq):
    while True:
        msg = inq.get()
        if msg is None:
            return
        outq.put(msg)


def _joinable_echo(inq, outq):
    while True:
        msg = inq.get()
        inq.task_done()
        if msg is None:
            return
        outq.put(msg)


def _read_exactly(read, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = read(n - got)
        if not chunk:
            raise EOFError
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _raw_echo(read, write, size: int):
    # the user's obvious raw protocol: fixed-size messages, a 1-byte b"x" ahead of each, b"q" to stop
    while _read_exactly(read, 1) == b"x":
        write(b"x" + _read_exactly(read, size))


def _fd_echo(rfd, wfd, size):
    import os

    def write(b):
        view = memoryview(b)
        while view:
            view = view[os.write(wfd, view):]

    _raw_echo(lambda n: os.read(rfd, n), write, size)


def _sock_echo(sock, size):
    _raw_echo(sock.recv, sock.sendall, size)


def _task(x):
    return x


def hand_loop(mechanism: str, size: int, n: int) -> float:
    """Seconds per operation of a minimal user-style loop (after a 100-op warm-up)."""
    payload = bytes(size)
    clock = time.perf_counter
    if mechanism == "pipe_duplex":
        a, b = mp.Pipe()
        p = mp.Process(target=_echo, args=(b,), daemon=True)
        p.start()
        for _ in range(100):
            a.send(payload)
            a.recv()
        t0 = clock()
        for _ in range(n):
            a.send(payload)
            a.recv()
        dt = clock() - t0
        a.send(None)
        p.join()
    elif mechanism == "queue":
        q1, q2 = mp.Queue(), mp.Queue()
        p = mp.Process(target=_queue_echo, args=(q1, q2), daemon=True)
        p.start()
        for _ in range(100):
            q1.put(payload)
            q2.get()
        t0 = clock()
        for _ in range(n):
            q1.put(payload)
            q2.get()
        dt = clock() - t0
        q1.put(None)
        p.join()
    elif mechanism in ("simple_queue", "joinable_queue"):
        joinable = mechanism == "joinable_queue"
        q1, q2 = (mp.JoinableQueue(), mp.JoinableQueue()) if joinable else (mp.SimpleQueue(), mp.SimpleQueue())
        p = mp.Process(target=_joinable_echo if joinable else _queue_echo, args=(q1, q2), daemon=True)
        p.start()

        def one():
            q1.put(payload)
            q2.get()
            if joinable:
                q2.task_done()

        for _ in range(100):
            one()
        t0 = clock()
        for _ in range(n):
            one()
        dt = clock() - t0
        q1.put(None)
        p.join()
    elif mechanism in ("os_pipe", "socketpair"):
        import os
        import socket

        msg = b"x" + payload
        if mechanism == "os_pipe":
            r1, w1 = os.pipe()
            r2, w2 = os.pipe()
            p = mp.Process(target=_fd_echo, args=(r1, w2, size), daemon=True)

            def write(b):
                view = memoryview(b)
                while view:
                    view = view[os.write(w1, view):]
            read = lambda k: os.read(r2, k)      # noqa: E731
        else:
            a, b = socket.socketpair()
            p = mp.Process(target=_sock_echo, args=(b, size), daemon=True)
            write, read = a.sendall, a.recv
        p.start()
        for _ in range(100):
            write(msg)
            _read_exactly(read, size + 1)
        t0 = clock()
        for _ in range(n):
            write(msg)
            _read_exactly(read, size + 1)
        dt = clock() - t0
        write(b"q")
        p.join()
    elif mechanism == "manager_dict":
        with mp.Manager() as m:
            d = m.dict({0: payload})
            for _ in range(100):
                d[0]
            t0 = clock()
            for _ in range(n):
                d[0]
            dt = clock() - t0
    elif mechanism == "pool_apply":
        with mp.Pool(1) as pool:
            for _ in range(100):
                pool.apply(_task, (payload,))
            t0 = clock()
            for _ in range(n):
                pool.apply(_task, (payload,))
            dt = clock() - t0
    else:
        raise SystemExit(f"no hand loop for {mechanism}")
    return dt / n


def clock_overhead_ns(n: int = 200_000) -> float:
    from time import perf_counter_ns

    s = []
    append = s.append
    for _ in range(n):
        t0 = perf_counter_ns()
        t1 = perf_counter_ns()
        append(t1 - t0)
    return statistics.median(s)


def poll_cost_ns(n: int = 20_000) -> float:
    a, b = mp.Pipe()
    b.send(b"x")
    t0 = time.perf_counter_ns()
    for _ in range(n):
        a.poll(1.0)
    return (time.perf_counter_ns() - t0) / n


def _range(values) -> str:
    return f"{min(values) * 1e6:.0f}-{max(values) * 1e6:.0f}µs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--placement", default="os", choices=["os", "spread", "shared"],
                    help="ipcbench's placement (default os: unpinned, as the hand loops are)")
    ap.add_argument("-m", "--mechanisms", help="comma list (default: every one with a hand loop)")
    ap.add_argument("--hand", nargs=3, metavar=("MECH", "SIZE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hand:
        mech, size, n = args.hand
        print(json.dumps(hand_loop(mech, int(size), int(n))))
        return

    from ipcbench.measure.runner import RunOptions, run_case
    from ipcbench.plan.cases import Case, RoundSpec

    print(f"perf_counter_ns pair, median: {clock_overhead_ns():.0f} ns per timed message")
    print(f"Connection.poll(timeout) with data ready: {poll_cost_ns():.0f} ns per call")
    spec = RoundSpec(budget_s=0.3, min_messages=50, max_window_s=5, max_messages=100_000, warmup=100, warmup_s=0.5)
    opts = RunOptions(spec=spec, rounds=1)
    patterns = {"pipe_duplex": "roundtrip", "queue": "roundtrip", "simple_queue": "roundtrip",
                "joinable_queue": "roundtrip", "os_pipe": "roundtrip", "socketpair": "roundtrip",
                "manager_dict": "rpc", "pool_apply": "dispatch"}
    if args.mechanisms:
        patterns = {m: patterns[m] for m in args.mechanisms.split(",")}
    print(f"\n{'mechanism':<14}{'hand mean':>12}{'ipcbench mean':>15}{'ratio':>8}{'ipcbench p50':>14}"
          f"   {'hand range':>18} {'ipcbench range':>18}   (size {args.size} B, {args.reps} alternating reps, medians, "
          f"ipcbench placement {args.placement})")
    for mech, pattern in patterns.items():
        hand, ours, p50 = [], [], []
        for _ in range(args.reps):
            out = subprocess.run([sys.executable, str(HERE), "--hand", mech, str(args.size), str(N_OPS[mech])],
                                 capture_output=True, text=True, check=True)
            hand.append(json.loads(out.stdout))
            rec = run_case(Case(mech, pattern, "bytes", args.size, 1, mp.get_start_method(), args.placement), opts)
            if rec["status"] != "ok":
                raise SystemExit(f"{mech}: {rec['error']}")
            ours.append(1 / rec["metrics"]["throughput_msgs"]["value"])
            p50.append(rec["metrics"]["latency_p50"]["value"])
        h, o = statistics.median(hand), statistics.median(ours)
        print(f"{mech:<14}{h * 1e6:>10.1f}µs{o * 1e6:>13.1f}µs{o / h:>8.2f}{statistics.median(p50) * 1e6:>12.1f}µs"
              f"   {_range(hand):>18} {_range(ours):>18}")


if __name__ == "__main__":
    main()
