"""Resumable upload sessions over HTTP (see docs/uploads.md for the protocol).

The routes are thin: :class:`~aecflow.uploads.service.UploadSessions` does the work. What lives here
is HTTP's part: parsing the JSON body, pointing host-transport parts at this host's own URL,
and streaming a part's body through the same concurrency cap as streamed uploads.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aecflow.errors import InvalidInput
from aecflow.host.uploads import expected_sha256, in_upload_slot
from aecflow.uploads.service import UploadSessions

#: A session request lists at most 10,000 part checksums (about 700 KB of JSON).
MAX_JSON_BODY = 2 * 1024 * 1024
OPEN_FIELDS = frozenset(
    {"filename", "size", "sha256", "part_size", "part_sha256", "content_type", "metadata"}
)


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


def _typed(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInput(f"{name!r} has the wrong type", code=f"invalid_{name}")
    return value


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
    data = await _json_body(request)
    unknown = sorted(set(data) - OPEN_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(unknown)}", code="invalid_json")
    filename = _typed(data, "filename", str)
    if not filename:
        raise InvalidInput("a filename is required", code="invalid_filename")
    size = _typed(data, "size", int)
    if size is None:
        raise InvalidInput("size (in bytes) is required", code="invalid_size")
    view = await _sessions(request).open(
        request.path_params["project"],
        filename,
        size,
        sha256=_typed(data, "sha256", str),
        part_size=_typed(data, "part_size", int),
        part_sha256=_typed(data, "part_sha256", list),
        content_type=_typed(data, "content_type", str),
        metadata=_typed(data, "metadata", dict),
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
