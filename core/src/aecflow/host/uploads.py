"""``POST /v1/projects/{project}/files``: stream a request body into a new file.

The raw body (filename from ``?filename=`` or ``Content-Disposition``) or the first file part
of ``multipart/form-data`` goes from the socket to the storage backend chunk by chunk; the size
limit is enforced while streaming; an optional ``Content-SHA256`` (hex) or ``Digest: sha-256=``
(base64) is verified. User metadata comes from ``X-Aecflow-Meta-<key>`` headers (values may be
percent-encoded UTF-8), ``?meta.<key>=`` query parameters, or ``meta.<key>`` form fields.
"""

from __future__ import annotations

import base64
import binascii
import collections
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable

from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from aecflow import actor as actors
from aecflow import validation
from aecflow.access.audit import Operation
from aecflow.actor import Role
from aecflow.errors import AecflowError, InvalidInput, TooLarge
from aecflow.flow import Flow
from aecflow.host.errors import error_response
from aecflow.host.multipart import MultipartFile

log = logging.getLogger("aecflow.host")
META_HEADER = "x-aecflow-meta-"
NOT_A_FILE_TYPE = frozenset({b"", b"application/x-www-form-urlencoded"})


class UploadSlots:
    """A global cap on concurrent uploads (beyond it, 503 with Retry-After, not more memory)
    and a cap per token (beyond it, 429), so that one client cannot hold every slot."""

    def __init__(self, limit: int, per_token: int | None = None) -> None:
        self.limit = limit
        self.per_token = per_token or limit
        self.active = 0
        self.by_holder: collections.Counter[str] = collections.Counter()

    def try_acquire(self, holder: str | None = None) -> bool:
        return self.refusal(holder) is None

    def refusal(self, holder: str | None = None) -> Response | None:
        """Take a slot for ``holder`` (a token's actor id; ``None``: no per-token cap), or the
        response that says why not."""
        if self.active >= self.limit:
            return error_response(
                503,
                "too_many_uploads",
                f"{self.limit} uploads are already running; try again shortly",
                {"Retry-After": "2"},
            )
        if holder is not None and self.by_holder[holder] >= self.per_token:
            return error_response(
                429,
                "too_many_uploads_for_token",
                f"this token already sends {self.per_token} uploads at once; wait for one "
                "to finish",
                {"Retry-After": "2"},
            )
        self.active += 1
        if holder is not None:
            self.by_holder[holder] += 1
        return None

    def release(self, holder: str | None = None) -> None:
        self.active -= 1
        if holder is not None:
            self.by_holder[holder] -= 1
            if self.by_holder[holder] <= 0:
                del self.by_holder[holder]


_EXTENDED_FILENAME = re.compile(r"(?:^|;)\s*filename\*\s*=\s*([^;]+)", re.IGNORECASE)


def header_filename(value: str | None) -> str | None:
    """The filename of a ``Content-Disposition`` header (RFC 6266, ``filename*`` first)."""
    if not value:
        return None
    _, params = parse_options_header(value)
    # python-multipart drops a lone ``filename*=UTF-8''...`` (it reads the '' as a quoted
    # string), so the extended parameter is found here; RFC 6266 says it wins.
    found = _EXTENDED_FILENAME.search(value)
    extended = found.group(1).strip().encode("latin-1") if found else params.get(b"filename*")
    if extended:
        charset, _, rest = extended.decode("latin-1").partition("'")
        _, _, encoded = rest.partition("'")
        try:
            return urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError):
            raise InvalidInput(
                "Content-Disposition filename* is not decodable", code="invalid_filename"
            ) from None
    plain = params.get(b"filename")
    if not plain:
        return None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(
            "Content-Disposition filename is not UTF-8; send filename*=UTF-8''<percent-encoded>",
            code="invalid_filename",
        ) from None


def expected_sha256(request: Request) -> str | None:
    if value := request.headers.get("content-sha256"):
        return validation.sha256_hex(value)
    for item in request.headers.get("digest", "").split(","):
        algorithm, _, encoded = item.strip().partition("=")
        if algorithm.lower() == "sha-256":
            try:
                return base64.b64decode(encoded, validate=True).hex()
            except (binascii.Error, ValueError):
                raise InvalidInput(
                    "the Digest header's sha-256 is not base64", code="invalid_checksum"
                ) from None
    return None


