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
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable

from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from aecflow import validation
from aecflow.errors import InvalidInput, TooLarge
from aecflow.host.errors import error_response
from aecflow.host.multipart import MultipartFile, utf8

log = logging.getLogger("aecflow.host")
META_HEADER = "x-aecflow-meta-"
NOT_A_FILE_TYPE = frozenset({b"", b"application/x-www-form-urlencoded"})
_FILENAME_STAR = re.compile(r";\s*filename\*\s*=\s*([^;]*)", re.IGNORECASE)


class UploadSlots:
    """A global cap on concurrent uploads: beyond it, 503 with Retry-After, not more memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_acquire(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1


def header_filename(value: str | None) -> str | None:
    """The filename of a ``Content-Disposition`` header (RFC 6266: ``filename*`` wins).

    python-multipart drops extended (``key*=``) parameters, which RFC 7578 forbids in form
    parts but RFC 6266 defines for this header, so ``filename*`` is found here. Bytes that are
    not UTF-8 are refused rather than stored as U+FFFD.
    """
    if not value:
        return None
    extended = _FILENAME_STAR.search(value)
    if extended:
        charset, _, rest = extended.group(1).strip().strip('"').partition("'")
        _, _, encoded = rest.partition("'")
        try:
            return urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError):
            raise InvalidInput(
                "Content-Disposition filename* is not decodable", code="invalid_filename"
            ) from None
    _, params = parse_options_header(value)
    plain = params.get(b"filename")
    return utf8(plain, "Content-Disposition filename", "invalid_filename") if plain else None


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


def refuse_undecodable_query(request: Request) -> None:
    """Starlette decodes the query string with U+FFFD for bytes that are not UTF-8; a filename
    or metadata value sent that way is refused instead of stored altered."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    for name, value in urllib.parse.parse_qsl(
        raw, keep_blank_values=True, errors="surrogateescape"
    ):
        if validation.has_surrogate(value):
            if name == "filename":
                raise InvalidInput(
                    "?filename= is not percent-encoded UTF-8", code="invalid_filename"
                )
            if name.startswith("meta."):
                raise InvalidInput(
                    f"?{name}= is not percent-encoded UTF-8", code="invalid_metadata"
                )


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
            try:
                meta[name[len(META_HEADER) :]] = urllib.parse.unquote(value, errors="strict")
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"header {name} is not percent-encoded UTF-8", code="invalid_metadata"
                ) from None
    return meta


async def in_upload_slot(
    request: Request, receive: Callable[[], Awaitable[Response]], what: str
) -> Response:
    """Run ``receive`` (a request whose body streams into storage) within the global cap on
    concurrent uploads: 503 with Retry-After beyond it. A client that goes away mid-body is
    logged, not reported: nothing it sent was kept."""
    slots: UploadSlots = request.app.state.upload_slots
    if not slots.try_acquire():
        return error_response(
            503,
            "too_many_uploads",
            f"{slots.limit} uploads are already running; try again shortly",
            {"Retry-After": "2"},
        )
    try:
        return await receive()
    except ClientDisconnect:
        log.info("client went away during %s; nothing was kept", what)
        return Response(status_code=400)  # never reaches the client
    finally:
        slots.release()


async def upload(request: Request) -> Response:
    flow = request.app.state.flow
    project = validation.project_name(request.path_params["project"])
    return await in_upload_slot(
        request, lambda: _receive(request, flow, project), f"an upload to {project}"
    )


async def _receive(request: Request, flow, project: str) -> Response:
    refuse_undecodable_query(request)
    length = request.headers.get("content-length")
    max_size = flow.settings.uploads.max_size
    if length and length.isdigit() and int(length) > max_size:
        raise TooLarge(f"the body of {length} bytes is larger than the limit of {max_size} bytes")
    media_type, params = parse_options_header(request.headers.get("content-type", ""))
    sha256 = expected_sha256(request)
    if media_type == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise InvalidInput("multipart/form-data needs a boundary", code="invalid_multipart")
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
