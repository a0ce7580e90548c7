"""This machine's identity, kept in a per-user machine file (as asv keeps ``~/.asv-machine.json``).

Result sets from many machines merge by ``machine_id``, so the id must tell machines apart. Derived ids
do not: cloned VM images share ``/etc/machine-id`` and often the hostname, and a renamed host would
become a new machine. So the id is made once, on the first run, as the hostname plus a random suffix,
and kept in ``$XDG_CONFIG_HOME/ipcbench/machine.json`` (``~/.config/...``; ``IPCBENCH_MACHINE_FILE``
names another file) with a free-text description; ``ipcbench machine`` shows and edits it. The file
also records the hostname it was made on: when that changes (a clone, or a rename), ``ipcbench machine``
says so, and the user decides whether this is a new machine (``--new``) or the same one renamed.

Where no file can be written (a read-only home), the id falls back to one derived from the hostname and
``/etc/machine-id``, and ``load`` says where it looked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UserError
from ..results.io import write_json_atomic

FILE_ENV = "IPCBENCH_MACHINE_FILE"
FORMAT = "ipcbench-machine"
# used as a folder name (results/<machine_id>/) and in file names: no separators, no dot-dot, no spaces
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def path() -> Path:
    if os.environ.get(FILE_ENV):
        return Path(os.environ[FILE_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "ipcbench" / "machine.json"


def hostname() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname()).strip(".-") or "host"


def check_id(machine_id: str) -> str:
    if not ID_PATTERN.fullmatch(machine_id or "") or ".." in machine_id:
        raise UserError(f"machine id {machine_id!r} is not usable: 1-64 letters, digits, '.', '_' or '-', "
                        f"starting with a letter or digit (it names the folder results/<machine_id>/)")
    return machine_id


def new_id() -> str:
    return f"{hostname()}-{secrets.token_hex(3)}"


def now() -> str:
    """The current time as the machine file writes it (UTC, ISO 8601, seconds)."""
    return _now()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read(p: Path | None = None) -> dict | None:
    """The machine file's contents, None if there is none; a damaged file is a user error."""
    p = p or path()
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{p}: not a valid machine file (not UTF-8 text); fix it, or delete it to get a new "
                        f"machine id") from None
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise UserError(f"{p}: cannot read the machine file ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise UserError(f"{p}: not a valid machine file (nested too deeply); fix it, or delete it to get a new "
                        f"machine id") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{p}: not a valid machine file ({exc.msg}); fix it, or delete it to get a new "
                        f"machine id") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("machine_id"), str):
        raise UserError(f"{p}: not an ipcbench machine file (no \"format\": \"{FORMAT}\" and machine_id); "
                        f"fix it, or delete it to get a new machine id")
    check_id(data["machine_id"])
    return data


def save(data: dict, p: Path | None = None) -> Path:
    p = p or path()
    try:
        write_json_atomic(p, data)
    except OSError as exc:
        raise UserError(f"cannot write the machine file {p}: {exc.strerror or exc}") from None
    return p


def load(create: bool = True) -> dict:
    """This machine's identity: the machine file, made on first use. With no writable file, a derived id
    (``saved`` False)."""
    p = path()
    data = read(p)
    if data is not None:
        return {**data, "path": str(p), "saved": True}
    data = {"format": FORMAT, "version": 1, "machine_id": new_id(), "description": "", "created": _now(),
            "hostname": hostname()}
    if create:
        try:
            save(data, p)
            return {**data, "path": str(p), "saved": True}
        except UserError:
            pass
    return {**data, "machine_id": derived_id(), "path": str(p), "saved": False}


def default_machine_id() -> str:
    """This machine's id: from the machine file, made on first use."""
    return load()["machine_id"]


def derived_id() -> str:
    """Hostname plus a short hash of /etc/machine-id (or of the hostname alone): the fallback where no
    machine file can be written. Clones of one VM image share it, which is why the file exists."""
    try:
        seed = Path("/etc/machine-id").read_text().strip()
    except OSError:
        seed = ""
    return f"{hostname()}-{hashlib.sha256((seed or hostname()).encode()).hexdigest()[:6]}"
