"""CORS for browser clients on other origins (``[server] cors_origins``): tus, Uppy, fetch.

Starlette's middleware answers preflights and marks responses; the headers tus and Uppy must
read from a response are exposed (a browser hides any other).
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from aecflow.config import ServerSettings

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: Response headers a page's script may read.
EXPOSED = [
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Expires",
    "Upload-Metadata",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Aecflow-File",
    "Aecflow-File-Id",
    "Access-Control-Allow-Headers",  # Uppy's request client reads it from its OPTIONS call
    "Retry-After",
    "Content-Disposition",
    "ETag",
]


def middleware(server: ServerSettings) -> list[Middleware]:
    """The CORS middleware, or none when no origin is configured."""
    if not server.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=server.cors_origins,
            allow_methods=METHODS,
            allow_headers=["*"],
            expose_headers=EXPOSED,
            max_age=server.cors_max_age_s,
        )
    ]
