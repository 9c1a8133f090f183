"""The files API: list, get, download, delete, restore, purge and reprocess."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from aecflow.errors import InvalidInput
from aecflow.files.pipeline import artifact_dict
from aecflow.flow import Flow
from aecflow.host.content import stream_object
from aecflow.host.ops import parse_time
from aecflow.store import records
from aecflow.store.files import FileQuery
from aecflow.store.records import FileRecord, Page

MAX_URL_EXPIRY = dt.timedelta(days=7)


def _flow(request: Request) -> Flow:
    return request.app.state.flow


def _time(request: Request, name: str) -> dt.datetime | None:
    value = request.query_params.get(name)
    return parse_time(value, name) if value else None


def _int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        if value.isascii() and value.isdigit():  # str.isdigit() alone also takes "²"
            return int(value)
    except ValueError:  # more digits than int() converts
        pass
    raise InvalidInput(f"{name} must be a whole number", code="invalid_query")


async def list_files(request: Request) -> Response:
    params = request.query_params
    metadata = {k[5:]: v for k, v in params.multi_items() if k.startswith("meta.")}
    query = FileQuery(
        project=request.path_params["project"],
        status=params.get("status"),
        filename_contains=params.get("filename"),
        metadata=metadata,
        created_after=_time(request, "created_after"),
        created_before=_time(request, "created_before"),
        deleted=params.get("deleted", "exclude"),
        limit=_int(request, "limit", 50),
        cursor=params.get("cursor"),
    )
    return _json(await _flow(request).list(query))


async def get_file(request: Request) -> Response:
    return _json(await _flow(request).get(request.path_params["file_id"]))


async def download(request: Request) -> Response:
    """Redirect to the storage's own expiring URL, or to ``/content`` where it has none."""
    seconds = _int(request, "expires", 900)
    if not 1 <= seconds <= MAX_URL_EXPIRY.total_seconds():  # before timedelta() can overflow
        raise InvalidInput("expires must be between 1 second and 7 days", code="invalid_query")
    expires = dt.timedelta(seconds=seconds)
    file_id = request.path_params["file_id"]
    url = await _flow(request).download_url(file_id, expires, host_relative=True)
    return RedirectResponse(url or f"/v1/files/{file_id}/content", status_code=307)


async def content(request: Request) -> Response:
    flow = _flow(request)
    file_id = request.path_params["file_id"]
    async with flow.audit.operation(
        "file.download", read_only=True, file_id=file_id, details={"via": "content"}
    ) as op:
        record = await flow.readable(file_id)
        response = stream_object(
            request,
            flow.storage,
            record.storage_key,
            size=record.size,
            filename=record.filename,
            content_type=record.content_type,
            etag=record.sha256,
        )
        op.note(
            project=record.project,
            storage_key=record.storage_key,
            bytes_out=int(response.headers.get("content-length", 0)),
        )
    return response


async def delete_file(request: Request) -> Response:
    flow = _flow(request)
    file_id = request.path_params["file_id"]
    purge = request.query_params.get("purge", "false").lower()
    if purge not in ("true", "false", "1", "0"):
        raise InvalidInput("purge must be true or false", code="invalid_query")
    record = await (flow.purge(file_id) if purge in ("true", "1") else flow.delete(file_id))
    return _json(record)


async def restore_file(request: Request) -> Response:
    return _json(await _flow(request).restore(request.path_params["file_id"]))


async def reprocess_file(request: Request) -> Response:
    """``?step=NAME`` reruns one step; the body, if any, is never read."""
    step = request.query_params.get("step") or None
    record = await _flow(request).reprocess(request.path_params["file_id"], step)
    return _json(record, 202)


async def list_artifacts(request: Request) -> Response:
    rows = await _flow(request).artifacts(request.path_params["file_id"])
    return JSONResponse({"items": [artifact_dict(row) for row in rows]})


async def artifact_content(request: Request) -> Response:
    flow = _flow(request)
    file_id, name = request.path_params["file_id"], request.path_params["name"]
    row = await flow.artifact(file_id, name)
    return stream_object(
        request,
        flow.storage,
        row.storage_key,
        size=row.size,
        filename=row.name,
        content_type=row.media_type,
        etag=row.sha256,
    )


async def artifact_download(request: Request) -> Response:
    """Redirect to the storage's own expiring URL (S3), or to ``/content``."""
    seconds = _int(request, "expires", 900)
    if not 1 <= seconds <= MAX_URL_EXPIRY.total_seconds():
        raise InvalidInput("expires must be between 1 second and 7 days", code="invalid_query")
    file_id, name = request.path_params["file_id"], request.path_params["name"]
    url = await _flow(request).pipelines.artifact_url(file_id, name, dt.timedelta(seconds=seconds))
    target = url or f"/v1/files/{file_id}/artifacts/{quote(name)}/content"
    return RedirectResponse(target, status_code=307)


async def pipeline_endpoint(request: Request) -> Response:
    """``GET`` (readers), ``PUT`` and ``DELETE`` (admins: checked before the body is read)."""
    pipelines = _flow(request).pipelines
    project = request.path_params["project"]
    if request.method in ("GET", "HEAD"):
        return JSONResponse(await pipelines.get(project))
    pipelines.require_admin(project)
    if request.method == "DELETE":
        return JSONResponse(await pipelines.delete(project))
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise InvalidInput(
            'the body must be JSON: {"pipeline": ["name", ...]}', code="invalid_json"
        ) from None
    if not isinstance(body, dict) or set(body) != {"pipeline"}:
        raise InvalidInput('the body must be {"pipeline": ["name", ...]}', code="invalid_pipeline")
    return JSONResponse(await pipelines.put(project, body["pipeline"]))


def _json(item: FileRecord | Page, status: int = 200) -> Response:
    """A record or page as JSON, encoded by its model (no intermediate dict)."""
    return Response(records.as_json(item), status, media_type="application/json")
