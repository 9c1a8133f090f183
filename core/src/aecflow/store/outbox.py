"""The ``outbox`` table: events waiting for delivery, their claims, and dead letters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.store.schema import outbox
from aecflow.store.statuses import OutboxStatus


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
) -> list[Mapping[Any, Any]]:  # RowMappings
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
    rows = (await conn.execute(stmt)).mappings().all()
    return sorted(rows, key=lambda row: row["id"])
