"""The HTTP API described as OpenAPI 3.1 (``/openapi.json``) and as a readable page (``/docs``).

The handlers read raw requests (streamed bodies, ``meta.<key>`` parameters), so nothing could
derive this document from their signatures: it is written out here next to them, error codes
and all, and ``tests/test_openapi.py`` runs schemathesis against a live host to keep the two in
step. ``/docs`` is rendered on the server from the same dictionary, with no script and nothing
fetched from elsewhere, so it reads the same offline.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from aecflow import schemas
from aecflow._parts import MAX_PARTS
from aecflow.catalog import MAX_PAGE
from aecflow.host import docs_page
from aecflow.schemas.common import (
    DECLARED_SHA256_PATTERN,
    FILENAME_PATTERN,
    MAX_FILENAME,
    META_RULES,
    META_VALUE,
    REF_TEMPLATE,
)
from aecflow.validation import MAX_METADATA_ENTRIES, METADATA_KEY_RE, PROJECT_RE

Schema = dict[str, Any]

JSON = "application/json"
MAX_EXPIRY_S = 7 * 24 * 3600
#: The ``meta.<key>`` names, written for ECMA-262 (``$`` there never matches before a newline).
META_NAME = "^meta\\." + METADATA_KEY_RE.pattern.removeprefix("^")
AUTH_401 = ["missing_token", "invalid_token", "revoked_token", "expired_token"]
#: A path that matches no route (a parameter holding ``/``, or empty) is the router's 404.
NO_ROUTE = "not_found"


def _ref(name: str) -> Schema:
    return {"$ref": REF_TEMPLATE.format(model=name)}


def _header(description: str, schema: Schema, *, required: bool = True) -> Schema:
    return {"description": description, "required": required, "schema": schema}


REQUEST_ID = {"$ref": "#/components/headers/X-Request-ID"}
RETRY_AFTER = {"$ref": "#/components/headers/Retry-After"}
LOCATION = {"$ref": "#/components/headers/Location"}


def _ok(description: str, schema: Schema | None = None, **headers: Schema) -> Schema:
    """A success response with a JSON body (when ``schema``) and the headers every answer has."""
    response: Schema = {"description": description, "headers": {"X-Request-ID": REQUEST_ID}}
    response["headers"].update({name.replace("_", "-"): h for name, h in headers.items()})
    if schema is not None:
        response["content"] = {JSON: {"schema": schema}}
    return response


def _error(description: str, codes: list[str], **headers: Schema) -> Schema:
    """An error response whose ``error.code`` is one of ``codes``."""
    schema = {
        "allOf": [
            _ref("Error"),
            {"properties": {"error": {"properties": {"code": {"enum": codes}}}}},
        ]
    }
    response = _ok(description, schema, **headers)
    response["x-error-codes"] = codes
    return response


def _errors(**by_status: list[str]) -> dict[str, Schema]:
    """The error responses of an authenticated operation: ``s400=[codes]`` etc., plus the ones
    any authenticated request can get."""
    texts = {
        400: "Bad input: a parameter, header or body the API refuses.",
        403: "The token's role is too low for this operation, or storage refused access.",
        404: "No such resource, or one in a project the token may not see.",
        409: "The request contradicts the state of the file or upload session.",
        410: "The upload session expired; its parts are gone. Start a new one.",
        413: "The file is larger than `[uploads] max_size` (checked while streaming, or "
        "against an upload session's declared `size`).",
        415: "No processor accepts the file and `[processing] refuse_unprocessable` is on.",
        416: "The range cannot be satisfied; `Content-Range` gives the size.",
        502: "The storage backend failed.",
        503: "A dependency is unavailable or the host is busy; retry after `Retry-After`.",
    }
    out: dict[str, Schema] = {}
    by_status["s400"] = [*by_status.get("s400", []), "invalid_character"]
    by_status["s503"] = ["database_unavailable", *by_status.get("s503", [])]
    for key, codes in sorted(by_status.items(), key=lambda item: int(item[0][1:])):
        status = int(key[1:])
        headers: dict[str, Schema] = {}
        if status == 503:
            headers["Retry_After"] = RETRY_AFTER
        if status == 416:
            headers["Content_Range"] = _header(
                "`bytes */<size>`", {"type": "string", "pattern": "^bytes \\*/[0-9]+$"}
            )
        out[str(status)] = _error(texts[status], codes, **headers)
    out["401"] = _error(
        "No valid bearer token (audited as `auth.failed`).",
        AUTH_401,
        WWW_Authenticate=_header('`Bearer realm="aecflow"`', {"type": "string"}),
    )
    out["429"] = _error(
        "Too many failed authentications from this address within a minute.",
        ["too_many_auth_failures"],
        Retry_After=RETRY_AFTER,
    )
    return dict(sorted(out.items()))


def _param(name: str, where: str, schema: Schema, description: str, **extra: Any) -> Schema:
    return {"name": name, "in": where, "description": description, "schema": schema, **extra}


def _path(name: str, schema: Schema, description: str) -> Schema:
    return _param(name, "path", schema, description, required=True)


def _query(name: str, schema: Schema, description: str) -> Schema:
    return _param(name, "query", schema, description)


FILENAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_FILENAME,
    "pattern": FILENAME_PATTERN,
}
PROJECT_SCHEMA: Schema = {
    "type": "string",
    "pattern": PROJECT_RE.pattern,
    "minLength": 1,
    "maxLength": 64,
}
META_QUERY_SCHEMA: Schema = {
    "type": "object",
    "propertyNames": {"pattern": META_NAME},
    "additionalProperties": META_VALUE,
    "maxProperties": MAX_METADATA_ENTRIES,
}
DATE_TIME: Schema = {"type": "string", "format": "date-time"}
UUID: Schema = {"type": "string", "format": "uuid"}
#: Time filters: an ISO 8601 time, or empty for none (what an HTML form sends when left blank).
TIME_FILTER: Schema = {"type": "string", "anyOf": [{"format": "date-time"}, {"maxLength": 0}]}
TIME_RULES = "ISO 8601, UTC when it has no offset; empty means no limit."

FILE_ID = _path("file_id", UUID, "The file's id (a UUIDv7). Any other value is 404.")
PROJECT = _path(
    "project",
    PROJECT_SCHEMA,
    "1-64 lower-case letters, digits, `.`, `_` or `-`, starting with a letter or digit.",
)
LIMIT = _query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50},
    f"Page size, 1-{MAX_PAGE}.",
)
CURSOR = _query(
    "cursor",
    {"type": "string"},
    "`next_cursor` of the previous page; anything else is 400 `invalid_cursor`.",
)
UPLOAD_ID = _path("upload_id", UUID, "The upload session's id (a UUIDv7). Any other value is 404.")
DECLARED_SHA256: Schema = {"type": "string", "pattern": DECLARED_SHA256_PATTERN}
CONTENT_SHA256 = _param(
    "Content-SHA256",
    "header",
    {"type": "string", "pattern": "^([0-9a-fA-F]{64})?$"},
    "Expected SHA-256 (hex); a mismatch is 400 `checksum_mismatch`, nothing kept. "
    "Empty: not checked.",
)
DIGEST = _param(
    "Digest",
    "header",
    {"type": "string"},
    "`sha-256=<base64>` (RFC 3230) is verified like `Content-SHA256`; other "
    "algorithms are ignored.",
)


def _upload() -> Schema:
    binary: Schema = {"type": "string", "format": "binary"}
    form: Schema = {
        "type": "object",
        "description": "The first part with a filename is the file, streamed. Fields before it "
        "named `meta.<key>` are metadata (other fields are ignored); parts after it are read "
        "and ignored, so put metadata fields first.",
        "required": ["file"],
        "properties": {"file": binary},
        "additionalProperties": {"type": "string"},
    }
    return {
        "tags": ["files"],
        "operationId": "uploadFile",
        "summary": "Upload a file",
        "description": (
            "Streams the body to storage; the SHA-256 is computed and the size limit enforced "
            "while streaming, and nothing is kept when the upload fails. The body is either "
            "the raw file (any media type; it is recorded as the file's `content_type`, except "
            "`application/x-www-form-urlencoded`, which is what `curl --data-binary` sends) or "
            "`multipart/form-data` whose first file part is the file.\n\n"
            "The filename comes from `?filename=`, else `Content-Disposition` (raw bodies) or "
            "the file part's filename. It must not be empty, contain control characters or "
            "`/` or `\\`, be `.` or `..`, start or end with whitespace, or exceed "
            f"{MAX_FILENAME} bytes of UTF-8.\n\n"
            "Metadata comes from `X-Aecflow-Meta-<key>` headers (values may be percent-encoded "
            "UTF-8), `?meta.<key>=` parameters, and `meta.<key>` form fields before the file "
            "part. " + META_RULES
        ),
        "parameters": [
            PROJECT,
            _query(
                "filename",
                {"type": "string", "anyOf": [FILENAME, {"maxLength": 0}]},
                f"The file's name (wins over the others); at most {MAX_FILENAME} bytes "
                "of UTF-8, no Unicode format characters. Empty: taken from elsewhere.",
            ),
            _param(
                "meta",
                "query",
                META_QUERY_SCHEMA,
                "Metadata as `meta.<key>=<value>` parameters. " + META_RULES,
                style="form",
                explode=True,
            ),
            CONTENT_SHA256,
            DIGEST,
            _param(
                "Content-Disposition",
                "header",
                {"type": "string"},
                "`attachment; filename=\"...\"` or `filename*=UTF-8''...` names a raw body.",
            ),
        ],
        "requestBody": {
            "required": True,
            "description": "The file (at least one byte).",
            "content": {
                "application/octet-stream": {"schema": binary},
                "multipart/form-data": {
                    "schema": form,
                    "encoding": {"file": {"contentType": "application/octet-stream"}},
                },
                "*/*": {"schema": binary},
            },
        },
        "responses": {
            "201": _ok("Stored; processing is queued.", _ref("FileRecord"), Location=LOCATION),
            **_errors(
                s400=[
                    "invalid_project",
                    "invalid_filename",
                    "invalid_metadata",
                    "invalid_checksum",
                    "checksum_mismatch",
                    "empty_file",
                    "invalid_multipart",
                    "missing_file_part",
                ],
                s403=["forbidden", "storage_access_denied"],
                s404=["project_not_found", NO_ROUTE],
                s413=["too_large"],
                s415=["unsupported_file"],
                s502=["storage_error"],
                s503=["too_many_uploads", "storage_unavailable", "circuit_open"],
            ),
        },
    }


def _live_session() -> Schema:
    """A session as ``GET``/``POST`` answer it: with its parts exactly while it is open."""
    progress = ("parts", "parts_received", "bytes_received")
    return {
        "allOf": [
            _ref("UploadSession"),
            {
                "if": {"properties": {"status": {"const": "open"}}},
                "then": {"required": list(progress)},
                "else": {"properties": dict.fromkeys(progress, False)},
            },
        ]
    }


def _upload_sessions() -> dict[str, dict[str, Schema]]:
    """Resumable uploads (docs/uploads.md): open, send parts, complete or abort."""
    session = _live_session()
    storage_errors = {
        "s403": ["storage_access_denied"],
        "s502": ["storage_error"],
        "s503": ["storage_unavailable", "circuit_open"],
    }
    return {
        "/v1/projects/{project}/uploads": {
            "post": {
                "tags": ["uploads"],
                "operationId": "openUploadSession",
                "summary": "Open an upload session",
                "description": "Writer. For large files: the file is then sent in numbered "
                "parts (in parallel, resumable after a dropped connection) and published by "
                "`complete`. Part `n` (from 1) covers bytes `(n-1)*part_size` up to "
                "`n*part_size`. The answer lists every part and, for those not yet received, "
                "where to send them. A session expires `[uploads] session_ttl_s` after it was "
                "opened.",
                "parameters": [PROJECT],
                "requestBody": {
                    "required": True,
                    "description": "The file to come (a JSON object of at most 2 MiB).",
                    "content": {JSON: {"schema": _ref("NewUploadSession")}},
                },
                "responses": {
                    "201": _ok("Opened.", session, Location=LOCATION),
                    **_errors(
                        s400=[
                            "invalid_json",
                            "invalid_project",
                            "invalid_filename",
                            "invalid_size",
                            "invalid_sha256",
                            "invalid_checksum",
                            "sha256_required",
                            "invalid_part_size",
                            "invalid_part_sha256",
                            "invalid_content_type",
                            "invalid_metadata",
                            "storage_invalid",
                        ],
                        s403=["forbidden", "storage_access_denied"],
                        s404=["project_not_found", NO_ROUTE],
                        s413=["too_large"],
                        s415=["unsupported_file"],
                        s502=storage_errors["s502"],
                        s503=storage_errors["s503"],
                    ),
                },
            },
            "get": {
                "tags": ["uploads"],
                "operationId": "listUploadSessions",
                "summary": "Find open upload sessions",
                "description": "A project's open sessions, newest first (at most 100), "
                "without their parts: how a client finds the session of a file it was sending "
                "when it was interrupted. Any role.",
                "parameters": [
                    PROJECT,
                    _query(
                        "sha256",
                        {"type": "string", "anyOf": [DECLARED_SHA256, {"maxLength": 0}]},
                        "Only sessions that declared this SHA-256 (hex). Empty: any.",
                    ),
                    _query("filename", {"type": "string"}, "Only this exact filename. Empty: any."),
                    _query(
                        "size", {"type": "integer", "minimum": 0}, "Only files of this many bytes."
                    ),
                ],
                "responses": {
                    "200": _ok("The sessions.", _ref("UploadSessionList")),
                    **_errors(
                        s400=["invalid_project", "invalid_checksum", "invalid_size"],
                        s404=["project_not_found", NO_ROUTE],
                    ),
                },
            },
        },
        "/v1/uploads/{upload_id}": {
            "get": {
                "tags": ["uploads"],
                "operationId": "getUploadSession",
                "summary": "An upload session",
                "description": "Its state and, while it is open, every part and where to send "
                "those still missing (URLs are fresh on every call). Any role.",
                "parameters": [UPLOAD_ID],
                "responses": {
                    "200": _ok("The session.", session),
                    **_errors(
                        s403=storage_errors["s403"],
                        s404=["upload_not_found", NO_ROUTE],
                        s502=storage_errors["s502"],
                        s503=storage_errors["s503"],
                    ),
                },
            },
            "delete": {
                "tags": ["uploads"],
                "operationId": "abortUploadSession",
                "summary": "Abort an upload session",
                "description": "Writer. Removes what was stored (including an S3 multipart "
                "upload). Aborting an aborted or expired session again is fine.",
                "parameters": [UPLOAD_ID],
                "responses": {
                    "204": _ok("Aborted."),
                    **_errors(
                        s403=["forbidden", "storage_access_denied"],
                        s404=["upload_not_found", NO_ROUTE],
                        s409=["upload_completed", "upload_completing"],
                        s502=storage_errors["s502"],
                        s503=storage_errors["s503"],
                    ),
                },
            },
        },
        "/v1/uploads/{upload_id}/parts/{number}": {
            "put": {
                "tags": ["uploads"],
                "operationId": "putUploadPart",
                "summary": "Send one part",
                "description": "Writer; `host` sessions only (`direct` ones send their parts to "
                "the URLs the session lists). The body is exactly the part's bytes; a body of "
                "another length is 400 `part_size_mismatch` and nothing is kept. Sending a "
                "part again replaces it: the last PUT to finish wins; one still running when "
                "the session completes is 409 and changes nothing.",
                "parameters": [
                    UPLOAD_ID,
                    _path(
                        "number",
                        {"type": "integer", "minimum": 1, "maximum": MAX_PARTS},
                        "The part's number, from 1 to the session's `part_count` (400 "
                        "`invalid_part_number` otherwise).",
                    ),
                    CONTENT_SHA256,
                    DIGEST,
                ],
                "requestBody": {
                    "required": True,
                    "description": "The part's bytes.",
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "responses": {
                    "200": _ok("Stored.", _ref("PartReceipt")),
                    **_errors(
                        s400=[
                            "invalid_checksum",
                            "invalid_part_number",
                            "part_size_mismatch",
                            "checksum_mismatch",
                            "storage_invalid",
                        ],
                        s403=["forbidden", "storage_access_denied"],
                        s404=["upload_not_found", NO_ROUTE],
                        s409=[
                            "upload_aborted",
                            "upload_completed",
                            "upload_completing",
                            "direct_upload",
                        ],
                        s410=["upload_expired"],
                        s502=storage_errors["s502"],
                        s503=["too_many_uploads", *storage_errors["s503"]],
                    ),
                },
            }
        },
        "/v1/uploads/{upload_id}/complete": {
            "post": {
                "tags": ["uploads"],
                "operationId": "completeUploadSession",
                "summary": "Publish the file",
                "description": "Writer. Checks that every part is there with the right size "
                "and, for `host` sessions, that the file's SHA-256 matches the declared one; "
                "then the file is published and its processing queued, as for a streamed "
                "upload. Completing a completed session again returns the same record (200). "
                "Missing parts (409 `upload_incomplete`) and a part of the wrong size leave "
                "the session open; a file whose SHA-256 differs aborts it.",
                "parameters": [UPLOAD_ID],
                "responses": {
                    "200": _ok(
                        "Already completed: the file.", _ref("FileRecord"), Location=LOCATION
                    ),
                    "201": _ok(
                        "Published; processing is queued.", _ref("FileRecord"), Location=LOCATION
                    ),
                    **_errors(
                        s400=[
                            "part_size_mismatch",
                            "checksum_mismatch",
                            "size_mismatch",
                            "storage_invalid",
                        ],
                        s403=["forbidden", "storage_access_denied"],
                        s404=["upload_not_found", "object_not_found", NO_ROUTE],
                        s409=[
                            "upload_incomplete",
                            "upload_aborted",
                            "upload_completing",
                            "upload_parts_changed",
                            "conflict",
                        ],
                        s410=["upload_expired"],
                        s415=["unsupported_file"],
                        s502=storage_errors["s502"],
                        s503=storage_errors["s503"],
                    ),
                },
            }
        },
    }


def _operations() -> dict[str, dict[str, Schema]]:
    record = _ref("FileRecord")
    return {
        "/health": {
            "get": {
                "tags": ["operations"],
                "operationId": "health",
                "summary": "Liveness",
                "description": "The process answers; nothing else is checked. No token needed.",
                "security": [],
                "responses": {"200": _ok("Alive.", _ref("Health"))},
            }
        },
        "/ready": {
            "get": {
                "tags": ["operations"],
                "operationId": "ready",
                "summary": "Readiness",
                "description": "Database and storage reachable, and every circuit breaker's "
                "state. Any role.",
                "responses": {
                    "200": _ok("Ready.", _ref("Ready")),
                    **_errors(),
                    "503": _not_ready(),
                },
            }
        },
        "/v1/plugins": {
            "get": {
                "tags": ["operations"],
                "operationId": "listPlugins",
                "summary": "Plugins",
                "description": "Every plugin found: name, version, hooks, status, error. Admin.",
                "responses": {
                    "200": _ok("All plugins (one page).", _ref("PluginPage")),
                    **_errors(s403=["forbidden"]),
                },
            }
        },
        "/v1/audit": {
            "get": {
                "tags": ["audit"],
                "operationId": "readAudit",
                "summary": "Audit log",
                "description": "Audit rows, newest first. Admin. Filters are exact matches.",
                "parameters": [
                    *(
                        _query(name, {"type": "string"}, f"Only rows with this `{name}`.")
                        for name in ("action", "actor", "project", "file_id", "request_id")
                    ),
                    _query(
                        "outcome",
                        {"type": "string"},
                        "Only rows with this outcome (`ok`, `error`, `denied`).",
                    ),
                    _query("since", TIME_FILTER, "Rows at or after this time. " + TIME_RULES),
                    _query("until", TIME_FILTER, "Rows before this time. " + TIME_RULES),
                    LIMIT,
                    CURSOR,
                ],
                "responses": {
                    "200": _ok("One page of rows.", _ref("AuditPage")),
                    **_errors(s400=["invalid_query", "invalid_cursor"], s403=["forbidden"]),
                },
            }
        },
        "/v1/events/dead": {
            "get": {
                "tags": ["events"],
                "operationId": "listDeadLetters",
                "summary": "Dead letters",
                "description": "Events that could not be delivered, newest first. Admin.",
                "parameters": [
                    _query("destination", {"type": "string"}, "Only this notifier's."),
                    LIMIT,
                    CURSOR,
                ],
                "responses": {
                    "200": _ok("One page of dead letters.", _ref("DeadLetterPage")),
                    **_errors(s400=["invalid_query", "invalid_cursor"], s403=["forbidden"]),
                },
            }
        },
        "/v1/events/dead/{dead_id}/redeliver": {
            "post": {
                "tags": ["events"],
                "operationId": "redeliverDeadLetter",
                "summary": "Redeliver a dead letter",
                "description": "Queue the event again with fresh attempts. Admin.",
                "parameters": [_path("dead_id", {"type": "string"}, "A dead letter's `id`.")],
                "responses": {
                    "202": _ok("Queued again.", _ref("Redelivered")),
                    **_errors(s403=["forbidden"], s404=["dead_letter_not_found", NO_ROUTE]),
                },
            }
        },
        "/v1/projects/{project}/files": {
            "post": _upload(),
            "get": {
                "tags": ["files"],
                "operationId": "listFiles",
                "summary": "List and search files",
                "description": "A project's files, newest first. Purged files never appear.",
                "parameters": [
                    PROJECT,
                    _query(
                        "status", {"type": "string", "enum": list(schemas.FILE_STATUSES)}, "Status."
                    ),
                    _query(
                        "filename",
                        {"type": "string"},
                        "Case-insensitive substring of the filename.",
                    ),
                    _param(
                        "meta",
                        "query",
                        META_QUERY_SCHEMA,
                        "`meta.<key>=<value>`: files whose metadata has exactly that value; "
                        "several must all match. " + META_RULES,
                        style="form",
                        explode=True,
                    ),
                    _query("created_after", TIME_FILTER, "Created at or after. " + TIME_RULES),
                    _query("created_before", TIME_FILTER, "Created before. " + TIME_RULES),
                    _query(
                        "deleted",
                        {"type": "string", "enum": ["exclude", "include", "only"]},
                        "Soft-deleted files: left out (default), included, or only they.",
                    ),
                    LIMIT,
                    CURSOR,
                ],
                "responses": {
                    "200": _ok("One page of files.", _ref("FilePage")),
                    **_errors(
                        s400=[
                            "invalid_project",
                            "invalid_query",
                            "invalid_cursor",
                            "invalid_metadata",
                        ],
                        s404=["project_not_found", NO_ROUTE],
                    ),
                },
            },
        },
        "/v1/files/{file_id}": {
            "get": {
                "tags": ["files"],
                "operationId": "getFile",
                "summary": "A file's record",
                "description": "Metadata, status, and the processing outcome and result. "
                "Deleted and purged files are still returned.",
                "parameters": [FILE_ID],
                "responses": {
                    "200": _ok("The record.", record),
                    **_errors(s404=["file_not_found", NO_ROUTE]),
                },
            },
            "delete": {
                "tags": ["files"],
                "operationId": "deleteFile",
                "summary": "Delete or purge a file",
                "description": "Soft delete (writer): hidden from listings and downloads until "
                "restored; repeating it changes nothing. With `purge=true` (admin): the object "
                "is removed and the record scrubbed; purging again returns the record.",
                "parameters": [
                    FILE_ID,
                    _query(
                        "purge",
                        {"type": "boolean", "default": False},
                        "`true`/`1` purges; `false`/`0` (default) soft-deletes; any case.",
                    ),
                ],
                "responses": {
                    "200": _ok("The record after the change.", record),
                    **_errors(
                        s400=["invalid_query"],
                        s403=["forbidden", "storage_access_denied"],
                        s404=["file_not_found", NO_ROUTE],
                        s409=["file_purged"],
                        s502=["storage_error"],
                        s503=["storage_unavailable", "circuit_open"],
                    ),
                },
            },
        },
        "/v1/files/{file_id}/download": {
            "get": {
                "tags": ["files"],
                "operationId": "downloadFile",
                "summary": "Redirect to the bytes",
                "description": "307 to the storage backend's expiring URL, or to "
                "`/v1/files/{file_id}/content` when the backend has none.",
                "parameters": [
                    FILE_ID,
                    _query(
                        "expires",
                        {"type": "integer", "minimum": 1, "maximum": MAX_EXPIRY_S, "default": 900},
                        "Lifetime of the URL in seconds (at most 7 days; the backend may clamp "
                        "it further).",
                    ),
                ],
                "responses": {
                    "307": _ok("Where the bytes are.", Location=LOCATION),
                    **_errors(
                        s400=["invalid_query"],
                        s403=["storage_access_denied"],
                        s404=["file_not_found", "file_deleted", NO_ROUTE],
                        s502=["storage_error"],
                        s503=["storage_unavailable", "circuit_open"],
                    ),
                },
            }
        },
        "/v1/files/{file_id}/content": {
            "get": {
                "tags": ["files"],
                "operationId": "fileContent",
                "summary": "The bytes",
                "description": "Streams the file with its own media type. A single "
                "`Range: bytes=a-b`, `a-` or `-n` is honoured; other or several ranges get the "
                "whole file.",
                "parameters": [
                    FILE_ID,
                    _param(
                        "Range",
                        "header",
                        {"type": "string", "examples": ["bytes=0-1023", "bytes=-512"]},
                        "One byte range (RFC 9110).",
                    ),
                ],
                "responses": {
                    "200": _content("The whole file."),
                    "206": _content(
                        "The requested range.",
                        Content_Range=_header(
                            "`bytes <first>-<last>/<size>`",
                            {"type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$"},
                        ),
                    ),
                    **_errors(
                        s403=["storage_access_denied"],
                        s404=["file_not_found", "file_deleted", "object_not_found", NO_ROUTE],
                        s416=["range_not_satisfiable"],
                        s502=["storage_error"],
                        s503=["storage_unavailable", "circuit_open"],
                    ),
                },
            }
        },
        "/v1/files/{file_id}/restore": {
            "post": {
                "tags": ["files"],
                "operationId": "restoreFile",
                "summary": "Undo a soft delete",
                "description": "Writer. Restoring a file that is not deleted changes nothing.",
                "parameters": [FILE_ID],
                "responses": {
                    "200": _ok("The record after the change.", record),
                    **_errors(
                        s403=["forbidden"],
                        s404=["file_not_found", NO_ROUTE],
                        s409=["file_purged"],
                    ),
                },
            }
        },
        "/v1/files/{file_id}/reprocess": {
            "post": {
                "tags": ["files"],
                "operationId": "reprocessFile",
                "summary": "Process again",
                "description": "Writer. Queues processing unless a job is already queued or "
                "running (then the record is returned unchanged).",
                "parameters": [FILE_ID],
                "responses": {
                    "202": _ok("Queued.", record),
                    **_errors(
                        s400=["storage_invalid"],
                        s403=["forbidden", "storage_access_denied"],
                        s404=["file_not_found", "file_deleted", "object_not_found", NO_ROUTE],
                        s502=["storage_error"],
                        s503=["storage_unavailable", "circuit_open"],
                    ),
                },
            }
        },
        **_upload_sessions(),
        "/metrics": {
            "get": {
                "tags": ["operations"],
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "description": "Only with `[telemetry] prometheus = true` (404 `not_found` "
                "otherwise). Any role.",
                "responses": {
                    "200": {
                        "description": "The Prometheus text format.",
                        "headers": {"X-Request-ID": REQUEST_ID},
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(s404=[NO_ROUTE]),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["documentation"],
                "operationId": "openapi",
                "summary": "This document",
                "description": "OpenAPI 3.1. Any role.",
                "responses": {
                    "200": _ok("The document.", {"type": "object", "required": ["openapi"]}),
                    **_errors(),
                },
            }
        },
        "/docs": {
            "get": {
                "tags": ["documentation"],
                "operationId": "docs",
                "summary": "This document as a page",
                "description": "HTML rendered on the server; works offline. Any role.",
                "responses": {
                    "200": {
                        "description": "The page.",
                        "headers": {"X-Request-ID": REQUEST_ID},
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    **_errors(),
                },
            }
        },
    }


def _not_ready() -> Schema:
    """``/ready``'s 503: its own body when a check fails, an error when no token can be checked."""
    response = _error(
        "Not ready (a check failed or the storage circuit is open); or the database could "
        "not be reached to check the token (an error).",
        ["database_unavailable"],
        Retry_After=RETRY_AFTER,
    )
    media = response["content"][JSON]
    media["schema"] = {"anyOf": [_ref("Ready"), media["schema"]]}
    return response


def _content(description: str, **headers: Schema) -> Schema:
    response = _ok(
        description,
        None,
        Accept_Ranges=_header("`bytes`", {"type": "string", "const": "bytes"}),
        Content_Disposition=_header(
            "`attachment` with the filename (ASCII fallback and `filename*` UTF-8).",
            {"type": "string"},
        ),
        ETag=_header("The SHA-256, quoted.", {"type": "string"}, required=False),
        **headers,
    )
    response["content"] = {
        "*/*": {
            "schema": {"type": "string", "format": "binary"},
            "x-description": "The file's own `content_type`, else application/octet-stream.",
        }
    }
    return response


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
        ],
        "security": [{"bearer": []}],
        "paths": _operations(),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`aecflow tokens create ...` prints one (`aecf_...`).",
                }
            },
            "headers": {
                "X-Request-ID": _header(
                    "This request's id, also in the access log and the audit row.",
                    {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
                ),
                "Retry-After": _header("Seconds to wait.", {"type": "integer", "minimum": 0}),
                "Location": _header("Where the resource is.", {"type": "string"}),
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
