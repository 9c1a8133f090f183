"""The table of operations: every path, its parameters, bodies and error codes.

The handlers read raw requests (streamed bodies, ``meta.<key>`` parameters), so nothing could
derive this from their signatures; it is data, kept next to them, and ``tests/test_openapi.py``
runs schemathesis against a live host to keep the two in step.
"""

from __future__ import annotations

from aecflow import schemas
from aecflow.host.openapi_parts import (
    CONTENT_SHA256,
    CURSOR,
    DIGEST,
    FILE_ID,
    FILENAME,
    FORBIDDEN,
    JSON,
    LIMIT,
    LOCATION,
    MAX_EXPIRY_S,
    META_QUERY_SCHEMA,
    NO_ROUTE,
    PROJECT,
    REQUEST_ID,
    RETRY_AFTER,
    STORAGE_403,
    STORAGE_502,
    STORAGE_503,
    STORAGE_DENIED,
    TIME_FILTER,
    TIME_RULES,
    Schema,
    error,
    errors,
    header,
    ok,
    param,
    path_param,
    query,
    ref,
)
from aecflow.host.openapi_pipelines import STEP, pipeline_paths
from aecflow.host.openapi_uploads import upload_sessions
from aecflow.host.openapi_web import web_operations
from aecflow.schemas.common import MAX_FILENAME, META_RULES


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
            query(
                "filename",
                {"type": "string", "anyOf": [FILENAME, {"maxLength": 0}]},
                f"The file's name (wins over the others); at most {MAX_FILENAME} bytes "
                "of UTF-8, no Unicode format characters. Empty: taken from elsewhere.",
            ),
            param(
                "meta",
                "query",
                META_QUERY_SCHEMA,
                "Metadata as `meta.<key>=<value>` parameters. " + META_RULES,
                style="form",
                explode=True,
            ),
            CONTENT_SHA256,
            DIGEST,
            param(
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
            "201": ok("Stored; processing is queued.", ref("FileRecord"), Location=LOCATION),
            **errors(
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
                s403=STORAGE_403,
                s404=["project_not_found", NO_ROUTE],
                s413=["too_large"],
                s415=["unsupported_file"],
                s429=["too_many_uploads_for_token"],
                s502=STORAGE_502,
                s503=["too_many_uploads", "storage_unavailable", "circuit_open"],
                s507=["insufficient_storage"],
            ),
        },
    }


