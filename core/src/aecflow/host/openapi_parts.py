"""Building blocks of the OpenAPI document: responses, error lists, parameters.

The JSON bodies themselves are :mod:`aecflow.schemas` models (``components.schemas``); what is
here is what no model can say: which error codes each status carries, headers, and the query
and path parameters the handlers read from raw requests.
"""

from __future__ import annotations

from typing import Any

from aecflow.schemas.common import (
    DECLARED_SHA256_PATTERN,
    FILENAME_PATTERN,
    MAX_FILENAME,
    META_VALUE,
    REF_TEMPLATE,
)
from aecflow.store.files import MAX_PAGE
from aecflow.validation import MAX_METADATA_ENTRIES, METADATA_KEY_RE, PROJECT_RE

Schema = dict[str, Any]

JSON = "application/json"
MAX_EXPIRY_S = 7 * 24 * 3600
#: The ``meta.<key>`` names, written for ECMA-262 (``$`` there never matches before a newline).
META_NAME = "^meta\\." + METADATA_KEY_RE.pattern.removeprefix("^")
#: Error lists many operations share.
FORBIDDEN = ["forbidden"]
STORAGE_403 = ["forbidden", "storage_access_denied"]
STORAGE_DENIED = ["storage_access_denied"]
STORAGE_502 = ["storage_error"]
STORAGE_503 = ["storage_unavailable", "circuit_open"]
AUTH_401 = ["missing_token", "invalid_token", "revoked_token", "expired_token"]
#: A path that matches no route (a parameter holding ``/``, or empty) is the router's 404.
NO_ROUTE = "not_found"


def ref(name: str) -> Schema:
    return {"$ref": REF_TEMPLATE.format(model=name)}


def header(description: str, schema: Schema, *, required: bool = True) -> Schema:
    return {"description": description, "required": required, "schema": schema}


REQUEST_ID = {"$ref": "#/components/headers/X-Request-ID"}
RETRY_AFTER = {"$ref": "#/components/headers/Retry-After"}
LOCATION = {"$ref": "#/components/headers/Location"}


def ok(description: str, schema: Schema | None = None, **headers: Schema) -> Schema:
    """A success response with a JSON body (when ``schema``) and the headers every answer has."""
    response: Schema = {"description": description, "headers": {"X-Request-ID": REQUEST_ID}}
    response["headers"].update({name.replace("_", "-"): h for name, h in headers.items()})
    if schema is not None:
        response["content"] = {JSON: {"schema": schema}}
    return response


def error(description: str, codes: list[str], **headers: Schema) -> Schema:
    """An error response whose ``error.code`` is one of ``codes``."""
    schema = {
        "allOf": [
            ref("Error"),
            {"properties": {"error": {"properties": {"code": {"enum": codes}}}}},
        ]
    }
    response = ok(description, schema, **headers)
    response["x-error-codes"] = codes
    return response


#: What each error status means, whatever the operation.
ERROR_TEXTS: dict[int, str] = {
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
    507: "Writing would leave local storage less free space than its reserve "
    "(`min_free_bytes`); nothing was kept. Reads and deletes still work.",
}

#: The 429 answers beside ``too_many_auth_failures``, by the operations that can give them.
LIMIT_TEXTS = {
    "too_many_uploads_for_token": "the token already sends `[uploads] "
    "max_concurrent_per_token` uploads at once",
    "upload_quota_exceeded": "the project or token already has its `[uploads] "
    "max_open_sessions_per_*` open sessions, or `max_open_bytes_per_*` declared by them",
}


def errors(**by_status: list[str]) -> dict[str, Schema]:
    """The error responses of an authenticated operation: ``s400=[codes]`` etc., plus the ones
    any authenticated request can get."""
    out: dict[str, Schema] = {}
    limits = by_status.pop("s429", [])
    by_status["s400"] = [*by_status.get("s400", []), "invalid_character"]
    by_status["s503"] = ["database_unavailable", *by_status.get("s503", [])]
    for key, codes in sorted(by_status.items(), key=lambda item: int(item[0][1:])):
        status = int(key[1:])
        headers: dict[str, Schema] = {}
        if status == 503:
            headers["Retry_After"] = RETRY_AFTER
        if status == 416:
            headers["Content_Range"] = header(
                "`bytes */<size>`", {"type": "string", "pattern": "^bytes \\*/[0-9]+$"}
            )
        out[str(status)] = error(ERROR_TEXTS[status], codes, **headers)
    out["401"] = error(
        "No valid bearer token (audited as `auth.failed`).",
        AUTH_401,
        WWW_Authenticate=header('`Bearer realm="aecflow"`', {"type": "string"}),
    )
    out["429"] = error(
        "; or ".join(
            ["Too many failed authentications from this address within a minute"]
            + [LIMIT_TEXTS[code] for code in limits]
        )
        + ". Retry after `Retry-After`.",
        ["too_many_auth_failures", *limits],
        Retry_After=RETRY_AFTER,
    )
    return dict(sorted(out.items()))


def with_head_and_body_limits(paths: dict[str, dict[str, Schema]]) -> dict[str, dict[str, Schema]]:
    """Add the answers the server gives before any route (``host/server.py``: request head
    capped and timed) to every operation, and the body idle timeout (``host/limits.py``) to
    those that read a body. These responses close the connection."""
    for item in paths.values():
        for op in item.values():
            reads_body = "requestBody" in op
            op["responses"]["408"] = error(
                "The request head did not arrive within `[server] header_timeout_s`"
                + (
                    ", or the body stalled for `[uploads] body_idle_timeout_s`"
                    if reads_body
                    else ""
                )
                + "; the connection is closed.",
                ["header_timeout", *(["body_timeout"] if reads_body else [])],
            )
            op["responses"]["431"] = error(
                "The request line and headers exceed `[server] max_header_bytes`; the "
                "connection is closed.",
                ["headers_too_large"],
            )
            op["responses"] = dict(sorted(op["responses"].items()))
    return paths


def param(name: str, where: str, schema: Schema, description: str, **extra: Any) -> Schema:
    return {"name": name, "in": where, "description": description, "schema": schema, **extra}


def path_param(name: str, schema: Schema, description: str) -> Schema:
    return param(name, "path", schema, description, required=True)


def query(name: str, schema: Schema, description: str) -> Schema:
    return param(name, "query", schema, description)


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

FILE_ID = path_param("file_id", UUID, "The file's id (a UUIDv7). Any other value is 404.")
PROJECT = path_param(
    "project",
    PROJECT_SCHEMA,
    "1-64 lower-case letters, digits, `.`, `_` or `-`, starting with a letter or digit.",
)
LIMIT = query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50},
    f"Page size, 1-{MAX_PAGE}.",
)
CURSOR = query(
    "cursor",
    {"type": "string"},
    "`next_cursor` of the previous page; anything else is 400 `invalid_cursor`.",
)
UPLOAD_ID = path_param(
    "upload_id", UUID, "The upload session's id (a UUIDv7). Any other value is 404."
)
DECLARED_SHA256: Schema = {"type": "string", "pattern": DECLARED_SHA256_PATTERN}
CONTENT_SHA256 = param(
    "Content-SHA256",
    "header",
    {"type": "string", "pattern": "^([0-9a-fA-F]{64})?$"},
    "Expected SHA-256 (hex); a mismatch is 400 `checksum_mismatch`, nothing kept. "
    "Empty: not checked.",
)
DIGEST = param(
    "Digest",
    "header",
    {"type": "string"},
    "`sha-256=<base64>` (RFC 3230) is verified like `Content-SHA256`; other "
    "algorithms are ignored.",
)
