"""Time-ordered identifiers (UUIDv7, RFC 9562).

Ids sort by creation time, so listing can order and paginate by id alone: one index, stable
cursors, no ties. Python 3.11's ``uuid`` module has no ``uuid7`` yet (3.14 adds it).
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> str:
    """A UUIDv7 string; monotonic within this process (a 12-bit counter breaks same-ms ties)."""
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            now_ms = _last_ms
        else:
            _last_ms, _counter = now_ms, 0
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (now_ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return str(uuid.UUID(int=value))


def looks_like_id(value: object) -> bool:
    """Whether ``value`` has the shape of an id (checked before it reaches a query)."""
    return isinstance(value, str) and len(value) == 36 and value.count("-") == 4
