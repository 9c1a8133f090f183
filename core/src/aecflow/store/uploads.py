"""The ``uploads`` and ``upload_parts`` tables: upload sessions, their parts and their claims.

A session row is locked by updating it (:func:`touch_open`, :func:`claim`): that is what makes
the recording of a part and the ``complete`` claim of its session run one after the other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.storage import PartInfo
from aecflow.store.schema import upload_parts, uploads
from aecflow.store.statuses import UploadStatus

#: Arbitrary constant: the advisory lock that serialises the quota check of opening sessions.
QUOTA_LOCK_ID = 0x61657571
#: Sessions that count against the caps on open sessions.
ACTIVE = (UploadStatus.OPEN, UploadStatus.COMPLETING)


@dataclass(frozen=True, slots=True)
class UploadRow:
    """One session: what the server expects of the file, and where its parts go."""

    id: str
    project: str
    filename: str
    size: int
    #: The whole file's SHA-256 as declared (required for direct sessions).
    sha256: str | None
    part_size: int
    part_count: int
    #: Each part's declared SHA-256, when the client declared them.
    part_sha256: tuple[str, ...] | None
    content_type: str | None
    meta: Mapping[str, str]
    #: ``direct`` (parts go to the backend's URLs) or ``host``.
    transport: str
    storage_backend: str
    storage_key: str
    #: The backend's handle of its multipart upload.
    storage_upload_id: str
    file_id: str
    status: UploadStatus
    created_at: dt.datetime
    updated_at: dt.datetime
    expires_at: dt.datetime
    lease_until: dt.datetime | None = None
    cleaned_at: dt.datetime | None = None
    #: ``token:<id>`` of the actor that opened it, for the per-token caps.
    opened_by: str | None = None

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> UploadRow:  # a RowMapping or a dict
        part_sha256 = row["part_sha256"]
        return cls(
            **{name: row[name] for name in _UPLOAD_COLUMNS},
            part_sha256=None if part_sha256 is None else tuple(part_sha256),
            meta=dict(row["meta"] or {}),
            status=UploadStatus(row["status"]),
        )

    def values(self) -> dict[str, Any]:
        """The row's columns, as the table stores them."""
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        values["part_sha256"] = None if self.part_sha256 is None else list(self.part_sha256)
        values["meta"] = dict(self.meta)
        return values

    def part_length(self, number: int) -> int:
        """How many bytes part ``number`` (from 1) must have."""
        start = (number - 1) * self.part_size
        return min(self.part_size, self.size - start)

    def declared_part(self, number: int) -> str | None:
        """The SHA-256 the client declared for part ``number``, if it declared them."""
        return self.part_sha256[number - 1] if self.part_sha256 else None


_UPLOAD_COLUMNS = tuple(
    field.name
    for field in dataclasses.fields(UploadRow)
    if field.name not in ("part_sha256", "meta", "status")
)


@dataclass(frozen=True, slots=True)
class PartRow:
    """A part the host received and stored."""

    upload_id: str
    number: int
    size: int
    sha256: str
    etag: str | None
    received_at: dt.datetime

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> PartRow:
        return cls(**{field.name: row[field.name] for field in dataclasses.fields(cls)})

    def info(self) -> PartInfo:
        return PartInfo(self.number, self.size, self.sha256, self.etag)


# -- sessions ------------------------------------------------------------------------------


