"""The endpoints Uppy's AwsS3 plugin calls (``endpoint: "https://host/v1/uppy"``), over direct
upload sessions: the browser sends the parts straight to S3 with URLs the host presigns.

``POST s3/multipart`` opens a session (``metadata.project`` names the project; ``metadata``'s
other keys become user metadata), ``GET s3/multipart/{uploadId}/{partNumber}`` presigns a
part, ``GET s3/multipart/{uploadId}`` lists the parts S3 holds, ``POST
s3/multipart/{uploadId}/complete`` publishes the file (as completing any session does) and
``DELETE s3/multipart/{uploadId}`` aborts. Uppy's ``uploadId`` is the session's id; its ``key``
is echoed back and never trusted. Uppy's request client first sends ``OPTIONS`` to learn
which headers it may send: the answer names ``Authorization``, so the token goes along.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aecflow.errors import Conflict, InvalidInput
from aecflow.host.auth import Endpoint, authenticated
from aecflow.host.sessions import _json_body, _part_number
from aecflow.uploads.service import UploadSessions
from aecflow.uploads.tus import file_fields
from aecflow.uploads.unsized import complete_unsized, open_unsized

BASE = "/v1/uppy/s3/multipart"
ALLOWED_HEADERS = "accept, authorization, content-type, uppy-auth-token"


def _sessions(request: Request) -> UploadSessions:
    return request.app.state.flow.uploads


async def preflight(request: Request) -> Response:
    """What Uppy's request client asks before its first call (not the browser's preflight)."""
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
        },
    )


async def create(request: Request) -> Response:
    body = await _json_body(request)
    raw = body.get("metadata") or {}
    if not isinstance(raw, dict):
        raise InvalidInput("metadata must be an object", code="invalid_metadata")
    fields = file_fields({str(k): None if v is None else str(v) for k, v in raw.items()})
    filename = body.get("filename") or fields.filename
    if not isinstance(filename, str) or not filename:
        raise InvalidInput("a filename is required", code="invalid_filename")
    if not fields.project:
        raise InvalidInput(
            "metadata.project must name the project (uppy.setMeta({project: ...}))",
            code="project_required",
        )
    content_type = body.get("type") or fields.content_type
    view = await open_unsized(
        _sessions(request),
        fields.project,
        filename,
        content_type=content_type if isinstance(content_type, str) else None,
        metadata=fields.metadata,
        sha256=fields.sha256,
    )
    return JSONResponse({"uploadId": view["id"], "key": view["id"]})


async def sign_part(request: Request) -> Response:
    sessions = _sessions(request)
    number = _part_number(request.path_params["number"])
    row = await sessions.session_row(request.path_params["upload_id"])
    sessions.require_open(row)
    if row.transport != "direct":
        raise Conflict("this session's parts go through the host", code="host_upload")
    if not 1 <= number <= row.part_count:
        raise InvalidInput(
            f"part number must be between 1 and {row.part_count}", code="invalid_part_number"
        )
    expires = row.expires_at - sessions.runtime.clock()
    storage = sessions.runtime.storage
    target = await storage.part_url(row.storage_key, row.storage_upload_id, number, expires=expires)
    if target is None:
        raise Conflict("the storage backend presigns no parts", code="host_upload")
    return JSONResponse(
        {
            "url": target.url,
            "method": target.method,
            "headers": dict(target.headers),
            "expires": int(expires.total_seconds()),
        }
    )


async def list_parts(request: Request) -> Response:
    sessions = _sessions(request)
    row = await sessions.session_row(request.path_params["upload_id"])
    sessions.require_open(row)
    storage = sessions.runtime.storage
    held = await storage.list_parts(row.storage_key, row.storage_upload_id)
    parts: list[dict[str, Any]] = [
        {"PartNumber": part.number, "Size": part.size, "ETag": _quoted(part.etag)} for part in held
    ]
    return JSONResponse(parts)


def _quoted(etag: str | None) -> str | None:
    """An ETag as S3 sends it in a response header (quoted), which is what Uppy holds."""
    if etag is None or etag.startswith('"'):
        return etag
    return f'"{etag}"'


async def complete(request: Request) -> Response:
    record, created = await complete_unsized(_sessions(request), request.path_params["upload_id"])
    return JSONResponse(
        {"location": f"/v1/files/{record.id}", "file": record.as_dict()},
        201 if created else 200,
        headers={"Location": f"/v1/files/{record.id}"},
    )


async def abort(request: Request) -> Response:
    await _sessions(request).abort(request.path_params["upload_id"])
    return JSONResponse({})


def _dispatch(**endpoints: Endpoint) -> Endpoint:
    async def dispatch(request: Request) -> Response:
        return await endpoints[request.method](request)

    return dispatch


#: ``(path, endpoint, methods)`` for the host's routes.
ROUTES = [
    (BASE, _dispatch(OPTIONS=preflight, POST=authenticated(create)), ["OPTIONS", "POST"]),
    (
        BASE + "/{upload_id}/complete",
        _dispatch(OPTIONS=preflight, POST=authenticated(complete)),
        ["OPTIONS", "POST"],
    ),
    (
        BASE + "/{upload_id}/{number}",
        _dispatch(OPTIONS=preflight, GET=authenticated(sign_part)),
        ["OPTIONS", "GET"],
    ),
    (
        BASE + "/{upload_id}",
        _dispatch(OPTIONS=preflight, GET=authenticated(list_parts), DELETE=authenticated(abort)),
        ["OPTIONS", "GET", "DELETE"],
    ),
]
