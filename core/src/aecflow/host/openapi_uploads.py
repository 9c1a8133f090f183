"""The upload-session operations of the OpenAPI document (docs/uploads.md)."""

from __future__ import annotations

from aecflow.host.openapi_parts import (
    CONTENT_SHA256,
    DECLARED_SHA256,
    DIGEST,
    JSON,
    LOCATION,
    NO_ROUTE,
    PROJECT,
    STORAGE_403,
    STORAGE_502,
    STORAGE_503,
    STORAGE_DENIED,
    UPLOAD_ID,
    Schema,
    errors,
    ok,
    path_param,
    query,
    ref,
)
from aecflow.parts import MAX_PARTS


def _live_session() -> Schema:
    """A session as ``GET``/``POST`` answer it: with its parts exactly while it is open."""
    progress = ("parts", "parts_received", "bytes_received")
    return {
        "allOf": [
            ref("UploadSession"),
            {
                "if": {"properties": {"status": {"const": "open"}}},
                "then": {"required": list(progress)},
                "else": {"properties": dict.fromkeys(progress, False)},
            },
        ]
    }


def upload_sessions() -> dict[str, dict[str, Schema]]:
    """Resumable uploads (docs/uploads.md): open, send parts, complete or abort."""
    session = _live_session()
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
                    "content": {JSON: {"schema": ref("NewUploadSession")}},
                },
                "responses": {
                    "201": ok("Opened.", session, Location=LOCATION),
                    **errors(
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
                        s403=STORAGE_403,
                        s404=["project_not_found", NO_ROUTE],
                        s413=["too_large"],
                        s415=["unsupported_file"],
                        s429=["upload_quota_exceeded"],
                        s502=STORAGE_502,
                        s503=STORAGE_503,
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
                    query(
                        "sha256",
                        {"type": "string", "anyOf": [DECLARED_SHA256, {"maxLength": 0}]},
                        "Only sessions that declared this SHA-256 (hex). Empty: any.",
                    ),
                    query("filename", {"type": "string"}, "Only this exact filename. Empty: any."),
                    query(
                        "size", {"type": "integer", "minimum": 0}, "Only files of this many bytes."
                    ),
                ],
                "responses": {
                    "200": ok("The sessions.", ref("UploadSessionList")),
                    **errors(
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
                    "200": ok("The session.", session),
                    **errors(
                        s403=STORAGE_DENIED,
                        s404=["upload_not_found", NO_ROUTE],
                        s502=STORAGE_502,
                        s503=STORAGE_503,
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
                    "204": ok("Aborted."),
                    **errors(
                        s403=STORAGE_403,
                        s404=["upload_not_found", NO_ROUTE],
                        s409=["upload_completed", "upload_completing"],
                        s502=STORAGE_502,
                        s503=STORAGE_503,
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
                    path_param(
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
                    "200": ok("Stored.", ref("PartReceipt")),
                    **errors(
                        s400=[
                            "invalid_checksum",
                            "invalid_part_number",
                            "part_size_mismatch",
                            "checksum_mismatch",
                            "storage_invalid",
                        ],
                        s403=STORAGE_403,
                        s404=["upload_not_found", NO_ROUTE],
                        s409=[
                            "upload_aborted",
                            "upload_completed",
                            "upload_completing",
                            "direct_upload",
                        ],
                        s410=["upload_expired"],
                        s429=["too_many_uploads_for_token"],
                        s502=STORAGE_502,
                        s503=["too_many_uploads", *STORAGE_503],
                        s507=["insufficient_storage"],
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
                    "200": ok("Already completed: the file.", ref("FileRecord"), Location=LOCATION),
                    "201": ok(
                        "Published; processing is queued.", ref("FileRecord"), Location=LOCATION
                    ),
                    **errors(
                        s400=[
                            "part_size_mismatch",
                            "checksum_mismatch",
                            "size_mismatch",
                            "storage_invalid",
                        ],
                        s403=STORAGE_403,
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
                        s502=STORAGE_502,
                        s503=STORAGE_503,
                    ),
                },
            }
        },
    }
