"""Resumable upload sessions over HTTP (see docs/uploads.md for the protocol).

The routes are thin: :class:`~aecflow.uploads.service.UploadSessions` does the work. What lives here
is HTTP's part: parsing the JSON body, pointing host-transport parts at this host's own URL,
and streaming a part's body through the same concurrency cap as streamed uploads.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aecflow.errors import InvalidInput
from aecflow.host.uploads import expected_sha256, in_upload_slot
from aecflow.schemas import NewUploadSession
from aecflow.uploads.service import UploadSessions

#: A session request lists at most 10,000 part checksums (about 700 KB of JSON).
MAX_JSON_BODY = 2 * 1024 * 1024
#: What a missing (or ``null``) required field is answered with.
REQUIRED = {
    "filename": ("a filename is required", "invalid_filename"),
    "size": ("size (in bytes) is required", "invalid_size"),
}


def _sessions(request: Request) -> UploadSessions:
    return request.app.state.flow.uploads


async def _json_body(request: Request) -> dict[str, Any]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BODY:
            raise InvalidInput(
                f"the request body is larger than {MAX_JSON_BODY} bytes", code="invalid_json"
            )
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the request body is not valid JSON", code="invalid_json") from None
    except RecursionError:  # [[[[... 100,000 deep fits in MAX_JSON_BODY
        raise InvalidInput("the request body is nested too deeply", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object", code="invalid_json")
    return data


def _open_request(data: dict[str, Any]) -> NewUploadSession:
    """The body as the model; its first problem as the 400 the API has always given."""
    try:
        request = NewUploadSession.model_validate(data)
    except ValidationError as exc:
        raise _refusal(exc, data) from None
    if not request.filename:
        raise _required("filename")
    return request


def _refusal(exc: ValidationError, data: dict[str, Any]) -> InvalidInput:
    errors = exc.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return InvalidInput(f"unknown fields: {', '.join(unknown)}", code="invalid_json")
    name = str(errors[0]["loc"][0])  # errors come in field order: filename, size, ...
    if name != "filename" and data.get("filename") == "":
        return _required("filename")
    if data.get(name) is None and name in REQUIRED:
        return _required(name)
    return InvalidInput(f"{name!r} has the wrong type", code=f"invalid_{name}")


def _required(name: str) -> InvalidInput:
    message, code = REQUIRED[name]
    return InvalidInput(message, code=code)


def _with_part_urls(request: Request, view: dict[str, Any]) -> dict[str, Any]:
    """Point the missing parts of host sessions at this host's part endpoint.

    The URL is a path (with the app's mount point), resolved by the client against the URL
    it reached the host with: behind a proxy, the host's own idea of its origin may differ.
    """
    if view["transport"] == "host" and view["status"] == "open":
        base = request.scope.get("root_path", "").rstrip("/")
        for part in view.get("parts", ()):
            if not part["received"]:
                part.update(
                    method="PUT",
                    url=f"{base}/v1/uploads/{view['id']}/parts/{part['number']}",
                    headers={},
                )
    return view


async def open_session(request: Request) -> Response:
    body = _open_request(await _json_body(request))
    view = await _sessions(request).open(
        request.path_params["project"], body.filename, body.size, **body.arguments()
    )
    return JSONResponse(
        _with_part_urls(request, view), 201, headers={"Location": f"/v1/uploads/{view['id']}"}
    )


async def list_sessions(request: Request) -> Response:
    params = request.query_params
    size = params.get("size")
    if size is not None and not re.fullmatch(r"[0-9]{1,15}", size):
        raise InvalidInput("size must be a number of bytes", code="invalid_size")
    found = await _sessions(request).find(
        request.path_params["project"],
        sha256=params.get("sha256") or None,
        filename=params.get("filename") or None,
        size=int(size) if size is not None else None,
    )
    return JSONResponse({"items": found})


async def get_session(request: Request) -> Response:
    view = await _sessions(request).describe(request.path_params["upload_id"])
    return JSONResponse(_with_part_urls(request, view))


async def abort_session(request: Request) -> Response:
    await _sessions(request).abort(request.path_params["upload_id"])
    return Response(status_code=204)


async def complete_session(request: Request) -> Response:
    record, created = await _sessions(request).complete(request.path_params["upload_id"])
    return JSONResponse(
        record.as_dict(), 201 if created else 200, headers={"Location": f"/v1/files/{record.id}"}
    )


def _part_number(raw: str) -> int:
    """The path's part number; Starlette's ``int`` convertor raises a 500 past 4,300 digits."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise InvalidInput(
            f"part number {raw[:20]!r} is not a number from 1 to 10000", code="invalid_part_number"
        )
    return int(raw)


async def put_part(request: Request) -> Response:
    number = _part_number(request.path_params["number"])
    await _sessions(request).admit_part(request.path_params["upload_id"])

    async def receive() -> Response:
        receipt = await _sessions(request).receive_part(
            request.path_params["upload_id"],
            number,
            request.stream(),
            sha256=expected_sha256(request),
        )
        return JSONResponse(receipt)

    return await in_upload_slot(request, receive, f"part {number} of an upload session")
