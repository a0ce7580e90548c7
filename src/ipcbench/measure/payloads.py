"""Deterministic payloads by kind and size.

``bytes`` is the only kind today; ``numpy`` and ``object`` come later. The same (kind, size) always gives
equal payloads, so runs are reproducible, and the content is not all zeros.
"""

from __future__ import annotations

_PATTERN = bytes(range(256))


def make_payload(kind: str, nbytes: int):
    if nbytes < 0:
        raise ValueError(f"payload size must be >= 0, got {nbytes}")
    if kind == "bytes":
        reps, rest = divmod(nbytes, len(_PATTERN))
        return _PATTERN * reps + _PATTERN[:rest]
    raise ValueError(f"unknown payload kind {kind!r}; known: bytes")


def payload_size(obj) -> int:
    """Size in bytes of a payload made by :func:`make_payload` (used to check echoes)."""
    return len(obj)
