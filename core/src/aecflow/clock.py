"""Time: one source of "now" and one ISO 8601 form, so every timestamp reads the same.

Everything the core stores is timezone-aware UTC; everything it shows ends in ``Z``.
"""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    """``2026-12-07T10:00:00.123456Z``: UTC, ``Z`` instead of ``+00:00`` (``None`` stays)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
