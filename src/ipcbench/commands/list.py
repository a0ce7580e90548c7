"""``ipcbench list``: mechanisms with their patterns, patterns, placements, presets and metrics."""

from __future__ import annotations

ORDER = 40


def register(sub) -> None:
    p = sub.add_parser("list", help="list mechanisms, patterns, placements, presets and metrics",
                       description="List what ipcbench can measure. Example: ipcbench list")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..measure.mechanisms import all_mechanisms
    from ..plan.cases import DEFAULT_PLACEMENT, PATTERNS, PLACEMENTS
    from ..plan.metrics import METRICS
    from ..plan.presets import PRESETS

    print("mechanisms:")
    for m in all_mechanisms():
        print(f"  {m.name:<18} {','.join(m.patterns):<26} {m.summary}")
    print("\npatterns:")
    for name, text in PATTERNS.items():
        print(f"  {name:<18} {text}")
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
