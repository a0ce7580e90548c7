"""Mechanisms as declarations: what a mechanism provides, and which patterns it can therefore run.

A ``Mechanism`` holds no timing code. It names itself (``name``, ``family``, ``summary``), gives the
*makers* that build its objects, and lists the patterns (``ipcbench.measure.patterns``) it supports::

    MECHANISMS = [
        Mechanism("queue", "queue", "multiprocessing.Queue: put/get, pickled by a feeder thread",
                  patterns=("roundtrip", "stream", "fanin"), make_channel=_channel),
        Mechanism("lock", "sync", "multiprocessing.Lock: acquire+release by N processes at once",
                  patterns=("contention",), make_lock=_lock),
    ]

The makers (each pattern says which it needs, ``Pattern.needs``):

* ``make_channel(rnd, bounded) -> (parent end, peer end)``, two ``channels.Endpoint``; with
  ``bounded=True`` (stream, fanin) one bounded channel, consumer end first. Needed by roundtrip, stream,
  fanin.
* ``make_proxy(manager, payload, n) -> proxy`` whose keys 0..n-1 hold the payload. Needed by rpc.
* ``make_lock(ctx) -> lock`` with acquire/release. Needed by contention.
* ``dispatch``: not a maker but a style: ``"apply"`` (one task at a time), ``"apply_async"`` (a batch
  submitted, then collected), ``"apply_async_window"`` (a window of tasks in flight), ``"map"``, ...;
  ``patterns.DISPATCH_STYLES``. Needed by dispatch.
* startup needs nothing: it times ``Process.start()`` of the case's start method.

``payload_kinds`` (default: every kind of ``plan.cases.PAYLOAD_KINDS``) names the payload kinds the
mechanism can carry; the grid skips the others (the floors carry buffers: ``bytes`` and ``numpy``, not
``object``), and ``ipcbench list`` shows the restriction.

``peers="thread"`` makes the patterns' peers threads of the round's process instead of processes (the
baseline ``thread_queue``: what the same exchange costs inside one process); each thread is pinned to
the CPU a peer process would get.

Makers run in the orchestrator process, outside the clock; anything they open they register with
``rnd.stack`` so that the round closes it. The patterns own the timed loops and the peer processes, so
every mechanism is measured the same way, by ``ipcbench run`` (``patterns.py``) and by the pytest-benchmark
front end (``sessions.py``), which both look up what to build from this declaration.

A declaration is checked when it is made (``DeclarationError``): every pattern it names must exist, and
the mechanism must provide every maker that pattern needs. A plugin may also bring a pattern driver of
its own (``patterns.Pattern("roundtrip", my_driver, needs=(...))``) in place of a name; ``ipcbench run``
measures it, the pytest-benchmark front end skips it (it has no session form).

Adding a mechanism: one module in this package that defines ``MECHANISMS`` (a list of declarations; the
registry imports every module here), plus its test. ``tests/test_engine_e2e.py`` already runs every
registered mechanism on a tiny case of each pattern it declares, in real processes; the test to write is
the mechanism's name in its list of expected mechanisms and whatever is particular to it (the example in
``tests/test_mechanisms.py`` adds a whole mechanism as one plugin module and runs it end to end). Nothing
else changes: ``ipcbench run``/``list``, the presets and ``pytest bench/`` all read the registry.
Extra modules can be loaded from the environment variable ``IPCBENCH_PLUGINS`` (comma-separated
importable module names), which is how the tests add faulty mechanisms without touching the product.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ...errors import UserError
from ...plan.cases import PAYLOAD_KINDS
from .. import patterns as _patterns
from ..patterns import Pattern

__all__ = ["DeclarationError", "Mechanism", "all_mechanisms", "get"]

MAKERS = ("make_channel", "make_proxy", "make_lock", "dispatch")


class DeclarationError(ValueError):
    """A mechanism declaration that cannot work: an unknown pattern, or a pattern whose maker is missing."""


@dataclass(frozen=True)
class Mechanism:
    """One mechanism: its public name, the makers it provides, the patterns it supports.

    ``patterns`` is given as names of ``patterns.PATTERNS`` (or ``Pattern`` objects of a plugin's own)
    and kept as a read-only mapping name -> ``Pattern``, in the order given. ``payload_kinds``: the kinds
    of ``plan.cases.PAYLOAD_KINDS`` it carries (kept as a tuple in that order; default all).
    """

    name: str
    family: str
    summary: str
    patterns: Mapping[str, Pattern] = field(default_factory=tuple)
    make_channel: Callable | None = None
    make_proxy: Callable | None = None
    make_lock: Callable | None = None
    dispatch: str | None = None
    peers: str = "process"              # "thread": its peers are threads of the round's process (a baseline)
    payload_kinds: tuple[str, ...] = tuple(PAYLOAD_KINDS)

    def __post_init__(self) -> None:
        declared = self.patterns
        if isinstance(declared, Mapping):
            raise DeclarationError(f"mechanism {self.name!r}: patterns= takes pattern names (or Pattern objects), "
                                   f"not a mapping to functions; the mechanism gives makers instead, e.g. "
                                   f"Mechanism(..., patterns=('roundtrip',), make_channel=...)")
        if isinstance(declared, str | Pattern):
            declared = (declared,)
        resolved: dict[str, Pattern] = {}
        for item in declared:
            pattern = self._resolve(item)
            if pattern.name in resolved:
                raise DeclarationError(f"mechanism {self.name!r} declares pattern {pattern.name!r} twice")
            missing = [need for need in pattern.needs if getattr(self, need, None) is None]
            if missing:
                raise DeclarationError(
                    f"mechanism {self.name!r} declares pattern {pattern.name!r}, which needs "
                    f"{' and '.join(missing)}; give Mechanism(..., "
                    f"{', '.join(f'{m}=...' for m in missing)}) or drop {pattern.name!r}")
            resolved[pattern.name] = pattern
        if self.peers not in ("process", "thread"):
            raise DeclarationError(f"mechanism {self.name!r}: peers={self.peers!r}; give 'process' or 'thread'")
        if self.dispatch is not None and self.dispatch not in _patterns.DISPATCH_STYLES:
            raise DeclarationError(f"mechanism {self.name!r}: dispatch={self.dispatch!r} is not a dispatch "
                                   f"style; known: {', '.join(_patterns.DISPATCH_STYLES)}")
        object.__setattr__(self, "patterns", MappingProxyType(resolved))
        kinds = (self.payload_kinds,) if isinstance(self.payload_kinds, str) else tuple(self.payload_kinds)
        unknown = [k for k in kinds if k not in PAYLOAD_KINDS]
        if unknown or not kinds:
            raise DeclarationError(f"mechanism {self.name!r}: payload_kinds={self.payload_kinds!r} "
                                   f"{f'has unknown kind {unknown[0]!r}' if unknown else 'names no kind'}; "
                                   f"known: {', '.join(PAYLOAD_KINDS)}")
        object.__setattr__(self, "payload_kinds", tuple(k for k in PAYLOAD_KINDS if k in kinds))

    def _resolve(self, item: str | Pattern) -> Pattern:
        if isinstance(item, Pattern):
            return item
        try:
            return _patterns.PATTERNS[item]
        except (KeyError, TypeError):
            raise DeclarationError(f"mechanism {self.name!r} declares unknown pattern {item!r}; known: "
                                   f"{', '.join(_patterns.PATTERNS)} (or a patterns.Pattern of its own)") from None

    def supports(self, pattern: str) -> bool:
        return pattern in self.patterns

    def carries(self, kind: str) -> bool:
        """Whether this mechanism can move a payload of ``kind`` (``payload_kinds``)."""
        return kind in self.payload_kinds

    @property
    def makers(self) -> dict[str, object]:
        """The makers (and dispatch style) this mechanism provides."""
        return {m: getattr(self, m) for m in MAKERS if getattr(self, m) is not None}


_REGISTRY: dict[str, Mechanism] | None = None


def register(mechanisms: Iterable[Mechanism], reg: dict[str, Mechanism], source: str) -> None:
    """Add declarations to ``reg``; a name may be declared once."""
    for mech in mechanisms:
        if not isinstance(mech, Mechanism):
            raise DeclarationError(f"{source}: MECHANISMS holds {mech!r}, not a Mechanism")
        if mech.name in reg:
            raise RuntimeError(f"mechanism {mech.name!r} is defined twice ({source})")
        reg[mech.name] = mech


def _load() -> dict[str, Mechanism]:
    global _REGISTRY
    if _REGISTRY is None:
        reg: dict[str, Mechanism] = {}
        names = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
        names += [n.strip() for n in os.environ.get("IPCBENCH_PLUGINS", "").split(",") if n.strip()]
        for modname in names:
            try:
                module = importlib.import_module(modname)
            except DeclarationError as exc:        # say which module holds the declaration
                raise DeclarationError(f"{modname}: {exc}") from exc
            register(getattr(module, "MECHANISMS", ()), reg, modname)
        _REGISTRY = reg
    return _REGISTRY


def all_mechanisms() -> list[Mechanism]:
    return list(_load().values())


def get(name: str) -> Mechanism:
    reg = _load()
    try:
        return reg[name]
    except KeyError:
        raise UserError(f"unknown mechanism {name!r}; known: {', '.join(reg)} (see `ipcbench list`)") from None
