"""The file record: the one JSON shape that the API, the CLI and events all return."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aecflow import schemas
from aecflow.schemas import PROCESSING_KEYS

__all__ = ["PROCESSING_KEYS", "FileRecord", "Page", "result_warnings"]


def result_warnings(result: Any) -> list[str]:
    """The processor result's top-level ``warnings`` (a list of strings), else ``[]``.

    Derived when the record is read, for every processor and every record already stored,
    so a summary built from part of a file is flagged wherever the record is shown.
    """
    found = result.get("warnings") if isinstance(result, Mapping) else None
    if not isinstance(found, list):
        return []
    return [item for item in found if isinstance(item, str)]


#: Step outcomes that do not fail the file.
FINE = ("succeeded", "skipped")


def steps_by_name(stored: Any) -> dict[str, dict[str, Any]]:
    """The ``steps`` column (a list, so that JSONB keeps pipeline order) as name -> step."""
    steps: dict[str, dict[str, Any]] = {}
    for item in stored or ():
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            steps[item["name"]] = {k: v for k, v in item.items() if k != "name"}
    return steps


def steps_column(steps: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The inverse of :func:`steps_by_name`."""
    return [{"name": name, **dict(step)} for name, step in steps.items()]


def failure_of(
    status: str, processing: Mapping[str, Any], steps: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any] | None:
    """Which step made a ``failed`` file fail, and why (the first in pipeline order)."""
    if status != "failed":
        return None
    for name, step in steps.items():
        if step.get("outcome") is not None and step["outcome"] not in FINE:
            return {"step": name, "outcome": step["outcome"], "error": step.get("error")}
    if processing.get("outcome") not in (None, *FINE):
        return {
            "step": processing.get("processor") or "",
            "outcome": processing["outcome"],
            "error": processing.get("error"),
        }
    return None


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    project: str
    filename: str
    size: int
    sha256: str
    content_type: str | None
    status: str
    metadata: Mapping[str, str]
    processing: Mapping[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None
    purged_at: dt.datetime | None
    storage_backend: str
    storage_key: str
    steps: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> FileRecord:  # a RowMapping or a dict
        processing: dict[str, Any] = {key: None for key in PROCESSING_KEYS} | dict(
            row["processing"] or {}
        )
        processing["warnings"] = result_warnings(processing["result"])
        return cls(
            id=row["id"],
            project=row["project"],
            filename=row["filename"],
            size=row["size"],
            sha256=row["sha256"],
            content_type=row["content_type"],
            status=row["status"],
            metadata=dict(row["meta"] or {}),
            processing=processing,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            deleted_at=row["deleted_at"],
            purged_at=row["purged_at"],
            storage_backend=row["storage_backend"],
            storage_key=row["storage_key"],
            steps=steps_by_name(row.get("steps")),
        )

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def purged(self) -> bool:
        return self.purged_at is not None

    @property
    def ended(self) -> bool:
        """Every step (and the primary processing) has its final outcome."""
        return self.processing["outcome"] is not None and all(
            step.get("outcome") is not None for step in self.steps.values()
        )

    def as_dict(self) -> dict[str, Any]:
        """The public shape (``GET /v1/files/{id}``, ``aecflow files show --json``, events)."""
        return _dump(self.model())

    def model(self) -> schemas.FileRecord:
        return schemas.FileRecord.model_validate(self.fields())

    def fields(self) -> dict[str, Any]:
        """What :class:`aecflow.schemas.FileRecord` is made of (times still as datetimes)."""
        return {
            "id": self.id,
            "project": self.project,
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "status": self.status,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "deleted_at": self.deleted_at,
            "purged_at": self.purged_at,
            "processing": self.processing,
            "steps": self.steps,
            "failure": failure_of(self.status, self.processing, self.steps),
        }


def _dump(model: schemas.FileRecord | schemas.FilePage) -> dict[str, Any]:
    # unset: ``processing`` keys that a run did not write (``attempts``) stay out
    return model.model_dump(mode="json", exclude_unset=True)


def as_json(item: FileRecord | Page) -> bytes:
    """The same shape as ``as_dict``, encoded by pydantic straight to JSON: a page of 500
    records with IFC results in about a third of the time ``json.dumps`` of the dict takes."""
    return item.model().model_dump_json(exclude_unset=True).encode()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``next_cursor`` is ``None`` on the last page."""

    items: list[FileRecord]
    next_cursor: str | None

    def as_dict(self) -> dict[str, Any]:
        """Validated as one page: one call into pydantic, not one per record."""
        return _dump(self.model())

    def model(self) -> schemas.FilePage:
        page = {"items": [item.fields() for item in self.items], "next_cursor": self.next_cursor}
        return schemas.FilePage.model_validate(page)