def request_metadata(request: Request, fields: dict[str, str] | None = None) -> dict[str, str]:
    meta: dict[str, str] = {}
    for name, value in (fields or {}).items():
        if name.startswith("meta."):
            meta[name[5:]] = value
    for name, value in request.query_params.multi_items():
        if name.startswith("meta."):
            meta[name[5:]] = value
    for name, value in request.headers.items():
        if name.startswith(META_HEADER):
            meta[name[len(META_HEADER) :]] = urllib.parse.unquote(value)
    return meta


async def in_upload_slot(
    request: Request, receive: Callable[[], Awaitable[Response]], what: str
) -> Response:
    """Run ``receive`` (a request whose body streams into storage) within the global cap on
    concurrent uploads and the cap per token. Callers decide access before this, so a
    request that may not upload never holds a slot. A client that goes away mid-body is
    logged, not reported: nothing it sent was kept."""
    slots: UploadSlots = request.app.state.upload_slots
    who = actors.current().id
    holder = who if who.startswith("token:") else None
    refused = slots.refusal(holder)
    if refused is not None:
        return refused
    try:
        return await receive()
    except ClientDisconnect:
        log.info("client went away during %s; nothing was kept", what)
        return Response(status_code=400)  # never reaches the client
    finally:
        slots.release(holder)


async def admit_writer(flow: Flow, project: str) -> None:
    """Refuse (and audit) an upload the actor may not make before any of its body is read:
    the multipart preamble would otherwise be read first, holding a slot for as long as a
    slow client liked."""
    who = actors.current()
    try:
        who.require_project(project)
        who.require(Role.WRITER, "uploading")
    except AecflowError as exc:
        op = Operation(flow.audit, "file.upload", False, project=project)
        await flow.audit.record(op.row("denied", exc.code))
        raise


async def upload(request: Request) -> Response:
    flow = request.app.state.flow
    project = validation.project_name(request.path_params["project"])
    await admit_writer(flow, project)
    return await in_upload_slot(
        request, lambda: _receive(request, flow, project), f"an upload to {project}"
    )


async def _receive(request: Request, flow: Flow, project: str) -> Response:
    length = request.headers.get("content-length")
    max_size = flow.settings.uploads.max_size
    if length and length.isdigit() and int(length) > max_size:
        raise TooLarge(f"the body of {length} bytes is larger than the limit of {max_size} bytes")
    media_type, params = parse_options_header(request.headers.get("content-type", ""))
    sha256 = expected_sha256(request)
    if media_type == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary or len(boundary) > 70:  # RFC 2046: 1 to 70 characters
            raise InvalidInput(
                "multipart/form-data needs a boundary of 1 to 70 characters",
                code="invalid_multipart",
            )
        form = MultipartFile(aiter(request.stream()), boundary)
        await form.start()
        filename = request.query_params.get("filename") or form.filename
        content_type, chunks = form.content_type, form.chunks()
        metadata = request_metadata(request, form.fields)
        size = None  # the body's length includes the multipart framing
    else:
        filename = request.query_params.get("filename") or header_filename(
            request.headers.get("content-disposition")
        )
        # curl --data-binary labels any body as a form; that says nothing about the file
        content_type = None if media_type in NOT_A_FILE_TYPE else media_type.decode("latin-1")
        chunks = request.stream()
        metadata = request_metadata(request)
        size = int(length) if length and length.isdigit() else None
    if not filename:
        raise InvalidInput(
            "a filename is required: ?filename=, Content-Disposition, or the file part's filename",
            code="invalid_filename",
        )
    record = await flow.ingest(
        project,
        filename,
        chunks,
        content_type=content_type,
        metadata=metadata,
        size=size,
        sha256=sha256,
    )
    return JSONResponse(record.as_dict(), 201, headers={"Location": f"/v1/files/{record.id}"})
