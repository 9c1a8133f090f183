"""The ``audit_log`` table: appending rows (hash-chained or not), searching and walking it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.store.schema import audit_log

#: Arbitrary constant: the advisory lock that serialises hash-chained audit writes.
CHAIN_LOCK_ID = 0x61756474
#: The columns a search may match exactly.
MATCHED = ("action", "actor", "project", "file_id", "outcome", "request_id")


async def last_hash(conn: AsyncConnection) -> str | None:
    """The newest row's hash, after taking the chain's lock (PostgreSQL) for this transaction."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": CHAIN_LOCK_ID})
    return await conn.scalar(
        sa.select(audit_log.c.row_hash).order_by(audit_log.c.id.desc()).limit(1)
    )


async def insert(conn: AsyncConnection, row: Mapping[str, Any]) -> None:
    """Append one row, in the caller's transaction."""
    await conn.execute(sa.insert(audit_log).values(**row))


async def insert_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Append several rows in one statement, in the caller's transaction."""
    await conn.execute(sa.insert(audit_log), rows)


async def page(
    conn: AsyncConnection,
    *,
    limit: int,
    before_id: str | None,
    projects: Iterable[str] | None,
    matches: Mapping[str, Any],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows, newest first, older than ``before_id`` when given."""
    stmt = sa.select(audit_log)
    if projects is not None:  # an admin of some projects reads only their rows
        stmt = stmt.where(audit_log.c.project.in_(sorted(projects)))
    for key in MATCHED:
        if matches.get(key):
            stmt = stmt.where(audit_log.c[key] == matches[key])
    if since:
        stmt = stmt.where(audit_log.c.at >= since)
    if until:
        stmt = stmt.where(audit_log.c.at < until)
    if before_id:
        stmt = stmt.where(audit_log.c.id < before_id)
    stmt = stmt.order_by(audit_log.c.id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(stmt)).mappings()]


async def oldest_first(conn: AsyncConnection) -> AsyncGenerator[Mapping[Any, Any]]:
    """Every row, oldest first, streamed (the chain may be long)."""
    result = await conn.stream(sa.select(audit_log).order_by(audit_log.c.id))
    async for row in result.mappings():
        yield row
