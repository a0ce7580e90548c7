"""What the two sides of the ``socketpair`` selfcheck pair call per message, in one process: the hand
loop's ``sock.sendall`` + ``sock.recv`` against the floor's (``channels.RawFd``) ``os.write`` +
``os.read`` on the same socketpair, 9-byte messages (a mark and 8 B), alternated; printed, microseconds
per message for each.

    python tools/socket_calls.py [N] [REPS]      # default 200,000 messages, 3 alternations

On the 2-vCPU reference VM (2026-12-03 ~17:37 UTC): sendall + recv 2.00-2.12 us, os.write + os.read
2.01-2.03 us: the same (docs/measurement.md, "The fidelity check today").
"""

import argparse
import os
import socket
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=200_000, help="messages a loop (default 200,000)")
    parser.add_argument("reps", nargs="?", type=int, default=3, help="alternations (default 3)")
    args = parser.parse_args()
    if args.n < 1 or args.reps < 1:
        parser.error("n and reps: at least 1")
    a, b = socket.socketpair()
    try:
        msg = b"x" + b"y" * 8
        fa, fb = a.fileno(), b.fileno()
        sendall, recv, write, read = a.sendall, b.recv, os.write, os.read
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for _ in range(args.n):
                sendall(msg)
                recv(9)
            t1 = time.perf_counter()
            for _ in range(args.n):
                write(fa, msg)
                read(fb, 9)
            t2 = time.perf_counter()
            print(f"sendall + recv {(t1 - t0) / args.n * 1e6:.2f} us   "
                  f"os.write + os.read {(t2 - t1) / args.n * 1e6:.2f} us", flush=True)
    finally:
        a.close()
        b.close()


if __name__ == "__main__":
    main()
