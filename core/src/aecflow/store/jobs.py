"""The ``jobs`` table: queueing processing runs and claiming them under a lease.

See :mod:`aecflow.store.leases` for how claims let any number of workers share the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.ids import uuid7
from aecflow.store.schema import jobs
from aecflow.store.statuses import JobStatus

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


async def enqueue(
    conn: AsyncConnection,
    file_id: str,
    processor: str,
    traceparent: str | None,
    now: dt.datetime,
) -> None:
    """Queue one processing run of ``file_id`` by ``processor``, due now."""
    await conn.execute(
        sa.insert(jobs).values(
            id=uuid7(),
            file_id=file_id,
            processor=processor,
            traceparent=traceparent,
            status=JobStatus.QUEUED,
            attempts=0,
            available_at=now,
            created_at=now,
            updated_at=now,
        )
    )


async def active_count(conn: AsyncConnection, file_id: str) -> int:
    """How many of the file's jobs are queued or running."""
    count = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(jobs)
        .where(jobs.c.file_id == file_id, jobs.c.status.in_(ACTIVE))
    )
    return int(count or 0)


async def delete_queued(conn: AsyncConnection, file_id: str) -> None:
    """Drop the file's jobs that have not started (a purged file has nothing to process)."""
    await conn.execute(
        sa.delete(jobs).where(jobs.c.file_id == file_id, jobs.c.status == JobStatus.QUEUED)
    )


def _abandoned(now: dt.datetime) -> sa.ColumnElement[bool]:
    """Running, but nobody renewed the lease: the worker died or could not record its result."""
    return sa.and_(jobs.c.status == JobStatus.RUNNING, jobs.c.lease_until < now)


async def claim(
    conn: AsyncConnection,
    owner: str,
    limit: int,
    lease: dt.timedelta,
    now: dt.datetime,
    *,
    max_attempts: int,
) -> list[Mapping[Any, Any]]:  # RowMappings
    """Claim up to ``limit`` queued (or abandoned) jobs; each claim counts one attempt.

    An abandoned job whose ``attempts`` reached ``max_attempts`` is left to :func:`expire`:
    claiming it would run it once more than allowed, forever.
    """
    claimable = sa.or_(
        sa.and_(jobs.c.status == JobStatus.QUEUED, jobs.c.available_at <= now),
        sa.and_(_abandoned(now), jobs.c.attempts < max_attempts),
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
            status=JobStatus.RUNNING,
            lease_owner=owner,
            lease_until=now + lease,
            attempts=jobs.c.attempts + 1,
            updated_at=now,
        )
        .returning(*jobs.c)
    )
    return list((await conn.execute(stmt)).mappings().all())


async def expire(
    conn: AsyncConnection, limit: int, max_attempts: int, now: dt.datetime
) -> list[Mapping[Any, Any]]:  # RowMappings
    """End up to ``limit`` abandoned jobs that used their last attempt: ``failed``, unleased.

    Returns the rows as they were claimed (``updated_at`` is when the lost attempt began);
    the caller records the file's outcome in the same transaction. Rows another worker is
    ending are skipped, so each job ends once.
    """
    candidates = (
        sa.select(jobs.c.id)
        .where(_abandoned(now), jobs.c.attempts >= max_attempts)
        .order_by(jobs.c.lease_until, jobs.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        sa.update(jobs)
        .where(jobs.c.id.in_(candidates.scalar_subquery()))
        .values(status=JobStatus.FAILED, lease_owner=None, lease_until=None)
        .returning(*jobs.c)
    )
    return list((await conn.execute(stmt)).mappings().all())