def operations() -> dict[str, dict[str, Schema]]:
    """Every path and method, with its parameters, bodies and responses."""
    record = ref("FileRecord")
    return {
        "/health": {
            "get": {
                "tags": ["operations"],
                "operationId": "health",
                "summary": "Liveness",
                "description": "The process answers; nothing else is checked. No token needed.",
                "security": [],
                "responses": {"200": ok("Alive.", ref("Health"))},
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
                    "200": ok("Ready.", ref("Ready")),
                    **errors(),
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
                    "200": ok("All plugins (one page).", ref("PluginPage")),
                    **errors(s403=FORBIDDEN),
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
                        query(name, {"type": "string"}, f"Only rows with this `{name}`.")
                        for name in ("action", "actor", "project", "file_id", "request_id")
                    ),
                    query(
                        "outcome",
                        {"type": "string"},
                        "Only rows with this outcome (`ok`, `error`, `denied`).",
                    ),
                    query("since", TIME_FILTER, "Rows at or after this time. " + TIME_RULES),
                    query("until", TIME_FILTER, "Rows before this time. " + TIME_RULES),
                    LIMIT,
                    CURSOR,
                ],
                "responses": {
                    "200": ok("One page of rows.", ref("AuditPage")),
                    **errors(s400=["invalid_query", "invalid_cursor"], s403=FORBIDDEN),
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
                    query("destination", {"type": "string"}, "Only this notifier's."),
                    LIMIT,
                    CURSOR,
                ],
                "responses": {
                    "200": ok("One page of dead letters.", ref("DeadLetterPage")),
                    **errors(s400=["invalid_query", "invalid_cursor"], s403=FORBIDDEN),
                },
            }
        },
        "/v1/events/dead/{dead_id}/redeliver": {
            "post": {
                "tags": ["events"],
                "operationId": "redeliverDeadLetter",
                "summary": "Redeliver a dead letter",
                "description": "Queue the event again with fresh attempts. Admin.",
                "parameters": [path_param("dead_id", {"type": "string"}, "A dead letter's `id`.")],
                "responses": {
                    "202": ok("Queued again.", ref("Redelivered")),
                    **errors(s403=FORBIDDEN, s404=["dead_letter_not_found", NO_ROUTE]),
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
                    query(
                        "status", {"type": "string", "enum": list(schemas.FILE_STATUSES)}, "Status."
                    ),
                    query(
                        "filename",
                        {"type": "string"},
                        "Case-insensitive substring of the filename.",
                    ),
                    param(
                        "meta",
                        "query",
                        META_QUERY_SCHEMA,
                        "`meta.<key>=<value>`: files whose metadata has exactly that value; "
                        "several must all match. " + META_RULES,
                        style="form",
                        explode=True,
                    ),
                    query("created_after", TIME_FILTER, "Created at or after. " + TIME_RULES),
                    query("created_before", TIME_FILTER, "Created before. " + TIME_RULES),
                    query(
                        "deleted",
                        {"type": "string", "enum": ["exclude", "include", "only"]},
                        "Soft-deleted files: left out (default), included, or only they.",
                    ),
                    LIMIT,
                    CURSOR,
                ],
                "responses": {
                    "200": ok("One page of files.", ref("FilePage")),
                    **errors(
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
                    "200": ok("The record.", record),
                    **errors(s404=["file_not_found", NO_ROUTE]),
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
                    query(
                        "purge",
                        {"type": "boolean", "default": False},
                        "`true`/`1` purges; `false`/`0` (default) soft-deletes; any case.",
                    ),
                ],
                "responses": {
                    "200": ok("The record after the change.", record),
                    **errors(
                        s400=["invalid_query"],
                        s403=STORAGE_403,
                        s404=["file_not_found", NO_ROUTE],
                        s409=["file_purged"],
                        s502=STORAGE_502,
                        s503=STORAGE_503,
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
                    query(
                        "expires",
                        {"type": "integer", "minimum": 1, "maximum": MAX_EXPIRY_S, "default": 900},
                        "Lifetime of the URL in seconds (at most 7 days; the backend may clamp "
                        "it further).",
                    ),
                ],
                "responses": {
                    "307": ok("Where the bytes are.", Location=LOCATION),
                    **errors(
                        s400=["invalid_query"],
                        s403=STORAGE_DENIED,
                        s404=["file_not_found", "file_deleted", NO_ROUTE],
                        s502=STORAGE_502,
                        s503=STORAGE_503,
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
                    param(
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
                        Content_Range=header(
                            "`bytes <first>-<last>/<size>`",
                            {"type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$"},
                        ),
                    ),
                    **errors(
                        s403=STORAGE_DENIED,
                        s404=["file_not_found", "file_deleted", "object_not_found", NO_ROUTE],
                        s416=["range_not_satisfiable"],
                        s502=STORAGE_502,
                        s503=STORAGE_503,
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
                    "200": ok("The record after the change.", record),
                    **errors(
                        s403=FORBIDDEN,
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
                "parameters": [FILE_ID, STEP],
                "responses": {
                    "202": ok("Queued.", record),
                    **errors(
                        s400=["storage_invalid", "unknown_step"],
                        s403=STORAGE_403,
                        s404=["file_not_found", "file_deleted", "object_not_found", NO_ROUTE],
                        s502=STORAGE_502,
                        s503=STORAGE_503,
                    ),
                },
            }
        },
        **pipeline_paths(),
        **upload_sessions(),
        **web_operations(),
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
                    **errors(s404=[NO_ROUTE]),
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
                    "200": ok("The document.", {"type": "object", "required": ["openapi"]}),
                    **errors(),
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
                    **errors(),
                },
            }
        },
    }


def _not_ready() -> Schema:
    """``/ready``'s 503: its own body when a check fails, an error when no token can be checked."""
    response = error(
        "Not ready (a check failed or the storage circuit is open); or the database could "
        "not be reached to check the token (an error).",
        ["database_unavailable"],
        Retry_After=RETRY_AFTER,
    )
    media = response["content"][JSON]
    media["schema"] = {"anyOf": [ref("Ready"), media["schema"]]}
    return response


def _content(description: str, **headers: Schema) -> Schema:
    response = ok(
        description,
        None,
        Accept_Ranges=header("`bytes`", {"type": "string", "const": "bytes"}),
        Content_Disposition=header(
            "`attachment` with the filename (ASCII fallback and `filename*` UTF-8).",
            {"type": "string"},
        ),
        ETag=header("The SHA-256, quoted.", {"type": "string"}, required=False),
        **headers,
    )
    response["content"] = {
        "*/*": {
            "schema": {"type": "string", "format": "binary"},
            "x-description": "The file's own `content_type`, else application/octet-stream.",
        }
    }
    return response
