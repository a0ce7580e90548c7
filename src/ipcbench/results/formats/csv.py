"""Tidy CSV export: the public columns of ``schema.TIDY_COLUMNS`` first, then ``flags``.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) as a
formula, and a result file may come from anyone (a foreign machine's mechanism name, an error text):
such text cells get a leading ``'`` (OWASP's advice on CSV injection), so they open as text. Numbers are
written as numbers, negative ones included.
"""

from __future__ import annotations

import pandas as pd

from ..schema import TIDY_COLUMNS

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _as_text(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def without_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell that a spreadsheet would run as a formula prefixed with ``'``."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or isinstance(out[col].dtype, pd.StringDtype):
            out[col] = out[col].map(_as_text)
    return out


def write_csv(tidy, out) -> None:
    without_formulas(tidy[[*TIDY_COLUMNS, "flags"]]).to_csv(out, index=False)
