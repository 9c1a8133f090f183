"""The HTTP API described as OpenAPI 3.1 (``/openapi.json``) and as a readable page (``/docs``).

The bodies' schemas are generated from the :mod:`aecflow.schemas` models; the operations are
a table in :mod:`aecflow.host.openapi_paths` (the handlers read raw requests, so nothing could
derive them from signatures), and ``tests/test_openapi.py`` runs schemathesis against a live
host to keep the two in step. ``/docs`` (:mod:`aecflow.host.docs_page`) is rendered from the
same dictionary.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from aecflow import schemas
from aecflow.host import docs_page
from aecflow.host.openapi_parts import header, with_head_and_body_limits
from aecflow.host.openapi_paths import operations

Schema = dict[str, Any]


def _version() -> str:
    try:
        return importlib.metadata.version("aecflow")
    except importlib.metadata.PackageNotFoundError:
        return "0"


@functools.cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aecflow",
            "version": _version(),
            "description": (
                "Ingest, store, process and announce building models and other large files.\n\n"
                "Every endpoint but `/health` needs `Authorization: Bearer <token>`. Roles: "
                "`reader` (list, get, download), `writer` (+ upload, upload sessions, delete, "
                "restore, reprocess), `admin` (+ purge, dead letters, audit, plugins). A token "
                "for some projects gets 404 for every other project's files.\n\n"
                'Errors are always `{"error": {"code": "snake_case", "message": "..."}}`; each '
                "response below lists the codes it can carry. Every response carries "
                "`X-Request-ID` (the client's, when it sends a sane one). Any authenticated "
                "operation may answer 401, 429 (too many failed authentications from the "
                "address), 503 with `Retry-After` (the database is unreachable) and 400 "
                "`invalid_character` (a NUL in the path or query). A path that matches no route "
                "is 404 `not_found`; a method the path does not have is 405 "
                "`method_not_allowed` with `Allow`. `HEAD` works wherever `GET` does."
            ),
            "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"},
        },
        "tags": [
            {"name": "files", "description": "Upload, find, read, delete and reprocess files."},
            {
                "name": "uploads",
                "description": "Resumable upload sessions for large files: open one, send the "
                "file in numbered parts (in parallel, again after a dropped connection), then "
                "complete it (see docs/uploads.md).",
            },
            {"name": "events", "description": "Events that could not be delivered."},
            {"name": "audit", "description": "Who did what."},
            {"name": "operations", "description": "Health, readiness and plugins."},
            {"name": "documentation", "description": "This description."},
            {"name": "web", "description": "The web page for people (docs/web.md)."},
        ],
        "security": [{"bearer": []}],
        "paths": with_head_and_body_limits(operations()),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`aecflow tokens create ...` prints one (`aecf_...`).",
                }
            },
            "headers": {
                "X-Request-ID": header(
                    "This request's id, also in the access log and the audit row.",
                    {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
                ),
                "Retry-After": header("Seconds to wait.", {"type": "integer", "minimum": 0}),
                "Location": header("Where the resource is.", {"type": "string"}),
            },
            "schemas": schemas.components(),
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())


async def openapi_json(request: Request) -> Response:
    return JSONResponse(_document())


async def docs(request: Request) -> Response:
    return HTMLResponse(_page())


@functools.cache
def _page() -> str:
    return docs_page.render(_document())
