"""The ``files`` table: insert, update, scrub, fetch, search and paginate.

Listing orders by id descending (UUIDv7: newest first) and the cursor is the last id seen, so a
page is one index range scan whatever the table size, and pages never repeat or skip a row
while others insert.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow import validation
from aecflow.errors import InvalidInput
from aecflow.store.records import FileRecord, Page
from aecflow.store.schema import files, uploads
from aecflow.store.statuses import FileStatus

MAX_PAGE = 1000
STATUSES = frozenset({"stored", "processing", "processed", "failed"})


@dataclass(frozen=True, slots=True)
class FileQuery:
    project: str
    status: str | None = None
    filename_contains: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    #: ``"exclude"`` (default), ``"include"`` or ``"only"`` soft-deleted files.
    deleted: str = "exclude"
    limit: int = 50
    cursor: str | None = None

    def validated(self) -> FileQuery:
        validation.project_name(self.project)
        validation.metadata(self.metadata)
        if self.status is not None and self.status not in STATUSES:
            raise InvalidInput(
                f"unknown status {self.status!r}; use one of {sorted(STATUSES)}",
                code="invalid_query",
            )
        if self.deleted not in ("exclude", "include", "only"):
            raise InvalidInput(
                "deleted must be 'exclude', 'include' or 'only'", code="invalid_query"
            )
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="invalid_query")
        for value in (self.created_after, self.created_before):
            if value is not None and value.tzinfo is None:
                raise InvalidInput("created range needs timezone-aware times", code="invalid_query")
        return self


def encode_cursor(file_id: str) -> str:
    return base64.urlsafe_b64encode(file_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII input
        text = ""
    # Every id is a UUID string: anything else (NUL bytes break PostgreSQL) is no cursor.
    if len(text) != 36 or not set(text) <= _ID_CHARS:
        raise InvalidInput("invalid cursor", code="invalid_cursor")
    return text


_ID_CHARS = frozenset("0123456789abcdefABCDEF-")


async def get(conn: AsyncConnection, file_id: str) -> FileRecord | None:
    row = (await conn.execute(sa.select(files).where(files.c.id == file_id))).mappings().first()
    return FileRecord.from_row(row) if row else None


async def search(conn: AsyncConnection, query: FileQuery) -> Page:
    query = query.validated()
    stmt = search_statement(query, conn.dialect.name)
    rows = (await conn.execute(stmt)).mappings().all()
    items = [FileRecord.from_row(row) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return Page(items, encode_cursor(items[-1].id) if more and items else None)


def search_statement(query: FileQuery, dialect: str) -> sa.Select[Any]:
    """The SELECT behind :func:`search` (one row more than the page, to see if more follow).

    ``filename_contains`` is a case-insensitive substring with ``%``, ``_`` and the escape
    character taken literally: ``filename ILIKE '%' || :term || '%' ESCAPE '/'`` on PostgreSQL,
    which the pg_trgm index ``ix_files_filename_trgm`` serves (migration 0006), and
    ``lower(filename) LIKE lower(...)`` on SQLite.
    """
    stmt = sa.select(files).where(files.c.project == query.project, files.c.purged_at.is_(None))
    if query.deleted == "exclude":
        stmt = stmt.where(files.c.deleted_at.is_(None))
    elif query.deleted == "only":
        stmt = stmt.where(files.c.deleted_at.is_not(None))
    if query.status:
        stmt = stmt.where(files.c.status == query.status)
    if query.filename_contains:
        stmt = stmt.where(files.c.filename.icontains(query.filename_contains, autoescape=True))
    for key, value in query.metadata.items():
        if dialect == "postgresql":
            meta = sa.type_coerce(files.c.meta, postgresql.JSONB)  # no CAST: the GIN index applies
            stmt = stmt.where(meta.contains({key: value}))  # JSONB @>
        else:
            stmt = stmt.where(sa.func.json_extract(files.c.meta, f'$."{key}"') == value)
    if query.created_after:
        stmt = stmt.where(files.c.created_at >= query.created_after)
    if query.created_before:
        stmt = stmt.where(files.c.created_at < query.created_before)
    if query.cursor:
        stmt = stmt.where(files.c.id < decode_cursor(query.cursor))
    return stmt.order_by(files.c.id.desc()).limit(query.limit + 1)


async def insert(
    conn: AsyncConnection,
    *,
    id: str,
    project: str,
    filename: str,
    size: int,
    sha256: str | None,
    content_type: str | None,
    storage_backend: str,
    storage_key: str,
    meta: Mapping[str, Any],
    processing: Mapping[str, Any],
    now: dt.datetime,
    steps: list[dict[str, Any]] | None = None,
) -> None:
    """A new file row, ``stored``: its bytes are already in storage."""
    await conn.execute(
        sa.insert(files).values(
            id=id,
            project=project,
            filename=filename,
            size=size,
            sha256=sha256,
            content_type=content_type,
            storage_backend=storage_backend,
            storage_key=storage_key,
            status=FileStatus.STORED,
            meta=dict(meta),
            processing=dict(processing),
            steps=steps,
            created_at=now,
            updated_at=now,
        )
    )


async def update(conn: AsyncConnection, file_id: str, **values: Any) -> None:
    """Set columns of one file row (callers pass ``updated_at``)."""
    await conn.execute(sa.update(files).where(files.c.id == file_id).values(**values))


async def set_deleted(
    conn: AsyncConnection, file_id: str, *, deleted: bool, now: dt.datetime
) -> bool:
    """Soft-delete (or restore) the row if it is not so already; ``False`` when another
    transaction did it first (the row lock makes the second one see the first's change)."""
    state = files.c.deleted_at.is_(None) if deleted else files.c.deleted_at.is_not(None)
    result = await conn.execute(
        sa.update(files)
        .where(files.c.id == file_id, files.c.purged_at.is_(None), state)
        .values(deleted_at=now if deleted else None, updated_at=now)
    )
    return bool(result.rowcount)


async def update_unless_purged(conn: AsyncConnection, file_id: str, **values: Any) -> None:
    """As :func:`update`, but a purged row keeps its scrub (a job finishing late, say)."""
    await conn.execute(
        sa.update(files).where(files.c.id == file_id, files.c.purged_at.is_(None)).values(**values)
    )


async def scrub(
    conn: AsyncConnection, file_id: str, *, deleted_at: dt.datetime, now: dt.datetime
) -> None:
    """Purge: keep the row (ids stay stable for events and audit) but nothing personal."""
    await update(
        conn,
        file_id,
        filename="",
        sha256="",
        content_type=None,
        meta={},
        processing=None,
        steps=None,
        storage_key="",
        deleted_at=deleted_at,
        purged_at=now,
        updated_at=now,
    )


async def claimed_ids(conn: AsyncConnection, ids: list[str]) -> set[str]:
    """Which of ``ids`` a file row or an upload session owns (primary-key and unique-index
    lookups): the orphan sweep keeps those objects."""
    if not ids:
        return set()
    owned = set((await conn.execute(sa.select(files.c.id).where(files.c.id.in_(ids)))).scalars())
    owned |= set(
        (await conn.execute(sa.select(uploads.c.file_id).where(uploads.c.file_id.in_(ids))))
        .scalars()
        .all()
    )
    return owned
