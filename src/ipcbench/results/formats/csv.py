"""Tidy CSV export: the public columns of ``frame.TIDY_COLUMNS`` first, then ``flags``."""

from __future__ import annotations

from ..frame import TIDY_COLUMNS


def write_csv(tidy, out) -> None:
    tidy[[*TIDY_COLUMNS, "flags"]].to_csv(out, index=False)
