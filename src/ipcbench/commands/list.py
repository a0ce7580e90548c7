"""``ipcbench list``: mechanisms with their patterns (and payload kinds, where restricted), patterns, payload
kinds, placements, presets and metrics."""

from __future__ import annotations

ORDER = 40


def register(sub) -> None:
    p = sub.add_parser("list", help="list mechanisms, patterns, payload kinds, placements, presets and metrics",
                       description="List what ipcbench can measure. Example: ipcbench list")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..measure.mechanisms import all_mechanisms
    from ..plan.cases import DEFAULT_PAYLOAD_KIND, DEFAULT_PLACEMENT, PATTERNS, PAYLOAD_KINDS, PLACEMENTS
    from ..plan.metrics import METRICS
    from ..plan.presets import PRESETS

    print("mechanisms:")
    for m in all_mechanisms():
        only = "" if set(m.payload_kinds) == set(PAYLOAD_KINDS) else f" [payload kinds: {', '.join(m.payload_kinds)} only]"
        print(f"  {m.name:<18} {','.join(m.patterns):<26} {m.summary}{only}")
    print("\npatterns:")
    for name, text in PATTERNS.items():
        print(f"  {name:<18} {text}")
    print("\npayload kinds (--payload-kinds):")
    for name, text in PAYLOAD_KINDS.items():
        print(f"  {name:<18} {text}" + (" (default)" if name == DEFAULT_PAYLOAD_KIND else ""))
    print("\nplacements (--placement):")
    for name, text in PLACEMENTS.items():
        print(f"  {name:<18} {text}" + (" (default)" if name == DEFAULT_PLACEMENT else ""))
    print("\npresets:")
    for p in PRESETS.values():
        print(f"  {p.name:<18} {p.description}")
    print("\nmetrics (unit, better):")
    for m in METRICS.values():
        print(f"  {m.name:<24} {m.unit:<6} {m.better:<7} {m.help}")
    return 0
