"""Finding a file for the current actor: other projects' files do not exist for them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow import actor as actors
from aecflow import validation
from aecflow.actor import Role
from aecflow.errors import NotFound
from aecflow.ids import looks_like_id
from aecflow.store import files as catalog
from aecflow.store.records import FileRecord


async def require(conn: AsyncConnection, file_id: str) -> FileRecord:
    """The file, if it exists for the current actor; else 404 ``file_not_found``."""
    record = await catalog.get(conn, file_id) if looks_like_id(file_id) else None
    if record is None or not actors.current().sees(record.project):
        raise NotFound(f"file {file_id!r} does not exist", code="file_not_found")
    return record


def require_live(record: FileRecord) -> FileRecord:
    """The record, unless the file is deleted or purged (404 ``file_deleted``)."""
    if record.deleted or record.purged:
        raise NotFound(f"file {record.id!r} is deleted", code="file_deleted")
    return record


def writable_project(project: object) -> str:
    """The validated project name, if the current actor may upload to it (404, then 403)."""
    name = validation.project_name(project)
    who = actors.current()
    who.require_project(name)
    who.require(Role.WRITER, "uploading")
    return name
