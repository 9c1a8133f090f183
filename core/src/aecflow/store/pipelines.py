"""Per-file steps, project pipelines set through the API, and step artifacts (all the SQL of
processing pipelines)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.ids import uuid7
from aecflow.store.records import steps_by_name
from aecflow.store.schema import artifacts, files, project_pipelines


async def lock_file(conn: AsyncConnection, file_id: str) -> dict[str, dict[str, Any]] | None:
    """The file's steps by name (``{}`` when none), its row locked for the rest of the transaction
    (PostgreSQL; SQLite serialises writers anyway). ``None`` when the row is gone or purged.

    Jobs of one file finish concurrently: each reads and rewrites ``steps`` under this lock,
    so no step's outcome is lost and exactly one of them sees the pipeline end.
    """
    row = (
        await conn.execute(
            sa.select(files.c.steps, files.c.purged_at)
            .where(files.c.id == file_id)
            .with_for_update()
        )
    ).first()
    if row is None or row.purged_at is not None:
        return None
    return steps_by_name(row.steps)


async def project_pipeline(conn: AsyncConnection, project: str) -> list[str] | None:
    """The pipeline set for ``project`` through the API, or ``None``."""
    value = await conn.scalar(
        sa.select(project_pipelines.c.pipeline).where(project_pipelines.c.project == project)
    )
    return list(value) if value is not None else None


async def set_project_pipeline(
    conn: AsyncConnection, project: str, pipeline: list[str], now: dt.datetime
) -> None:
    await conn.execute(sa.delete(project_pipelines).where(project_pipelines.c.project == project))
    await conn.execute(
        sa.insert(project_pipelines).values(
            project=project, pipeline=list(pipeline), updated_at=now
        )
    )


async def delete_project_pipeline(conn: AsyncConnection, project: str) -> bool:
    result = await conn.execute(
        sa.delete(project_pipelines).where(project_pipelines.c.project == project)
    )
    return result.rowcount > 0


@dataclass(frozen=True, slots=True)
class ArtifactRow:
    id: str
    file_id: str
    step: str
    name: str
    media_type: str
    size: int
    sha256: str
    storage_key: str
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> ArtifactRow:
        return cls(**{name: row[name] for name in cls.__slots__})


async def list_artifacts(conn: AsyncConnection, file_id: str) -> list[ArtifactRow]:
    rows = await conn.execute(
        sa.select(artifacts).where(artifacts.c.file_id == file_id).order_by(artifacts.c.name)
    )
    return [ArtifactRow.of(row) for row in rows.mappings()]


async def get_artifact(conn: AsyncConnection, file_id: str, name: str) -> ArtifactRow | None:
    row = (
        (
            await conn.execute(
                sa.select(artifacts).where(artifacts.c.file_id == file_id, artifacts.c.name == name)
            )
        )
        .mappings()
        .first()
    )
    return ArtifactRow.of(row) if row else None


async def replace_step_artifacts(
    conn: AsyncConnection,
    file_id: str,
    step: str,
    new: list[dict[str, Any]],
    now: dt.datetime,
) -> list[str]:
    """Make ``new`` (name, media_type, size, sha256, storage_key) the step's artifacts.

    Rows the step wrote before, and rows of another step with one of the new names, go; the
    storage keys of every removed row are returned, for the caller to delete after commit.
    """
    names = [item["name"] for item in new]
    gone = sa.or_(artifacts.c.step == step, artifacts.c.name.in_(names))
    old = await conn.execute(
        sa.select(artifacts.c.storage_key).where(artifacts.c.file_id == file_id, gone)
    )
    keys = [row.storage_key for row in old]
    await conn.execute(sa.delete(artifacts).where(artifacts.c.file_id == file_id, gone))
    if new:
        await conn.execute(
            sa.insert(artifacts),
            [
                {"id": uuid7(), "file_id": file_id, "step": step, "created_at": now} | item
                for item in new
            ],
        )
    return keys


async def delete_artifacts(conn: AsyncConnection, file_id: str) -> None:
    await conn.execute(sa.delete(artifacts).where(artifacts.c.file_id == file_id))
