"""The ``jobs`` table: queueing processing runs and claiming them under a lease.

See :mod:`aecflow.store.leases` for how claims let any number of workers share the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.ids import uuid7
from aecflow.store import leases
from aecflow.store.schema import jobs
from aecflow.store.statuses import JobStatus

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class JobRow:
    """One claimed ``jobs`` row, as the worker sees it."""

    id: str
    file_id: str
    processor: str
    status: JobStatus
    attempts: int
    available_at: dt.datetime
    lease_owner: str | None
    lease_until: dt.datetime | None
    last_error: str | None
    traceparent: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> JobRow:  # a RowMapping or a dict
        return cls(
            id=row["id"],
            file_id=row["file_id"],
            processor=row["processor"],
            status=JobStatus(row["status"]),
            attempts=row["attempts"],
            available_at=row["available_at"],
            lease_owner=row["lease_owner"],
            lease_until=row["lease_until"],
            last_error=row["last_error"],
            traceparent=row["traceparent"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


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


async def active_count(conn: AsyncConnection, file_id: str, processor: str | None = None) -> int:
    """How many of the file's jobs (of ``processor``, when given) are queued or running."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(jobs)
        .where(jobs.c.file_id == file_id, jobs.c.status.in_(ACTIVE))
    )
    if processor is not None:
        stmt = stmt.where(jobs.c.processor == processor)
    count = await conn.scalar(stmt)
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
) -> list[JobRow]:
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
    return [JobRow.of(row) for row in (await conn.execute(stmt)).mappings()]


async def expire(
    conn: AsyncConnection, limit: int, max_attempts: int, now: dt.datetime
) -> list[JobRow]:
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
    return [JobRow.of(row) for row in (await conn.execute(stmt)).mappings()]


async def count_by_status(conn: AsyncConnection, status: JobStatus) -> int:
    """How many jobs are in ``status`` (retries still pending, the queue-depth gauge)."""
    count = await conn.scalar(
        sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status == status)
    )
    return int(count or 0)


async def note_error(
    conn: AsyncConnection, job_id: str, error: str | None, now: dt.datetime
) -> None:
    """Keep why a job ended on the row itself."""
    await conn.execute(
        sa.update(jobs).where(jobs.c.id == job_id).values(last_error=error, updated_at=now)
    )


def _ours(job_id: str, owner: str, attempt: int) -> sa.ColumnElement[bool]:
    """The fence of one attempt: the owner, and the attempt number as the fencing token.

    One worker process claims under one owner id, so after its own lease expired it may claim
    the job again itself; the owner alone would then let the lost attempt renew, finish or
    release the new one.
    """
    return sa.and_(
        leases.held_by(jobs, job_id, owner),
        jobs.c.attempts == attempt,
        jobs.c.status == JobStatus.RUNNING,
    )


async def renew(
    conn: AsyncConnection,
    job_id: str,
    owner: str,
    attempt: int,
    lease: dt.timedelta,
    now: dt.datetime,
) -> bool:
    """Extend our lease of a job; ``False`` means the attempt was taken over or ended."""
    return await leases.renew(conn, jobs, _ours(job_id, owner, attempt), lease, now)


async def finish(
    conn: AsyncConnection,
    job_id: str,
    owner: str,
    attempt: int,
    now: dt.datetime,
    *,
    status: JobStatus,
    last_error: str | None,
    available_at: dt.datetime | None = None,
) -> bool:
    """End an attempt we still hold: done, failed, or queued again at ``available_at``.

    ``False`` means the lease was lost (fenced on the owner, the attempt and ``running``).
    """
    values: dict[str, Any] = {"status": status}
    if available_at is not None:
        values["available_at"] = available_at
    result = await conn.execute(
        sa.update(jobs)
        .where(_ours(job_id, owner, attempt))
        .values(lease_owner=None, lease_until=None, last_error=last_error, updated_at=now, **values)
    )
    return result.rowcount == 1


async def release(
    conn: AsyncConnection, job_id: str, owner: str, attempt: int, now: dt.datetime
) -> None:
    """Hand a job back unfinished: queued again, and the attempt does not count."""
    await conn.execute(
        sa.update(jobs)
        .where(_ours(job_id, owner, attempt))
        .values(
            status=JobStatus.QUEUED,
            lease_owner=None,
            lease_until=None,
            attempts=jobs.c.attempts - 1,
            available_at=now,
        )
    )
