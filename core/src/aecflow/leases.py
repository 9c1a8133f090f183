"""Claiming work with leases: how any number of workers share one database.

A worker claims rows with one statement,
``UPDATE t SET lease_owner=…, lease_until=… WHERE id IN (SELECT id … FOR UPDATE SKIP LOCKED
LIMIT n) RETURNING *``, so two workers never claim the same row and neither waits for the
other. A lease that expires (the worker died) makes the row claimable again; whatever the
worker does afterwards is fenced on ``lease_owner``, so a worker that lost its lease cannot
overwrite a newer result. SQLite ignores ``FOR UPDATE``; its single writer makes the same
statement atomic there.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.db.schema import jobs, outbox
from aecflow.ids import uuid7


def new_owner(kind: str) -> str:
    """A lease owner id that says which host and process holds the lease."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid7()[-12:]}"


async def claim_jobs(
    conn: AsyncConnection, owner: str, limit: int, lease: dt.timedelta, now: dt.datetime
) -> list[Mapping[Any, Any]]:  # RowMappings
    """Claim up to ``limit`` queued (or abandoned) jobs; each claim counts one attempt."""
    claimable = sa.or_(
        sa.and_(jobs.c.status == "queued", jobs.c.available_at <= now),
        sa.and_(jobs.c.status == "running", jobs.c.lease_until < now),
    )
    candidates = (
        sa.select(jobs.c.id)
        .where(claimable)
        .order_by(jobs.c.available_at, jobs.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        sa.update(jobs)
        .where(jobs.c.id.in_(candidates.scalar_subquery()))
        .values(
            status="running",
            lease_owner=owner,
            lease_until=now + lease,
            attempts=jobs.c.attempts + 1,
            updated_at=now,
        )
        .returning(*jobs.c)
    )
    return list((await conn.execute(stmt)).mappings().all())


async def claim_outbox(
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
            outbox.c.status == "pending",
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


def held_by(table: sa.Table, row_id: str, owner: str) -> sa.ColumnElement[bool]:
    """The fence: a row is ours only while ``lease_owner`` is still us."""
    return sa.and_(table.c.id == row_id, table.c.lease_owner == owner)


async def renew(
    conn: AsyncConnection,
    table: sa.Table,
    row_id: str,
    owner: str,
    lease: dt.timedelta,
    now: dt.datetime,
) -> bool:
    """Extend our lease; ``False`` means another worker took the row over."""
    result = await conn.execute(
        sa.update(table).where(held_by(table, row_id, owner)).values(lease_until=now + lease)
    )
    return result.rowcount == 1
