"""What gets measured: a ``Case`` (one cell of the matrix) and the ``RoundSpec`` for one round of it.

A case is identified by (mechanism, pattern, payload_kind, payload_bytes, workers, start_method, placement).
These names are public: they appear in CLI flags, result files and the tidy export.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..units import format_size

PATTERNS = {
    "roundtrip": "ping-pong with an echo peer; latency = one full round trip of the payload",
    "stream": "one-way stream producer -> consumer; throughput counted where the consumer receives",
    "fanin": "N producers -> 1 consumer (N = workers); throughput counted at the consumer",
    "rpc": "N client processes make proxy calls that return the payload; latency per call",
    "dispatch": "Pool tasks that echo the payload; apply: one task at a time, apply_async: many in flight",
    "startup": "Process.start() until the child runs its first line (payload = pickled argument)",
    "contention": "N processes acquire and release one lock; latency per acquire+release",
}

# Patterns whose `workers` dimension means "number of peer processes"; the others always use 1.
MULTI_WORKER_PATTERNS = frozenset({"fanin", "rpc", "dispatch", "contention"})
# Patterns that move no payload: they run with payload_bytes = 0 only.
PAYLOADLESS_PATTERNS = frozenset({"contention"})

# What a payload is (``measure.payloads.make_payload`` builds them; ``payload_bytes`` is the size): the
# first is the default, and the kind of cases that move no payload (contention).
# Dispatch mechanisms whose latency sample is one whole call or batch of K tasks (``params.latency_is``):
# map/imap calls and the submit-all forms. Their latency is not a per-task latency, so it is never ranked
# beside one (winner maps, the dispatch figure's latency panel); their throughput is per task.
PER_CALL_LATENCY = frozenset({"pool_map", "pool_map_chunksize1", "pool_imap", "process_pool_executor_map",
                              "pool_apply_async", "pool_apply_async_callback", "process_pool_executor"})


def per_task_latency(df):
    """``df`` (tidy rows) without the latency rows of ``PER_CALL_LATENCY`` dispatch cases."""
    drop = ((df["pattern"] == "dispatch") & df["mechanism"].isin(PER_CALL_LATENCY)
            & df["metric"].astype(str).str.startswith("latency"))
    return df[~drop]


PAYLOAD_KINDS = {
    "bytes": "a bytes object of the given size (one buffer: copied, never pickled item by item)",
    "numpy": "a 1-D uint8 numpy array of the given size (pickled with its buffer; raw floors send the buffer)",
    "object": "nested dicts and lists (records of ints, floats, strings, bools) whose pickle is about the "
              "given size: pickling many small objects",
}
DEFAULT_PAYLOAD_KIND = "bytes"
# The smallest size of a kind (``build_grid`` skips smaller ones): an ``object`` payload is a dict with its
# size and a list of records, which pickles to 48 bytes with no record at all (``measure.payloads``).
PAYLOAD_MIN_BYTES = {"object": 48}

# Where a round's processes run (applied by ``measure.placement``). The default is the one that gives the
# most stable numbers; result files from before placement existed were unpinned ("os").
PLACEMENTS = {
    "spread": "the timing process on one CPU, each peer process on the next (one per physical core first)",
    "shared": "every process of the round on one CPU",
    "os": "nothing pinned: the operating system places the processes",
}
DEFAULT_PLACEMENT = "spread"


def case_name(mechanism, pattern=None, payload_bytes=None, workers=None, payload_kind=None, extra=()) -> str:
    """The one way a case is named for people: ``queue roundtrip 64 KiB w1`` and then ``extra``.

    Parts that are None are left out (a figure's row already names the payload size, say); the payload
    kind only when it is not ``bytes``; ``extra``: further parts as given (start method, "Python 3.12").
    """
    parts = [mechanism, pattern, None if payload_bytes is None else format_size(int(payload_bytes)),
             None if workers is None else f"w{workers}", None if payload_kind in (None, "bytes") else payload_kind,
             *extra]
    return " ".join(str(p) for p in parts if p is not None)


@dataclass(frozen=True, order=True)
class Case:
    mechanism: str
    pattern: str
    payload_kind: str
    payload_bytes: int
    workers: int
    start_method: str
    placement: str = DEFAULT_PLACEMENT

    @property
    def key(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))

    @property
    def id(self) -> str:
        """``pipe_duplex/roundtrip/8B/w1/fork/spread``: the one name of a case (test ids, pyperf benchmark
        names)."""
        size = format_size(self.payload_bytes).replace(" ", "")
        kind = "" if self.payload_kind == "bytes" else f"{self.payload_kind}:"
        return f"{self.mechanism}/{self.pattern}/{kind}{size}/w{self.workers}/{self.start_method}/{self.placement}"

    def label(self) -> str:
        """``queue roundtrip 64 KiB w1 fork spread``: the case for people (progress lines, messages)."""
        return case_name(self.mechanism, self.pattern, self.payload_bytes, self.workers, self.payload_kind,
                         [self.start_method, self.placement])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Case:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass(frozen=True)
class RoundSpec:
    """How long and how hard one round of a case runs (all limits; the first reached ends the round)."""

    budget_s: float = 0.15        # timed window aimed for
    min_messages: int = 5         # keep timing past the budget until this many are delivered...
    max_window_s: float = 5.0     # ...but never longer than this
    max_messages: int = 20_000    # per round, across all peers
    warmup: int = 10              # messages before the clock starts (each peer)
    warmup_s: float = 0.05        # warm-up stops early after this long
    timeout_s: float = 20.0       # any single blocking call (recv, get, join, acquire)
    # The warm-up runs at least this long before it may stop (wall time from its first call): on a VM
    # whose idle CPUs are slow to wake, the first ~20-60 ms of a round's exchanges run faster than its
    # steady state, and a window that starts there reads round trips 20-30 % fast (docs/measurement.md).
    warmup_min_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RoundSpec:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})
