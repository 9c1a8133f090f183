"""Streaming an object to a client, with single HTTP Range requests (RFC 9110 §14)."""

from __future__ import annotations

import re
import urllib.parse

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aecflow.host.errors import error_response
from aecflow.storage import Storage

#: ASCII digits only (``\d`` also takes other scripts' digits).
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$", re.IGNORECASE)
#: A position with more digits is past the end of any object (and int() refuses 4,300+ digits).
_MAX_DIGITS = 19


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the exact UTF-8 name (RFC 6266)."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(filename)}"


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``(start, end_exclusive)``, ``None`` for the whole object, or ``"unsatisfiable"``."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None  # multiple or odd ranges: serve the whole object (allowed by the RFC)
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = _position(last)
        return (max(0, size - length), size) if length and size else "unsatisfiable"
    start = _position(first)
    if last and _position(last) < start:
        return None  # invalid, not unsatisfiable (RFC 9110 §14.1.1): the whole object
    if start >= size:
        return "unsatisfiable"
    return start, (min(size, _position(last) + 1) if last else size)


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def stream_object(
    request: Request,
    storage: Storage,
    key: str,
    *,
    size: int,
    filename: str,
    content_type: str | None,
    etag: str | None,
) -> Response:
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": content_disposition(filename)}
    if etag:
        headers["ETag"] = f'"{etag}"'
    wanted = parse_range(request.headers.get("range"), size)
    if wanted == "unsatisfiable":
        return error_response(
            416,
            "range_not_satisfiable",
            f"the object has {size} bytes",
            {"Content-Range": f"bytes */{size}"},
        )
    start, end = wanted if isinstance(wanted, tuple) else (0, size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if isinstance(wanted, tuple):
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(
        storage.open(key, start=start, end=end),
        status,
        headers=headers,
        media_type=content_type or "application/octet-stream",
    )
