"""Parsing and formatting of numbers for people: sizes, durations, rates, ratios (``1KiB``, ``16 MiB``,
``29.4 µs``, ``12.3k``, ``1.2 GB/s``, ``1.7x``).

The one place where a number becomes text: findings, figures' tick labels, the report's tables and the
compare command all format through these functions (which unit each metric takes is in
``ipcbench.plan.metrics``).
"""

from __future__ import annotations

import math
import re

from .errors import UserError

_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """``"8"`` -> 8, ``"1KiB"``/``"1k"`` -> 1024, ``"1kB"`` -> 1000, ``"16MiB"`` -> 16777216."""
    m = _SIZE_RE.match(text)
    if not m:
        if text.strip().startswith("-"):
            raise UserError(f"payload size {text.strip()!r} is negative; sizes are 0 or more bytes")
        raise UserError(f"cannot read payload size {text!r}; use a number of bytes or units like 1KiB, 64KiB, 16MiB")
    number, unit = m.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise UserError(f"unknown size unit {unit!r} in {text!r}; use B, KiB, MiB or GiB")
    value = float(number) * factor
    if value != int(value):
        raise UserError(f"payload size {text!r} is not a whole number of bytes")
    return int(value)


def split_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: the comma lists of CLI flags and environment variables."""
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def parse_size_list(text: str) -> list[int]:
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError("--payload-sizes is empty; give a comma list such as 8,1KiB,64KiB")
    return sorted(set(parse_size(p) for p in parts))


def parse_int_list(text: str, what: str) -> list[int]:
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise UserError(f"{what} {part!r} is not a whole number") from None
        if value < 1:
            raise UserError(f"{what} must be 1 or more, got {value}")
        out.append(value)
    if not out:
        raise UserError(f"{what} list is empty")
    return sorted(set(out))


def format_size(n: int) -> str:
    """Binary units, exact where possible: 8 B, 1 KiB, 16 KiB, 1.5 MiB."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor:
            value = n / factor
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def format_finite(v, spec: str, missing: str = "n/a") -> str:
    """``v`` in the format ``spec`` (``".3f"``), or ``missing`` where it is None, NaN or infinite."""
    return format(v, spec) if v is not None and math.isfinite(v) else missing


def _three_digits(v: float) -> float:
    """``v`` rounded to 3 significant digits, so that the unit is chosen for the number shown (999,999.9 is
    shown as 1M, not 1e+03k)."""
    return float(f"{v:.3g}")


def format_seconds(s: float) -> str:
    """Human duration with 3 significant digits: 29.4 µs, 1.20 ms, 2.5 s."""
    if s != s:  # NaN
        return "n/a"
    s = _three_digits(s)
    a = abs(s)
    if a < 1e-6:
        return f"{s * 1e9:.3g} ns"
    if a < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if a < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s" if a < 1000 else f"{s:.0f} s"


def _scaled(v: float, steps, plain: str) -> str:
    v = _three_digits(v)
    for factor, suffix in steps:
        if abs(v) >= factor:
            x = v / factor
            return (f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}") + suffix
    return f"{v:.3g}{plain}"


def format_count_rate(v: float) -> str:
    """Compact count: 950, 12.3k, 4.5M (3 significant digits)."""
    return _scaled(v, ((1e9, "G"), (1e6, "M"), (1e3, "k")), "")


def format_bytes_rate(v: float) -> str:
    """Decimal bytes per second: 950 B/s, 12.3 MB/s, 1.2 GB/s."""
    return _scaled(v, ((1e9, " GB/s"), (1e6, " MB/s"), (1e3, " kB/s")), " B/s")


def format_ratio(r: float) -> str:
    """A factor in prose: 1.7x, 25x (one decimal below 10)."""
    return f"{r:.1f}x" if r < 9.95 else f"{r:.0f}x"


def format_factor(f: float) -> str:
    """A factor in a small cell: 1.3x, 2x, 25x (two significant digits below 10)."""
    return f"{f:.2g}x" if f < 10 else f"{f:.0f}x"


def format_change(r: float) -> str:
    """A multiplier applied to a value: ×3.9, ×1.0, ×0.45 (two decimals below 1)."""
    return f"×{r:.1f}" if r >= 1 else f"×{r:.2f}"


def format_percent(v: float, digits: int | None = None) -> str:
    """A fraction as a percentage: 0.2 -> 20% (whole), or with ``digits`` significant digits: 0.999 -> 99.9%."""
    return f"{v:.0%}" if digits is None else f"{v * 100:.{digits}g}%"


def format_count(v: float) -> str:
    """A count as a whole number: 2000."""
    return f"{v:.0f}"


def format_number(v: float, digits: int = 4) -> str:
    """A plain number with ``digits`` significant digits: 0.4567, 1.234e+05."""
    return f"{v:.{digits}g}"
