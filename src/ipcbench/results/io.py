"""File I/O for results and reports: atomic writes (temporary file + rename) and JSON reading with clear
errors. The one place that writes a file that someone else may read while it is being written."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import UserError


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it over: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)   # mkstemp makes 0600; results and reports are meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json_atomic(path: str | os.PathLike, data: object) -> None:
    """JSON (compact, no NaN: strict readers reject it) written with ``write_text_atomic``."""
    write_text_atomic(path, json.dumps(data, separators=(",", ":"), allow_nan=False))


def read_json(path: str | os.PathLike) -> object:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UserError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{p}: is a folder; give a result file (or use a command that takes folders)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{p}: not valid JSON (truncated or not a result file?): {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise UserError(f"{p}: not a result file (JSON nested too deeply to read)") from None
    except ValueError as exc:          # e.g. an integer of more digits than Python converts
        what = "a number with too many digits to read" if "integer string conversion" in str(exc) else \
            str(exc).split(";")[0]     # (Python's own wording of the digits limit differs between versions)
        raise UserError(f"{p}: not a result file ({what})") from None
