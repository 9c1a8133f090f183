"""The web page for people: ``/`` and its assets under ``/web/``, and ``GET /v1/me``.

The page (``host/web/``: ``index.html``, ``app.js``, ``app.css`` and ``uppy.js``, the vendored
Uppy bundle that ``make web`` builds from ``web/``) ships inside the package and is served from
memory; nothing is fetched from elsewhere at run time. The page itself needs no token (it holds
no data); every call it makes sends the token the person signed in with, kept in
``sessionStorage``. Its Content-Security-Policy allows scripts, styles and connections to the
host's own origin only, plus ``[web] connect_src`` (e.g. an S3 endpoint for direct uploads).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aecflow import actor as actors
from aecflow import schemas
from aecflow.config import Settings
from aecflow.host.errors import error_response

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: What ``/web/{name}`` serves (``index.html`` is ``/``).
ASSETS = ("app.js", "app.css", "uppy.js")


@functools.cache
def asset(name: str) -> tuple[bytes, str]:
    """An asset's bytes and its ETag (read once per process)."""
    data = importlib.resources.files("aecflow.host").joinpath("web", name).read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def content_security_policy(settings: Settings) -> str:
    connect = " ".join(["'self'", *settings.web.connect_src])
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _serve(request: Request, name: str) -> Response:
    data, etag = asset(name)
    headers = {
        "ETag": etag,
        # Revalidate every time: an upgraded host serves its own page, never a cached old one.
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if name.endswith(".html"):
        headers["Content-Security-Policy"] = content_security_policy(
            request.app.state.flow.settings
        )
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Frame-Options"] = "DENY"
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    media_type = MEDIA_TYPES[name[name.rindex(".") :]]
    return Response(data, headers=headers, media_type=media_type)


async def index(request: Request) -> Response:
    return _serve(request, "index.html")


async def web_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return error_response(404, "not_found", f"no asset {name!r}")
    return _serve(request, name)


async def me(request: Request) -> Response:
    """Who the token is: its name, role and projects."""
    who = actors.current()
    mode = request.app.state.flow.settings.auth.mode
    body = schemas.Me(
        actor=who.id,
        token_name=who.extra.get("token_name"),
        role="admin" if who.role is None else who.role.name.lower(),
        projects=["*"] if who.projects is None else sorted(who.projects),
        auth_mode=mode,
    )
    return JSONResponse(body.model_dump(mode="json"))
