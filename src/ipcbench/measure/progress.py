"""Progress with an ETA for ``ipcbench run``: a rich progress bar on a terminal, one line per finished
case otherwise (CI logs, pipes). Both go to stderr.

The runner interleaves the rounds of many cases and adds rounds to a case until its CI is tight
(``runner.decide``), so neither the order in which cases finish nor the number of rounds is known in
advance. Progress therefore counts rounds, each weighted by its case's estimated round cost
(``runner.estimate_round_s``), against a ``Forecast``: a finished case counts the rounds it had; a
running one at least one more than it has had, and otherwise the minimum plus the *observed* mean number
of extra rounds of the cases finished so far (failed and interrupted ones aside). Until enough cases have
finished, that mean leans on a prior of half the extra rounds allowed (``PRIOR_CASES`` pseudo-cases), so
the first ETA is neither the optimistic minimum nor the pessimistic maximum. The ETA is the elapsed time
scaled by the expected work left over the work done; the line output also shows the most it can be
(every running case to its maximum).

The runner calls ``start(cases, round_weights, min_rounds, max_rounds)``, then per round
``round_started(i, round_index)`` and ``round_done(i)`` (``i``: the case's index in ``cases``),
``case_done(i, record)`` when a case's record is written, and ``stop()``.
"""

from __future__ import annotations

import sys
import time

from ..units import format_seconds

PRIOR_CASES = 2


class Forecast:
    """Expected and maximum work of a run with adaptive rounds, in estimated seconds. Pure bookkeeping.

    With a run budget (``run_budget_s``; quick's 240 s) the runner adds rounds beyond a case's minimum
    only while they fit what is left of it, and with ``floor_rounds`` it lowers the minimum itself down to
    that floor: the run then takes about the larger of the budget and the rounds it still must run, and
    the expected and most work are capped there. ``scale`` (real seconds per estimated second, known
    once rounds have run) turns the budget into the weights' units."""

    def __init__(self, round_weights, min_rounds: int, max_rounds: int | None = None,
                 run_budget_s: float | None = None, floor_rounds: int | None = None):
        self.w = [float(x) for x in round_weights]
        self.min = int(min_rounds)
        self.max = max(self.min, int(max_rounds or min_rounds))
        self.budget = run_budget_s
        self.floor = self.min if floor_rounds is None else min(self.min, int(floor_rounds))
        self.done = [0] * len(self.w)
        self.final: list[int | None] = [None] * len(self.w)
        self._extra_sum = 0
        self._extra_n = 0

    def round_done(self, i: int) -> None:
        self.done[i] += 1

    def case_done(self, i: int, counts: bool = True) -> None:
        """Case ``i`` will have no more rounds; ``counts``: it stopped by the rule (not failed or cut
        short), so it tells how many extra rounds cases take."""
        self.final[i] = self.done[i]
        if counts:
            self._extra_sum += max(0, self.done[i] - self.min)
            self._extra_n += 1

    def extra_rounds(self) -> float:
        """Expected rounds beyond the minimum for a case: observed mean, pulled towards the prior."""
        prior = (self.max - self.min) / 2
        return (self._extra_sum + PRIOR_CASES * prior) / (self._extra_n + PRIOR_CASES)

    def expected_rounds(self, i: int) -> float:
        if self.final[i] is not None:
            return float(self.final[i])
        d = self.done[i]
        return min(float(self.max), max(d + 1.0, self.min + self.extra_rounds()))

    def max_rounds(self, i: int) -> int:
        return self.final[i] if self.final[i] is not None else self.max

    def required_rounds(self, i: int) -> int:
        """Rounds case ``i`` gets whatever the budget: its final count, else at least the floor."""
        return self.final[i] if self.final[i] is not None else max(self.done[i], self.floor)

    def _work(self, rounds_of) -> float:
        """Estimated seconds of every case's ``rounds_of(i)`` rounds."""
        return sum(w * rounds_of(i) for i, w in enumerate(self.w))

    def _capped(self, weight: float, scale: float) -> float:
        if self.budget is None:
            return weight
        return min(weight, max(self.budget / scale, self._work(self.required_rounds)))

    def _rounds(self, rounds_of, scale: float) -> int:
        """Every case's ``rounds_of(i)`` rounds, scaled down as their work is by the budget."""
        base = self._work(rounds_of)
        share = self._capped(base, scale) / base if base else 1.0
        return round(sum(rounds_of(i) for i in range(len(self.w))) * share)

    def done_weight(self) -> float:
        return sum(w * d for w, d in zip(self.w, self.done))

    def expected_weight(self, scale: float = 1.0) -> float:
        return self._capped(self._work(self.expected_rounds), scale)

    def max_weight(self, scale: float = 1.0) -> float:
        return self._capped(self._work(self.max_rounds), scale)

    def rounds_done(self) -> int:
        return sum(self.done)

    def rounds_expected(self, scale: float = 1.0) -> int:
        return self._rounds(self.expected_rounds, scale)

    def rounds_max(self, scale: float = 1.0) -> int:
        return self._rounds(self.max_rounds, scale)

    def scale(self, elapsed_s: float) -> float:
        """Real seconds per estimated second so far (1 before any round)."""
        done = self.done_weight()
        return elapsed_s / done if done and elapsed_s > 0 else 1.0

    def eta(self, elapsed_s: float) -> float:
        """Seconds left: elapsed time scaled by expected work left over work done (0 before any)."""
        done = self.done_weight()
        scale = self.scale(elapsed_s)
        return scale * max(0.0, self.expected_weight(scale) - done) if done else 0.0

    def eta_max(self, elapsed_s: float) -> float:
        done = self.done_weight()
        scale = self.scale(elapsed_s)
        return scale * max(0.0, self.max_weight(scale) - done) if done else 0.0


