"""Resumable upload sessions: what opening one takes and what a session looks like."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from aecflow.parts import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE
from aecflow.schemas.common import (
    DECLARED_SHA256_PATTERN,
    FILENAME_PATTERN,
    MAX_FILENAME,
    META_RULES,
    METADATA_SCHEMA,
    REF_TEMPLATE,
    SHA256_PATTERN,
    DateTime,
    Metadata,
    Project,
    Shape,
    Uuid,
)

SESSION_STATUSES = ("open", "completing", "completed", "aborted", "expired")
#: Present only while a session is open, and never in listings.
PROGRESS_KEYS = ("parts", "parts_received", "bytes_received")


class NewUploadSession(BaseModel):
    """What `POST /v1/projects/{project}/uploads` takes. Only `filename` and `size` are
    required; an optional field given as `null` counts as left out, and any other field is 400
    `invalid_json`."""

    # Types are checked here (strictly: ``"5"`` is not a size); values by the service, which
    # refuses each with its own code, whichever front-end called it.
    model_config = ConfigDict(extra="forbid", strict=True)

    filename: StrictStr = Field(
        description=f"Not empty, `.` or `..`; no control characters, `/` or `\\`; no whitespace "
        f"at either end; at most {MAX_FILENAME} bytes of UTF-8.",
        json_schema_extra={
            "minLength": 1,
            "maxLength": MAX_FILENAME,
            "pattern": FILENAME_PATTERN,
        },
    )
    size: StrictInt = Field(
        description="The file's size in bytes; above `[uploads] max_size` is 413.",
        json_schema_extra={"minimum": 1},
    )
    sha256: StrictStr | None = Field(
        default=None,
        description="The whole file's SHA-256 (hex), verified on completion by host sessions; "
        "required (400 `sha256_required`) when parts go straight to storage. Empty: not "
        "declared.",
        json_schema_extra={
            "anyOf": [
                {"type": "string", "pattern": DECLARED_SHA256_PATTERN},
                {"type": "string", "maxLength": 0},
                {"type": "null"},
            ]
        },
    )
    part_size: StrictInt | None = Field(
        default=None,
        description=f"Bytes per part (the last may be shorter); default `[uploads] part_size`, "
        f"grown to fit the file in {MAX_PARTS} parts. A size that needs more parts is 400 "
        "`invalid_part_size`.",
        json_schema_extra={"minimum": MIN_PART_SIZE, "maximum": MAX_PART_SIZE},
    )
    part_sha256: list[Any] | None = Field(
        default=None,
        description="One SHA-256 (hex) per part, in order; another count is 400 "
        "`invalid_checksum`.",
        json_schema_extra={
            "items": {"type": "string", "pattern": DECLARED_SHA256_PATTERN},
            "minItems": 1,
            "maxItems": MAX_PARTS,
        },
    )
    content_type: StrictStr | None = Field(default=None, description="The file's media type.")
    metadata: dict[str, Any] | None = Field(
        default=None, description=META_RULES, json_schema_extra=METADATA_SCHEMA
    )

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``UploadSessions.open`` beyond project, filename and size."""
        return self.model_dump(exclude={"filename", "size"})


class UploadPart(Shape):
    """One part of an open session. Parts not yet received say where to send them: `method`,
    `url` and `headers` (send exactly these headers)."""

    model_config = ConfigDict(
        json_schema_extra={
            "dependentRequired": {
                "method": ["url", "headers"],
                "url": ["method", "headers"],
                "headers": ["method", "url"],
            }
        }
    )

    number: int = Field(ge=1, le=MAX_PARTS)
    size: int = Field(ge=1, le=MAX_PART_SIZE, description="The bytes the part must have.")
    received: bool
    # where to send a missing part: set together, left out once the part is received
    method: str = Field(default=None, examples=["PUT"])  # type: ignore[assignment]
    url: str = Field(  # type: ignore[assignment]
        default=None,
        description="An absolute presigned URL (direct parts; no Authorization), or a path on "
        "this host to resolve against the URL the client uses (host parts; with the bearer "
        "token).",
        json_schema_extra={"format": "uri-reference"},
    )
    headers: dict[str, str] = Field(default=None)  # type: ignore[arg-type]


class UploadSession(Shape):
    """A resumable upload session (see docs/uploads.md). `parts`, `parts_received` and
    `bytes_received` are present only while the session is `open`, and never in listings."""

    model_config = ConfigDict(
        json_schema_extra={
            "dependentRequired": {
                name: [other for other in PROGRESS_KEYS if other != name] for name in PROGRESS_KEYS
            }
        }
    )

    id: Uuid
    project: Project
    filename: str
    size: int = Field(ge=1)
    sha256: str | None = Field(
        description="As declared.", json_schema_extra={"pattern": SHA256_PATTERN}
    )
    content_type: str | None
    metadata: Metadata
    part_size: int = Field(ge=MIN_PART_SIZE, le=MAX_PART_SIZE)
    part_count: int = Field(ge=1, le=MAX_PARTS)
    transport: Literal["host", "direct"] = Field(
        description="`host`: parts are `PUT` to this host; `direct`: to the storage backend's "
        "presigned URLs."
    )
    status: Literal["open", "completing", "completed", "aborted", "expired"] = Field(
        description="`completing` while a `complete` call is publishing it."
    )
    file_id: Uuid | None = Field(
        description="The published file's id once `completed`, else `null`."
    )
    created_at: DateTime
    expires_at: DateTime
    parts_received: int = Field(default=0, ge=0, le=MAX_PARTS)
    bytes_received: int = Field(default=0, ge=0)
    parts: list[UploadPart] = Field(
        default_factory=list,
        min_length=1,
        max_length=MAX_PARTS,
        description="Every part, in order.",
    )

    def view(self) -> dict[str, Any]:
        """The JSON shape: the progress keys only when they were given."""
        return self.model_dump(mode="json", exclude_unset=True)


#: A listed session: never its parts.
_LISTED = {
    "allOf": [
        {"$ref": REF_TEMPLATE.format(model="UploadSession")},
        {"properties": dict.fromkeys(PROGRESS_KEYS, False)},
    ]
}


class UploadSessionList(Shape):
    """Open sessions, newest first (at most 100), without their parts."""

    items: Annotated[
        list[UploadSession],
        Field(max_length=100, json_schema_extra={"items": _LISTED}),
    ]


class PartReceipt(Shape):
    """A part the host stored."""

    number: int = Field(ge=1, le=MAX_PARTS)
    size: int = Field(ge=1, le=MAX_PART_SIZE)
    sha256: str = Field(json_schema_extra={"pattern": SHA256_PATTERN})
