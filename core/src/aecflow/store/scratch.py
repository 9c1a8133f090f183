"""Throw-away databases for test sessions: reach a server, create and drop a database, empty
every table. The kit's database fixtures (:mod:`aecflow.testing.databases`) use these, so the
SQL stays in the store like all other SQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from aecflow.store.schema import metadata


async def unreachable(url: str) -> str | None:
    """Why the server at ``url`` cannot be used (``None`` when a query goes through)."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def create_database(admin_url: str, name: str) -> str:
    """Create PostgreSQL database ``name`` through ``admin_url``; returns its URL."""
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin_url).set(database=name)
    return url.render_as_string(hide_password=False)


async def drop_database(admin_url: str, name: str) -> None:
    await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def truncate_all(url: str) -> None:
    """Empty every aecflow table of the PostgreSQL database at ``url`` (if migrated)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            exists = await conn.run_sync(lambda c: sa.inspect(c).has_table("files"))
            if exists:
                names = ", ".join(t.name for t in metadata.sorted_tables)
                await conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def inserts_refused(engine: AsyncEngine, table: str = "outbox") -> AsyncIterator[None]:
    """A real database error inside a transaction: a trigger refuses every insert into
    ``table`` until the block ends."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    f"RAISE EXCEPTION '{table} refused'; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                sa.text(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW "
                    "EXECUTE FUNCTION refuse()"
                )
            )
        else:
            await conn.execute(
                sa.text(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} refused'); END"
                )
            )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            on_table = f" ON {table}" if postgres else ""
            await conn.execute(sa.text(f"DROP TRIGGER refuse{on_table}"))
            if postgres:
                await conn.execute(sa.text("DROP FUNCTION refuse()"))


async def table_rows(conn: AsyncConnection, table: str) -> list[dict[str, Any]]:
    """Every row of aecflow table ``table`` with all its columns, by id: for test harnesses
    that check a whole run (chaos, benches), never for the service itself."""
    source = metadata.tables[table]
    order = source.c.id if "id" in source.c else next(iter(source.primary_key.columns))
    return [dict(row) for row in (await conn.execute(sa.select(source).order_by(order))).mappings()]


async def server_gauges(conn: AsyncConnection) -> dict[str, int]:
    """PostgreSQL's size of this database and the connections open to it (soak samples)."""
    size = await conn.scalar(sa.text("SELECT pg_database_size(current_database())"))
    count = await conn.scalar(
        sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
    )
    return {"database_bytes": int(size or 0), "connections": int(count or 0)}
