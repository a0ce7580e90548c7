"""Registry of mechanisms. Adding a mechanism means adding one module here that defines ``MECHANISMS``.

Each ``Mechanism`` names the patterns it supports and, for each, the callable that runs one round
(``fn(rnd) -> RoundResult``). Extra modules can be loaded from the environment variable
``IPCBENCH_PLUGINS`` (comma-separated importable module names), which is how the tests add faulty
mechanisms without touching the product.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...errors import UserError


@dataclass(frozen=True)
class Mechanism:
    name: str
    family: str
    summary: str
    patterns: Mapping[str, Callable]

    def supports(self, pattern: str) -> bool:
        return pattern in self.patterns


_REGISTRY: dict[str, Mechanism] | None = None


def _load() -> dict[str, Mechanism]:
    global _REGISTRY
    if _REGISTRY is None:
        reg: dict[str, Mechanism] = {}
        names = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
        names += [n.strip() for n in os.environ.get("IPCBENCH_PLUGINS", "").split(",") if n.strip()]
        for modname in names:
            module = importlib.import_module(modname)
            for mech in getattr(module, "MECHANISMS", ()):
                if mech.name in reg:
                    raise RuntimeError(f"mechanism {mech.name!r} is defined twice ({modname})")
                reg[mech.name] = mech
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
