"""How much of a round trip is the wake-up of an idle CPU? The selfcheck's ``os_pipe`` hand loop (8 B, its
two processes spread over CPUs 0 and 1, ``user_loops.run_hand``), four runs each: alone; beside an
unpinned process that sleeps 1 ms (then 0.1 ms) in a loop; beside an unpinned busy loop; alone again.

    PYTHONPATH=src python tools/wake_probe.py      # an idle machine with 2 or more CPUs

On a VM whose idle vCPUs halt without polling (``cpuidle`` driver ``haltpoll`` with
``haltpoll.guest_halt_poll_ns=0`` on the kernel command line), waking the other side costs most of a
round trip, and any other activity on the machine shortens it. docs/measurement.md has the figures.
"""

import multiprocessing as mp
import time

from ipcbench.measure import user_loops


def ticker(period: float) -> None:
    while True:
        time.sleep(period)


def spinner() -> None:
    while True:
        pass


def runs(label: str, n: int = 4) -> None:
    got = [user_loops.run_hand("os_pipe", "roundtrip", 8, 1, "fork", target_s=0.25, timeout_s=60, placement="spread")
           for _ in range(n)]
    print(f"{label:<28}", "  ".join(f"p50 {g['p50_s'] * 1e6:.1f} µs, {g['rate'] / 1e3:.1f}k/s" for g in got))


def main() -> None:
    runs("alone")
    for name, target, args in (("ticker 1 ms, unpinned", ticker, (0.001,)),
                               ("ticker 0.1 ms, unpinned", ticker, (0.0001,)),
                               ("busy loop, unpinned", spinner, ())):
        background = mp.Process(target=target, args=args, daemon=True)
        background.start()
        try:
            runs(name)
        finally:
            background.kill()
            background.join()
    runs("alone")


if __name__ == "__main__":
    main()
