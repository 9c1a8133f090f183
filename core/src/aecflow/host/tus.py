"""tus 1.0 at ``/v1/tus/`` (see docs/clients.md): the core protocol and the creation,
creation-with-upload, termination, checksum and expiration extensions, over upload sessions.

Each tus upload is a host session (:mod:`aecflow.uploads.tus` turns offsets into parts), so it
is audited, counted against the session quotas, expired and swept like any other, and its
completion publishes the file exactly as ``POST /v1/uploads/{id}/complete`` does. The token
comes from ``Authorization: Bearer``; the project, filename, type and user metadata from
``Upload-Metadata``. Every response carries ``Tus-Resumable``; errors keep aecflow's JSON body.
"""

from __future__ import annotations

import email.utils
import functools
import re

from starlette.requests import Request
from starlette.responses import Response

from aecflow.errors import AecflowError, InvalidInput, NotFound
from aecflow.host.auth import Endpoint, authenticated
from aecflow.host.errors import aecflow_error, error_response
from aecflow.host.uploads import in_upload_slot
from aecflow.store.records import FileRecord
from aecflow.store.statuses import UploadStatus
from aecflow.store.uploads import UploadRow
from aecflow.uploads.tus import OffsetUploads, file_fields, parse_checksum, parse_tus_metadata

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
OCTETS = "application/offset+octet-stream"
_NUMBER = re.compile(r"[0-9]{1,19}")


def _tus(request: Request) -> OffsetUploads:
    return OffsetUploads(request.app.state.flow.uploads)


