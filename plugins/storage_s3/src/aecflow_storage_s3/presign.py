"""Presigned download URLs (SigV4) that save under the original filename.

obstore can presign, but not with ``response-content-disposition``; botocore can, and signs
it, so the name a browser saves cannot be swapped. Presigning is local computation: no request
reaches S3 until the URL is used.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

from aecflow.errors import StorageInvalid


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the exact UTF-8 name (RFC 6266).

    The header value stays ASCII: S3 echoes it back verbatim, and non-ASCII header bytes are
    read differently by different clients.
    """
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F else "_" for ch in fallback)
    quoted = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quoted}"


def expiry_seconds(expires: dt.timedelta, max_expiry_s: int) -> int:
    """Whole seconds of ``expires``, clamped to ``max_expiry_s``; positive or ``StorageInvalid``."""
    seconds = int(expires.total_seconds())
    if seconds <= 0:
        raise StorageInvalid(f"download URL expiry must be at least one second, got {expires}")
    return min(seconds, max_expiry_s)


async def presigned_get(
    client: Any,
    bucket: str,
    key: str,
    *,
    expires_s: int,
    filename: str | None,
) -> str:
    """A SigV4 presigned GET of ``bucket/key`` valid for ``expires_s`` seconds."""
    params: dict[str, str] = {"Bucket": bucket, "Key": key}
    if filename is not None:
        params["ResponseContentDisposition"] = content_disposition(filename)
    url: str = await client.generate_presigned_url(
        "get_object", Params=params, ExpiresIn=expires_s, HttpMethod="GET"
    )
    return url
