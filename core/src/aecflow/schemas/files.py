"""A stored file's record and its processing summary (``GET /v1/files/{id}``)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from aecflow.processing import Outcome
from aecflow.schemas.common import DateTime, IsoTime, Metadata, Project, Shape, Uuid

#: The file statuses scripts rely on (DESIGN.md), sorted.
FILE_STATUSES = ("failed", "processed", "processing", "stored")
FileStatusName = Literal["failed", "processed", "processing", "stored"]
OUTCOMES = tuple(outcome.value for outcome in Outcome)

Item = TypeVar("Item")


class Processing(BaseModel):
    """The last processing run; every key is present, `null` until known."""

    # a run may add keys of its own; they are kept as they are
    model_config = ConfigDict(extra="allow")

    processor: str | None
    outcome: str | None = Field(
        description="`null` while processing is pending or being retried.",
        json_schema_extra={"enum": [*OUTCOMES, None]},
    )
    error: str | None
    started_at: IsoTime | None
    finished_at: IsoTime | None
    duration_s: float | None = Field(json_schema_extra={"minimum": 0})
    result: Any = Field(
        description="What the processor returned (JSON), or `null`. Beside an "
        "`invalid_input` error it may hold what could still be read. The `ifc` "
        "processor's `quantities` is class -> quantity name -> "
        '`{"value": number, "unit": "m"|"m2"|"m3"|"kg"|"s"|null, "count": integer}` '
        "(SI totals; see the processor's README)."
    )
    warnings: list[str] = Field(
        description="The result's own `warnings` (a partial or empty read, for "
        "example); `[]` when there are none. A run can succeed with warnings."
    )
    attempts: int | None = Field(default=None, ge=0)


#: The keys of ``processing`` that every record carries, in order.
PROCESSING_KEYS = tuple(name for name in Processing.model_fields if name != "attempts")


class FileRecord(Shape):
    """A stored file. Purged files keep their id, project, size and times; filename and sha256
    are emptied, metadata and processing cleared."""

    id: Uuid
    project: Project
    filename: str = Field(description="Empty once purged.")
    size: int = Field(ge=0)
    sha256: str = Field(json_schema_extra={"pattern": "^([0-9a-f]{64})?$"})
    content_type: str | None
    status: FileStatusName
    metadata: Metadata
    created_at: DateTime
    updated_at: DateTime
    deleted_at: DateTime | None
    purged_at: DateTime | None
    processing: Processing


class Page(Shape, Generic[Item]):
    """One page of a listing."""

    items: list[Item]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; `null` on the last."
    )


class FilePage(Page[FileRecord]):
    """One page of files."""
