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


class Step(BaseModel):
    """One step of the file's pipeline: its last run, `outcome` `null` until it ended."""

    model_config = ConfigDict(extra="allow")

    outcome: str | None = Field(
        description="`null` while the step waits, runs or is retried; `skipped` when a step "
        "it runs after did not succeed (`error` names it).",
        json_schema_extra={"enum": [*OUTCOMES, None]},
    )
    error: str | None = None
    started_at: IsoTime | None = None
    finished_at: IsoTime | None = None
    duration_s: float | None = Field(default=None, json_schema_extra={"minimum": 0})
    result: Any = Field(default=None, description="What the step's processor returned (JSON).")
    attempts: int | None = Field(default=None, ge=0)
    after: list[str] = Field(
        default_factory=list, description="Steps whose results this one reads and waits for."
    )


class Failure(BaseModel):
    """Why a `failed` file failed: its first step (in pipeline order) that did not succeed."""

    step: str
    outcome: str = Field(json_schema_extra={"enum": list(OUTCOMES)})
    error: str | None


class Artifact(Shape):
    """A file derived by a step, stored beside the file (`/artifacts/{name}/content`)."""

    name: str
    step: str
    media_type: str
    size: int = Field(ge=0)
    sha256: str = Field(json_schema_extra={"pattern": "^[0-9a-f]{64}$"})
    created_at: DateTime


class ArtifactList(Shape):
    """A file's artifacts, by name."""

    items: list[Artifact]


class Pipeline(Shape):
    """The processors a project's files run through, and where that list comes from."""

    project: Project
    pipeline: list[str] | None = Field(
        description="`null`: the first processor that accepts the file, alone."
    )
    source: Literal["api", "project_config", "config", "default"]


class PipelineUpdate(BaseModel):
    """`PUT /v1/projects/{project}/pipeline`: installed processor names, in order."""

    model_config = ConfigDict(extra="forbid")

    pipeline: list[str] = Field(min_length=1, max_length=32)


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
    processing: Processing = Field(description="The primary (first) step's run.")
    steps: dict[str, Step] = Field(
        description="Every step of the file's pipeline by name, in pipeline order "
        "(`{}` for files stored before pipelines).",
    )
    failure: Failure | None = Field(
        description="Set when `status` is `failed`: which step failed and why."
    )


class Page(Shape, Generic[Item]):
    """One page of a listing."""

    items: list[Item]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; `null` on the last."
    )


class FilePage(Page[FileRecord]):
    """One page of files."""
