"""Claiming work with leases: how any number of workers share one database.

A worker claims rows with one statement,
``UPDATE t SET lease_owner=…, lease_until=… WHERE id IN (SELECT id … FOR UPDATE SKIP LOCKED
LIMIT n) RETURNING *``, so two workers never claim the same row and neither waits for the
other. A lease that expires (the worker died) makes the row claimable again, unless that claim
used its last attempt: :func:`aecflow.store.jobs.expire` ends such a job instead, so it is never
run again. Whatever the worker does afterwards is fenced on ``lease_owner`` (jobs also on their
attempt number: one process may claim its own expired job again), so a worker that lost its
lease cannot overwrite a newer result. SQLite ignores ``FOR UPDATE``; its single writer
makes the same statement atomic there.
"""

from __future__ import annotations

import datetime as dt
import os
import socket

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.ids import uuid7


def new_owner(kind: str) -> str:
    """A lease owner id that says which host and process holds the lease."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid7()[-12:]}"


def held_by(table: sa.Table, row_id: str, owner: str) -> sa.ColumnElement[bool]:
    """The fence: a row is ours only while ``lease_owner`` is still us."""
    return sa.and_(table.c.id == row_id, table.c.lease_owner == owner)


async def renew(
    conn: AsyncConnection,
    table: sa.Table,
    fence: sa.ColumnElement[bool],
    lease: dt.timedelta,
    now: dt.datetime,
) -> bool:
    """Extend our lease of the row ``fence`` (at least :func:`held_by`) selects; ``False``
    means it was taken over."""
    result = await conn.execute(sa.update(table).where(fence).values(lease_until=now + lease))
    return result.rowcount == 1
