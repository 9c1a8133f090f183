"""The operations of the web page (``/``, ``/web/{name}``) and ``GET /v1/me``."""

from __future__ import annotations

from aecflow.host.openapi_parts import (
    REQUEST_ID,
    Schema,
    error,
    errors,
    header,
    ok,
    path_param,
    ref,
)
from aecflow.host.webpage import ASSETS

CSP = header(
    "Scripts, styles and connections from this origin only (plus `[web] connect_src`).",
    {"type": "string"},
)


def _page(description: str, media_types: tuple[str, ...], **headers: Schema) -> Schema:
    response: Schema = {
        "description": description,
        "headers": {
            "X-Request-ID": REQUEST_ID,
            "ETag": header("The asset's digest.", {"type": "string"}),
            **{name.replace("_", "-"): h for name, h in headers.items()},
        },
        "content": {media_type: {"schema": {"type": "string"}} for media_type in media_types},
    }
    return response


def web_operations() -> dict[str, dict[str, Schema]]:
    return {
        "/": {
            "get": {
                "tags": ["web"],
                "operationId": "webPage",
                "summary": "The web page",
                "description": "Sign in with a token, upload, browse, look at a model's "
                "summary (see docs/web.md). The page holds no data, so it needs no token; it "
                "sends the person's token with every call it makes.",
                "security": [],
                "responses": {
                    "200": _page("The page.", ("text/html",), Content_Security_Policy=CSP),
                    "304": ok("Not modified (`If-None-Match`)."),
                },
            }
        },
        "/web/{name}": {
            "get": {
                "tags": ["web"],
                "operationId": "webAsset",
                "summary": "A script or style sheet of the web page",
                "security": [],
                "parameters": [
                    path_param("name", {"type": "string"}, "One of " + ", ".join(ASSETS) + ".")
                ],
                "responses": {
                    "200": _page("The asset.", ("text/javascript", "text/css")),
                    "304": ok("Not modified (`If-None-Match`)."),
                    "404": error("No such asset.", ["not_found"]),
                },
            }
        },
        "/v1/me": {
            "get": {
                "tags": ["operations"],
                "operationId": "whoAmI",
                "summary": "Who am I",
                "description": "The token's name, role and projects. Any role.",
                "responses": {"200": ok("The token.", ref("Me")), **errors()},
            }
        },
    }
