"""Tidy CSV export: the public columns of ``schema.TIDY_COLUMNS`` first, then ``flags``."""

from __future__ import annotations

from ..schema import TIDY_COLUMNS


def write_csv(tidy, out) -> None:
    tidy[[*TIDY_COLUMNS, "flags"]].to_csv(out, index=False)
