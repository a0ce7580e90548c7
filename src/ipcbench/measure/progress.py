"""Progress with an ETA for ``ipcbench run``: a rich progress bar on a terminal, one line per case
otherwise (CI logs, pipes). Both go to stderr. The bar advances by each case's estimated cost, so its
ETA is meaningful from the first case on; rich then calibrates it against the real speed."""

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

    def start(self, cases, weights):
        self.n, self.total, self.done_w, self.i = len(cases), sum(weights), 0.0, 0
        self.t0 = time.monotonic()
        print(f"ipcbench: {self.n} cases, estimated {_clock(self.total)}", file=self.stream, flush=True)

    def case_started(self, case):
        self.i += 1

    def case_done(self, case, record, weight):
        self.done_w += weight
        elapsed = time.monotonic() - self.t0
        eta = elapsed / self.done_w * (self.total - self.done_w) if self.done_w else 0.0
        width = len(str(self.n))
        print(f"[{self.i:>{width}}/{self.n}] {case.label():<44} {_headline(record)}  (ETA {_clock(eta)})",
              file=self.stream, flush=True)

    def stop(self):
        pass


class RichProgress:
    def __init__(self):
        from rich.console import Console

        self.console = Console(stderr=True)

    def start(self, cases, weights):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description:<44}"), BarColumn(), TextColumn("{task.fields[count]}"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self.console, transient=False)
        self.n, self.i = len(cases), 0
        self.task = self.progress.add_task("starting", total=sum(weights), count=f"0/{self.n}")
        self.progress.start()

    def case_started(self, case):
        self.i += 1
        self.progress.update(self.task, description=case.label(), count=f"{self.i}/{self.n}")

    def case_done(self, case, record, weight):
        if record["status"] != "ok":
            from rich.markup import escape

            self.progress.console.print(f"[red]failed[/red] {escape(case.label())}: {escape(record['error'])}")
        self.progress.advance(self.task, weight)

    def stop(self):
        self.progress.stop()


class QuietProgress:
    def start(self, cases, weights):
        pass

    def case_started(self, case):
        pass

    def case_done(self, case, record, weight):
        pass

    def stop(self):
        pass


def make_progress(quiet: bool = False):
    if quiet:
        return QuietProgress()
    if sys.stderr.isatty():
        return RichProgress()
    return LineProgress()
