"""The ``outbox`` table: events waiting for delivery, their claims, and dead letters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.store import leases
from aecflow.store.schema import outbox
from aecflow.store.statuses import OutboxStatus


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One claimed ``outbox`` row: an event for one destination, as the dispatcher sees it."""

    id: str
    event_id: str
    destination: str
    event_type: str
    project: str
    file_id: str | None
    payload: Mapping[str, Any]
    traceparent: str | None
    status: OutboxStatus
    attempts: int
    available_at: dt.datetime
    lease_owner: str | None
    lease_until: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> OutboxRow:  # a RowMapping or a dict
        return cls(
            id=row["id"],
            event_id=row["event_id"],
            destination=row["destination"],
            event_type=row["event_type"],
            project=row["project"],
            file_id=row["file_id"],
            payload=row["payload"],
            traceparent=row["traceparent"],
            status=OutboxStatus(row["status"]),
            attempts=row["attempts"],
            available_at=row["available_at"],
            lease_owner=row["lease_owner"],
            lease_until=row["lease_until"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            delivered_at=row["delivered_at"],
        )


async def insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Write outbox rows (one per destination of an event) in the caller's transaction."""
    await conn.execute(sa.insert(outbox), rows)


async def pending_count(conn: AsyncConnection, file_id: str) -> int:
    """How many of the file's events still wait for delivery."""
    count = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(outbox)
        .where(outbox.c.file_id == file_id, outbox.c.status == OutboxStatus.PENDING)
    )
    return int(count or 0)


async def dead_of_file(
    conn: AsyncConnection, file_id: str
) -> list[Mapping[Any, Any]]:  # RowMappings
    """The file's dead-lettered rows, oldest first."""
    rows = await conn.execute(
        sa.select(outbox)
        .where(outbox.c.file_id == file_id, outbox.c.status == OutboxStatus.DEAD)
        .order_by(outbox.c.id)
    )
    return list(rows.mappings())


async def dead_page(
    conn: AsyncConnection,
    *,
    limit: int,
    before_id: str | None,
    destination: str | None,
    projects: Iterable[str] | None,
) -> list[Mapping[Any, Any]]:  # RowMappings
    """Up to ``limit`` dead letters, newest first, older than ``before_id`` when given."""
    stmt = sa.select(outbox).where(outbox.c.status == OutboxStatus.DEAD)
    if projects is not None:
        stmt = stmt.where(outbox.c.project.in_(sorted(projects)))
    if destination:
        stmt = stmt.where(outbox.c.destination == destination)
    if before_id:
        stmt = stmt.where(outbox.c.id < before_id)
    stmt = stmt.order_by(outbox.c.id.desc()).limit(limit)
    return list((await conn.execute(stmt)).mappings())


async def redeliver(
    conn: AsyncConnection,
    *,
    ids: Iterable[str] | None,
    projects: Iterable[str] | None,
    now: dt.datetime,
) -> int:
    """Put dead letters back in the queue with their attempts reset; returns how many."""
    stmt = sa.update(outbox).where(outbox.c.status == OutboxStatus.DEAD)
    if projects is not None:
        stmt = stmt.where(outbox.c.project.in_(sorted(projects)))
    if ids is not None:
        stmt = stmt.where(outbox.c.id.in_(list(ids)))
    stmt = stmt.values(
        status=OutboxStatus.PENDING,
        attempts=0,
        available_at=now,
        lease_owner=None,
        lease_until=None,
    )
    return (await conn.execute(stmt)).rowcount


async def claim(
    conn: AsyncConnection,
    destination: str,
    owner: str,
    limit: int,
    lease: dt.timedelta,
    now: dt.datetime,
) -> list[OutboxRow]:
    """Claim up to ``limit`` due events for ``destination``; attempts count on delivery."""
    candidates = (
        sa.select(outbox.c.id)
        .where(
            outbox.c.status == OutboxStatus.PENDING,
            outbox.c.destination == destination,
            outbox.c.available_at <= now,
            sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now),
        )
        .order_by(outbox.c.available_at, outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        sa.update(outbox)
        .where(outbox.c.id.in_(candidates.scalar_subquery()))
        .values(lease_owner=owner, lease_until=now + lease)
        .returning(*outbox.c)
    )
    rows = [OutboxRow.of(row) for row in (await conn.execute(stmt)).mappings()]
    return sorted(rows, key=lambda row: row.id)


async def count_by_status(conn: AsyncConnection, status: OutboxStatus) -> int:
    """How many events are in ``status`` (the queue-depth gauge)."""
    count = await conn.scalar(
        sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == status)
    )
    return int(count or 0)


async def mark_delivered(
    conn: AsyncConnection, ids: Iterable[str], owner: str, now: dt.datetime
) -> set[str]:
    """Record delivery of the rows we still hold, in one statement; returns their ids."""
    result = await conn.execute(
        sa.update(outbox)
        .where(outbox.c.id.in_(list(ids)), outbox.c.lease_owner == owner)
        .values(
            status=OutboxStatus.DELIVERED,
            delivered_at=now,
            attempts=outbox.c.attempts + 1,
            last_error=None,
            lease_owner=None,
            lease_until=None,
        )
        .returning(outbox.c.id)
    )
    return set(result.scalars())


async def settle(conn: AsyncConnection, row_id: str, owner: str, **values: Any) -> bool:
    """Unlease a row we still hold and set ``values`` (a retry's time, dead, the error).

    ``False`` means the lease was lost and nothing changed.
    """
    result = await conn.execute(
        sa.update(outbox)
        .where(leases.held_by(outbox, row_id, owner))
        .values(lease_owner=None, lease_until=None, **values)
    )
    return bool(result.rowcount)


async def every_row(conn: AsyncConnection, destination: str | None = None) -> list[dict[str, Any]]:
    """Every row with all its columns, oldest first (``destination``'s only, if given): for
    tests and diagnostics that look at the whole table, never for delivery."""
    stmt = sa.select(outbox).order_by(outbox.c.id)
    if destination:
        stmt = stmt.where(outbox.c.destination == destination)
    return [dict(row) for row in (await conn.execute(stmt)).mappings()]
