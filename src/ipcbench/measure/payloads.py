"""Deterministic payloads by kind and size (the kinds: ``plan.cases.PAYLOAD_KINDS``).

The same (kind, size) always gives equal payloads, so runs are reproducible, and the content is not all
zeros.

``bytes``   ``bytes`` of exactly ``nbytes``: 0, 1, ... 255, 0, 1, ... (one buffer, copied as a block).
``numpy``   a C-contiguous, writable 1-D ``uint8`` ndarray of ``nbytes`` elements with the same content as
            ``bytes`` (``arr.nbytes == nbytes``). numpy is imported here, only when a numpy payload is
            made, so rounds of the other kinds never pay its import (~0.1 s; the warm launcher imports it once
            for a run that has numpy cases, ``modules_for``).
``object``  nested dicts and lists whose pickle (``pickle.DEFAULT_PROTOCOL``, what multiprocessing uses)
            is about ``nbytes`` long, i.e. pickling and unpickling many small objects::

                {"nbytes": nbytes,                    # the size asked for (``payload_size`` reads it)
                 "records": [{"id": 100000 + i,       # int
                              "name": "item-0000042", # str, 12 characters, its own object per record
                              "score": i * 0.25,      # float
                              "tags": ["red", "green"],   # a list of 2 of 3 shared strings
                              "active": i % 2 == 0},  # bool
                             ...],                    # ~52 pickled bytes per record
                 "pad": "xxx..."}                     # fills up the last < ~2 records' worth of bytes

            The pickle is within a few bytes of ``nbytes`` from 48 B up (64 B: the envelope and a pad, no
            record yet; 1 KiB: 16 records; 1 MiB: ~20,000). Below 48 B it is the bare envelope, which
            pickles to 48 B whatever was asked. Held in memory it takes ~7.3 times its pickle size
            (tracemalloc, 64 KiB - 16 MiB; ``plan.memory`` counts it so), and it is slow to make, pickle and
            unpickle, which is what it measures (16 MiB on the 2-core VM: ~1.5 s to make, 0.5 s to pickle,
            1.1 s to unpickle); the presets stop it at 1 MiB.
"""

from __future__ import annotations

import pickle

_PATTERN = bytes(range(256))
_TAGS = ("red", "green", "blue")
# Bytes a record adds to the pickle once the keys and tags are memoized (52 on CPython 3.10-3.13), the
# first record's extra (its keys and tags), and per record on average the APPENDS of every 1,000 and a
# 9-byte FRAME header every 64 KiB: a first guess of the count, corrected by measuring.
_RECORD_COST, _FIRST_EXTRA, _RECORD_AVERAGE = 52, 37, 52.01


def make_payload(kind: str, nbytes: int):
    if nbytes < 0:
        raise ValueError(f"payload size must be >= 0, got {nbytes}")
    if kind == "bytes":
        return _bytes(nbytes)
    if kind == "numpy":
        import numpy as np

        arr = np.empty(nbytes, dtype=np.uint8)
        arr[:] = np.frombuffer(_bytes(nbytes), dtype=np.uint8)
        return arr
    if kind == "object":
        return _object(nbytes)
    raise ValueError(f"unknown payload kind {kind!r}; known: bytes, numpy, object")


# modules a kind's payloads import: the warm launcher imports them once for a run that has the kind
_MODULES = {"numpy": ("numpy",)}


def modules_for(kinds) -> list[str]:
    """The modules payloads of ``kinds`` import (for the warm launcher to preload), in a stable order."""
    return sorted({m for kind in kinds for m in _MODULES.get(kind, ())})


def payload_size(obj) -> int:
    """Size in bytes of a payload made by :func:`make_payload`, of any kind (used to check echoes): the
    length of ``bytes``/``bytearray``, ``nbytes`` of an ndarray or memoryview, and the size an ``object``
    payload was made for (its ``"nbytes"`` entry). Imports nothing."""
    if isinstance(obj, bytes | bytearray):
        return len(obj)
    if isinstance(obj, dict):
        return obj["nbytes"]
    nbytes = getattr(obj, "nbytes", None)
    return len(obj) if nbytes is None else nbytes


def _bytes(nbytes: int) -> bytes:
    reps, rest = divmod(nbytes, len(_PATTERN))
    return _PATTERN * reps + _PATTERN[:rest]


def _record(i: int) -> dict:
    return {"id": 100_000 + i, "name": f"item-{i:07d}", "score": i * 0.25,
            "tags": [_TAGS[i % 3], _TAGS[(i + 1) % 3]], "active": i % 2 == 0}


def _object(nbytes: int) -> dict:
    """The ``object`` payload: records up to ``nbytes`` of pickle, then a pad string for the rest (the
    pickle is measured, and the records corrected, at most a few times)."""
    payload = {"nbytes": nbytes, "records": [], "pad": ""}
    records = payload["records"]
    size = len(pickle.dumps(payload, protocol=pickle.DEFAULT_PROTOCOL))
    for _ in range(4):
        missing = nbytes - size
        if 0 <= missing < 2 * _RECORD_COST + 16:
            break
        if missing > 0:
            start = len(records)
            count = int((missing - (0 if start else _FIRST_EXTRA)) / _RECORD_AVERAGE) or 1
            records.extend([_record(i) for i in range(start, start + count)])
        else:
            del records[max(0, len(records) + missing // _RECORD_COST - 1):]
            if not records:
                break
        size = len(pickle.dumps(payload, protocol=pickle.DEFAULT_PROTOCOL))
    missing = nbytes - size
    if missing > 0:
        # "" -> "x" * n adds n bytes (SHORT_BINUNICODE, n < 256) or n + 3 (BINUNICODE)
        payload["pad"] = "x" * (missing if missing < 256 else missing - 3)
    return payload