async def lock_quota(conn: AsyncConnection) -> None:
    """Serialise quota checks on PostgreSQL until ``conn`` commits. SQLite needs none: the
    insert that precedes the check takes its write lock."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": QUOTA_LOCK_ID})


async def insert(conn: AsyncConnection, row: UploadRow) -> None:
    await conn.execute(sa.insert(uploads).values(**row.values()))


async def open_totals(
    conn: AsyncConnection,
    now: dt.datetime,
    *,
    project: str | None = None,
    opened_by: str | None = None,
) -> tuple[int, int]:
    """How many unexpired open (or completing) sessions the project or the token has, and
    the bytes they declare."""
    column, value = (
        (uploads.c.project, project) if opened_by is None else (uploads.c.opened_by, opened_by)
    )
    count, declared = (
        await conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(uploads.c.size), 0)).where(
                column == value,
                uploads.c.status.in_(ACTIVE),
                uploads.c.expires_at > now,
            )
        )
    ).one()
    return int(count), int(declared)


async def get(conn: AsyncConnection, upload_id: str) -> UploadRow | None:
    query = sa.select(uploads).where(uploads.c.id == upload_id)
    row = (await conn.execute(query)).mappings().first()
    return None if row is None else UploadRow.of(row)


async def find_open(
    conn: AsyncConnection,
    project: str,
    now: dt.datetime,
    *,
    sha256: str | None = None,
    filename: str | None = None,
    size: int | None = None,
    limit: int = 100,
) -> list[UploadRow]:
    """Unexpired open sessions of ``project``, newest first, narrowed by what is given."""
    query = sa.select(uploads).where(
        uploads.c.project == project,
        uploads.c.status == UploadStatus.OPEN,
        uploads.c.expires_at > now,
    )
    if sha256:
        query = query.where(uploads.c.sha256 == sha256)
    if filename:
        query = query.where(uploads.c.filename == filename)
    if size is not None:
        query = query.where(uploads.c.size == size)
    rows = await conn.execute(query.order_by(uploads.c.id.desc()).limit(limit))
    return [UploadRow.of(row) for row in rows.mappings()]


def _claimable(now: dt.datetime) -> sa.ColumnElement[bool]:
    """Open, or completing under a lease that ran out."""
    return sa.or_(
        uploads.c.status == UploadStatus.OPEN,
        sa.and_(uploads.c.status == UploadStatus.COMPLETING, uploads.c.lease_until < now),
    )


async def touch_open(conn: AsyncConnection, upload_id: str, now: dt.datetime) -> bool:
    """Touch the session row if it is open (locking it until ``conn`` commits)."""
    result = await conn.execute(
        sa.update(uploads)
        .where(uploads.c.id == upload_id, uploads.c.status == UploadStatus.OPEN)
        .values(updated_at=now)
    )
    return result.rowcount == 1


async def claim(
    conn: AsyncConnection, upload_id: str, lease: dt.timedelta, now: dt.datetime
) -> bool:
    """Make the session ``completing`` for ``lease``, if it is unexpired and claimable."""
    result = await conn.execute(
        sa.update(uploads)
        .where(uploads.c.id == upload_id, uploads.c.expires_at > now, _claimable(now))
        .values(status=UploadStatus.COMPLETING, lease_until=now + lease, updated_at=now)
    )
    return result.rowcount == 1


async def resize(
    conn: AsyncConnection, upload_id: str, size: int, part_count: int, now: dt.datetime
) -> bool:
    """Set the size of an open session opened before its size was known (Uppy's S3 plugin
    never says it): what its parts add up to, just before it completes."""
    result = await conn.execute(
        sa.update(uploads)
        .where(uploads.c.id == upload_id, uploads.c.status == UploadStatus.OPEN)
        .values(size=size, part_count=part_count, updated_at=now)
    )
    return result.rowcount == 1


async def set_status(
    conn: AsyncConnection,
    upload_id: str,
    status: UploadStatus,
    now: dt.datetime,
    *,
    cleaned: bool = False,
) -> None:
    """Move the session to ``status``, unleased; ``cleaned`` when its parts are gone too."""
    values: dict[str, Any] = {"status": status, "lease_until": None, "updated_at": now}
    if cleaned:
        values["cleaned_at"] = now
    await conn.execute(sa.update(uploads).where(uploads.c.id == upload_id).values(**values))


async def mark_completed(conn: AsyncConnection, upload_id: str, now: dt.datetime) -> None:
    """The session published its file: ``completed``, and its part records dropped."""
    await set_status(conn, upload_id, UploadStatus.COMPLETED, now, cleaned=True)
    await conn.execute(sa.delete(upload_parts).where(upload_parts.c.upload_id == upload_id))


async def mark_cleaned(conn: AsyncConnection, upload_id: str, now: dt.datetime) -> None:
    """The backend's parts are removed: drop their records and say when."""
    await conn.execute(sa.delete(upload_parts).where(upload_parts.c.upload_id == upload_id))
    await conn.execute(sa.update(uploads).where(uploads.c.id == upload_id).values(cleaned_at=now))


async def expire_overdue(conn: AsyncConnection, now: dt.datetime) -> None:
    """Sessions past their expiry that nobody is completing become ``expired``."""
    await conn.execute(
        sa.update(uploads)
        .where(uploads.c.expires_at <= now, _claimable(now))
        .values(status=UploadStatus.EXPIRED, lease_until=None, updated_at=now)
    )


async def to_clean(conn: AsyncConnection, limit: int) -> list[UploadRow]:
    """Up to ``limit`` expired or aborted sessions whose parts are not removed yet."""
    rows = await conn.execute(
        sa.select(uploads)
        .where(
            uploads.c.status.in_([UploadStatus.EXPIRED, UploadStatus.ABORTED]),
            uploads.c.cleaned_at.is_(None),
        )
        .order_by(uploads.c.id)
        .limit(limit)
    )
    return [UploadRow.of(row) for row in rows.mappings()]


# -- parts ---------------------------------------------------------------------------------


async def parts(conn: AsyncConnection, upload_id: str) -> list[PartRow]:
    rows = await conn.execute(sa.select(upload_parts).where(upload_parts.c.upload_id == upload_id))
    return [PartRow.of(row) for row in rows.mappings()]


async def insert_part(
    conn: AsyncConnection, upload_id: str, part: PartInfo, now: dt.datetime
) -> None:
    await conn.execute(
        sa.insert(upload_parts).values(
            upload_id=upload_id,
            number=part.number,
            size=part.size,
            sha256=part.sha256,
            etag=part.etag,
            received_at=now,
        )
    )


async def delete_part(conn: AsyncConnection, upload_id: str, number: int) -> PartRow | None:
    """Remove the record of part ``number``; returns it, if there was one."""
    where = sa.and_(upload_parts.c.upload_id == upload_id, upload_parts.c.number == number)
    old = (await conn.execute(sa.select(upload_parts).where(where))).mappings().first()
    await conn.execute(sa.delete(upload_parts).where(where))
    return None if old is None else PartRow.of(old)