def _base(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/") + "/v1/tus/"


def _number(request: Request, name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    if not _NUMBER.fullmatch(raw.strip()):
        raise InvalidInput(f"{name} must be a number of bytes", code="invalid_header")
    return int(raw)


def tus_endpoint(endpoint: Endpoint, *, check_version: bool = True) -> Endpoint:
    """``Tus-Resumable`` on every response (errors included), 412 for another version."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        version = request.headers.get("tus-resumable")
        if check_version and request.method != "OPTIONS" and version != VERSION:
            response: Response = error_response(
                412,
                "unsupported_tus_version",
                f"this server speaks tus {VERSION}; send Tus-Resumable: {VERSION}",
                {"Tus-Version": VERSION},
            )
        else:
            try:
                response = await endpoint(request)
            except AecflowError as exc:
                response = await aecflow_error(request, _tus_error(exc))
        response.headers["Tus-Resumable"] = VERSION
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return wrapper


def _tus_error(exc: AecflowError) -> AecflowError:
    """A terminated upload is gone for tus clients (404), not a conflict."""
    if exc.code == "upload_aborted":
        return NotFound(exc.message, code="upload_not_found")
    return exc


def _headers(row: UploadRow, offset: int, record: FileRecord | None = None) -> dict[str, str]:
    headers = {
        "Upload-Offset": str(offset),
        "Upload-Length": str(row.size),
        "Upload-Expires": email.utils.format_datetime(row.expires_at, usegmt=True),
    }
    file_id = record.id if record is not None else row.file_id if offset == row.size else None
    if file_id:
        headers["Aecflow-File-Id"] = file_id
        headers["Aecflow-File"] = f"/v1/files/{file_id}"
    return headers


async def options(request: Request) -> Response:
    settings = request.app.state.flow.settings
    return Response(
        status_code=204,
        headers={
            "Tus-Version": VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(settings.uploads.max_size),
            "Tus-Checksum-Algorithm": "sha256,sha1",
        },
    )


class LengthRequired(AecflowError):
    code = "length_required"
    http_status = 411
    exit_code = 2


class NoHostParts(AecflowError):
    """tus needs a backend that takes parts through the host (S3 parts go straight to S3)."""

    code = "tus_unsupported_storage"
    http_status = 501
    exit_code = 4


class UnsupportedMediaType(AecflowError):
    code = "unsupported_media_type"
    http_status = 415
    exit_code = 2


async def create(request: Request) -> Response:
    if request.headers.get("upload-defer-length") is not None:
        raise InvalidInput("Upload-Defer-Length is not supported", code="defer_length_unsupported")
    length = _number(request, "upload-length")
    if length is None:
        raise InvalidInput("Upload-Length is required", code="invalid_size")
    fields = file_fields(parse_tus_metadata(request.headers.get("upload-metadata")))
    if not fields.project:
        raise InvalidInput(
            "Upload-Metadata must name the project (key 'project')", code="project_required"
        )
    if not fields.filename:
        raise InvalidInput(
            "Upload-Metadata must name the file (key 'filename')", code="invalid_filename"
        )
    body_length = _number(request, "content-length") or 0
    if body_length:  # creation-with-upload: refuse a wrong body before opening anything
        _require_octets(request)
    checksum = parse_checksum(request.headers.get("upload-checksum"))
    tus = _tus(request)
    if tus.runtime.storage.direct_upload:
        raise NoHostParts(
            f"storage backend {tus.runtime.storage.name!r} takes parts straight from clients, "
            "not through the host: use Uppy's AwsS3 plugin (/v1/uppy) or upload sessions"
        )
    view = await tus.sessions.open(
        fields.project,
        fields.filename,
        length,
        sha256=fields.sha256,
        content_type=fields.content_type,
        metadata=fields.metadata,
        transport="host",
    )
    upload_id = view["id"]
    location = {"Location": _base(request) + upload_id}
    if not body_length:
        row = await tus.row(upload_id)
        return Response(status_code=201, headers={**location, **_headers(row, 0)})
    return await _append(request, tus, upload_id, 0, body_length, 201, location, checksum)


def _require_octets(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != OCTETS:
        raise UnsupportedMediaType(f"send the bytes with Content-Type: {OCTETS}")


async def _append(
    request: Request,
    tus: OffsetUploads,
    upload_id: str,
    offset: int,
    length: int,
    status: int,
    extra: dict[str, str],
    checksum: tuple[str, bytes] | None,
) -> Response:
    """Stream the body at ``offset`` within an upload slot; the response tus expects."""

    async def receive() -> Response:
        try:
            new_offset, record = await tus.append(
                upload_id, offset, length, request.stream(), checksum=checksum
            )
        except AecflowError as exc:  # the offset a client resumes from goes with the error
            response = await aecflow_error(request, _tus_error(exc))
            try:
                row = await tus.row(upload_id)
                response.headers.update(_headers(row, (await tus.progress(row)).offset))
            except AecflowError:
                pass
            response.headers.update(extra)
            return response
        row = await tus.row(upload_id)
        return Response(status_code=status, headers={**extra, **_headers(row, new_offset, record)})

    return await in_upload_slot(request, receive, "a tus upload")


async def head(request: Request) -> Response:
    tus = _tus(request)
    row = await tus.row(request.path_params["upload_id"])
    if row.status != UploadStatus.COMPLETED:
        tus.sessions.require_open(row)
    record = await tus.finish(row)
    row = await tus.row(row.id)
    return Response(
        status_code=200, headers=_headers(row, (await tus.progress(row)).offset, record)
    )


async def patch(request: Request) -> Response:
    _require_octets(request)
    upload_id = request.path_params["upload_id"]
    offset = _number(request, "upload-offset")
    if offset is None:
        raise InvalidInput("Upload-Offset is required", code="invalid_offset")
    length = _number(request, "content-length")
    if length is None:
        raise LengthRequired("send the body with a Content-Length")
    checksum = parse_checksum(request.headers.get("upload-checksum"))
    tus = _tus(request)
    await tus.sessions.admit_part(upload_id)
    return await _append(request, tus, upload_id, offset, length, 204, {}, checksum)


async def overridden(request: Request) -> Response:
    """``POST`` with ``X-HTTP-Method-Override`` (tus-js-client's ``overridePatchMethod``)."""
    override = request.headers.get("x-http-method-override", "").upper()
    if override not in ("PATCH", "DELETE", "HEAD"):
        raise MethodNotAllowed("POST creates uploads at /v1/tus/")
    return await {"PATCH": patch, "DELETE": terminate, "HEAD": head}[override](request)


class MethodNotAllowed(AecflowError):
    code = "method_not_allowed"
    http_status = 405
    exit_code = 2


async def terminate(request: Request) -> Response:
    await _tus(request).sessions.abort(request.path_params["upload_id"])
    return Response(status_code=204)


def _dispatch(**endpoints: Endpoint) -> Endpoint:
    async def dispatch(request: Request) -> Response:
        return await endpoints[request.method](request)

    return dispatch


#: ``(path, endpoint, methods)`` for the host's routes.
ROUTES = [
    (
        "/v1/tus/",
        _dispatch(OPTIONS=tus_endpoint(options), POST=tus_endpoint(authenticated(create))),
        ["OPTIONS", "POST"],
    ),
    (
        "/v1/tus/{upload_id}",
        _dispatch(
            OPTIONS=tus_endpoint(options),
            HEAD=tus_endpoint(authenticated(head)),
            PATCH=tus_endpoint(authenticated(patch)),
            DELETE=tus_endpoint(authenticated(terminate)),
            POST=tus_endpoint(authenticated(overridden)),
        ),
        ["OPTIONS", "HEAD", "PATCH", "DELETE", "POST"],
    ),
]