def _headline(record: dict) -> str:
    if record["status"] != "ok":
        return f"FAILED: {record['error']}"
    m = record["metrics"]
    parts = []
    if "latency_p50" in m:
        parts.append(f"p50 {format_seconds(m['latency_p50']['value'])}")
    if "throughput_msgs" in m:
        parts.append(f"{m['throughput_msgs']['value']:,.0f} ops/s")
    ci = record.get("ci_reached")
    if "stop_reason" in record:
        rounds = sum(1 for r in record.get("rounds", ()) if r.get("ok"))
        ci_text = f"±{ci * 100:.1f} %" if ci is not None else "no CI"
        parts.append(f"{rounds} rounds {ci_text}"
                     + ("" if record.get("target_met") else f" ({record['stop_reason']})"))
    flags = (record.get("noise") or {}).get("flags") or []
    if flags:
        parts.append("[" + ",".join(flags) + "]")
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _rounds_text(min_rounds: int, max_rounds: int) -> str:
    return f"{min_rounds} rounds" if max_rounds == min_rounds else f"{min_rounds}-{max_rounds} rounds"


class _Base:
    """What every progress display keeps: the cases, the forecast, the clock."""

    def start(self, cases, round_weights, min_rounds=1, max_rounds=None, run_budget_s=None, floor_rounds=None):
        self.cases = list(cases)
        self.forecast = Forecast(round_weights, min_rounds, max_rounds, run_budget_s, floor_rounds)
        self.n, self.i = len(self.cases), 0
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def eta(self) -> float:
        return self.forecast.eta(self.elapsed())

    def round_started(self, i, round_index):
        pass

    def round_done(self, i):
        self.forecast.round_done(i)

    def case_done(self, i, record):
        self.i += 1
        self.forecast.case_done(i, counts=record.get("stop_reason") not in ("failed", "interrupted"))

    def stop(self):
        pass


class LineProgress(_Base):
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def start(self, cases, round_weights, min_rounds=1, max_rounds=None, run_budget_s=None, floor_rounds=None):
        super().start(cases, round_weights, min_rounds, max_rounds, run_budget_s, floor_rounds)
        f = self.forecast
        most = "" if f.max == f.min else f" (at most {_clock(f.max_weight())})"
        budget = "" if run_budget_s is None else f", a run budget of {_clock(run_budget_s)} for rounds beyond the minimum"
        print(f"ipcbench: {self.n} cases x {_rounds_text(f.min, f.max)}{budget}, estimated "
              f"{_clock(f.expected_weight())}{most}", file=self.stream, flush=True)

    def case_done(self, i, record):
        super().case_done(i, record)
        f = self.forecast
        width = len(str(self.n))
        scale = f.scale(self.elapsed())
        rounds = (f"round {f.rounds_done()}/{f.rounds_max(scale)}" if f.max == f.min else
                  f"round {f.rounds_done()} of ~{f.rounds_expected(scale)}, at most {f.rounds_max(scale)}")
        print(f"[{self.i:>{width}}/{self.n}] {self.cases[i].label():<44} {_headline(record)}  "
              f"({rounds}, ETA {_clock(self.eta())})", file=self.stream, flush=True)


class RichProgress(_Base):
    """The bar is drawn when a round starts or ends, never on a timer: rich's auto-refresh (a thread
    redrawing 10 times a second in the runner) woke the machine during every round, and a process that
    wakes every 0.1 s made a socketpair round trip 6 % faster on the reference VM (``python
    tools/timer_wakeups.py --conditions none,proc:0.1``; docs/measurement.md, "Timers in the timing
    process"): a run on a terminal would have read faster than the same run piped to a file."""

    def __init__(self):
        from rich.console import Console

        self.console = Console(stderr=True)

    def start(self, cases, round_weights, min_rounds=1, max_rounds=None, run_budget_s=None, floor_rounds=None):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        super().start(cases, round_weights, min_rounds, max_rounds, run_budget_s, floor_rounds)
        self.progress = Progress(TextColumn("{task.description:<52}"), BarColumn(), TextColumn("{task.fields[count]}"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self.console, transient=False, auto_refresh=False)
        self.task = self.progress.add_task("starting", total=self.forecast.expected_weight(), count=self._count())
        self.progress.start()
        self.progress.refresh()

    def _count(self) -> str:
        f = self.forecast
        return f"{self.i}/{self.n} cases, {f.rounds_done()}/~{f.rounds_expected(f.scale(self.elapsed()))} rounds"

    def round_started(self, i, round_index):
        self.progress.update(self.task, description=f"{self.cases[i].label()} round {round_index + 1}", refresh=True)

    def round_done(self, i):
        super().round_done(i)
        self._refresh()

    def _refresh(self):
        f = self.forecast
        scale = f.scale(self.elapsed())
        self.progress.update(self.task, total=f.expected_weight(scale), completed=f.done_weight(), count=self._count(),
                             refresh=True)

    def case_done(self, i, record):
        super().case_done(i, record)
        if record["status"] != "ok":
            from rich.markup import escape

            self.progress.console.print(f"[red]failed[/red] {escape(self.cases[i].label())}: "
                                        f"{escape(record['error'])}")
        self._refresh()

    def stop(self):
        self.progress.stop()


class QuietProgress(_Base):
    pass


def make_progress(quiet: bool = False):
    if quiet:
        return QuietProgress()
    if sys.stderr.isatty():
        return RichProgress()
    return LineProgress()
