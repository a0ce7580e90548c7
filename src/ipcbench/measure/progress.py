"""Progress with an ETA for ``ipcbench run``: a rich progress bar on a terminal, one line per finished
case otherwise (CI logs, pipes). Both go to stderr.

The runner interleaves the rounds of many cases, so progress counts rounds: each round advances the bar
by its share of its case's estimated cost (``runner.estimate_case_s`` / rounds), which keeps the ETA
meaningful from the first round on whatever order cases finish in; the ETA then follows the real speed.
A failed case's remaining rounds are counted as done (they will not run). The runner calls
``start(cases, weights, rounds)``, then per round ``round_started(case, round_index)`` and
``round_done(case, weight, rounds)``, ``case_done(case, record)`` when a case's record is written, and
``stop()``.
"""

from __future__ import annotations

import sys
import time

from ..units import format_seconds


def _headline(record: dict) -> str:
    if record["status"] != "ok":
        return f"FAILED: {record['error']}"
    m = record["metrics"]
    parts = []
    if "latency_p50" in m:
        parts.append(f"p50 {format_seconds(m['latency_p50']['value'])}")
    if "throughput_msgs" in m:
        parts.append(f"{m['throughput_msgs']['value']:,.0f} ops/s")
    flags = (record.get("noise") or {}).get("flags") or []
    if flags:
        parts.append("[" + ",".join(flags) + "]")
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class LineProgress:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def start(self, cases, weights, rounds=1):
        self.n, self.total, self.done_w, self.i = len(cases), sum(weights), 0.0, 0
        self.rounds_total, self.rounds_done = len(cases) * rounds, 0
        self.t0 = time.monotonic()
        print(f"ipcbench: {self.n} cases x {rounds} rounds, estimated {_clock(self.total)}", file=self.stream,
              flush=True)

    def round_started(self, case, round_index):
        pass

    def round_done(self, case, weight, rounds=1):
        self.done_w += weight
        self.rounds_done += rounds

    def eta(self) -> float:
        elapsed = time.monotonic() - self.t0
        return elapsed / self.done_w * max(0.0, self.total - self.done_w) if self.done_w else 0.0

    def case_done(self, case, record):
        self.i += 1
        width = len(str(self.n))
        print(f"[{self.i:>{width}}/{self.n}] {case.label():<44} {_headline(record)}  "
              f"(round {self.rounds_done}/{self.rounds_total}, ETA {_clock(self.eta())})",
              file=self.stream, flush=True)

    def stop(self):
        pass


class RichProgress:
    def __init__(self):
        from rich.console import Console

        self.console = Console(stderr=True)

    def start(self, cases, weights, rounds=1):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description:<52}"), BarColumn(), TextColumn("{task.fields[count]}"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self.console, transient=False)
        self.n, self.i, self.rounds = len(cases), 0, rounds
        self.task = self.progress.add_task("starting", total=sum(weights), count=self._count())
        self.progress.start()

    def _count(self) -> str:
        return f"{self.i}/{self.n} cases"

    def round_started(self, case, round_index):
        self.progress.update(self.task, description=f"{case.label()} round {round_index + 1}/{self.rounds}")

    def round_done(self, case, weight, rounds=1):
        self.progress.advance(self.task, weight)

    def case_done(self, case, record):
        self.i += 1
        if record["status"] != "ok":
            from rich.markup import escape

            self.progress.console.print(f"[red]failed[/red] {escape(case.label())}: {escape(record['error'])}")
        self.progress.update(self.task, count=self._count())

    def stop(self):
        self.progress.stop()


class QuietProgress:
    def start(self, cases, weights, rounds=1):
        pass

    def round_started(self, case, round_index):
        pass

    def round_done(self, case, weight, rounds=1):
        pass

    def case_done(self, case, record):
        pass

    def stop(self):
        pass


def make_progress(quiet: bool = False):
    if quiet:
        return QuietProgress()
    if sys.stderr.isatty():
        return RichProgress()
    return LineProgress()
