"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import functools

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from aecflow.store import engine as db
from aecflow.store.schema import include_object, metadata


def schema_diff(sync_connection) -> list:
    only_this_dialect = functools.partial(include_object, dialect=sync_connection.dialect.name)
    context = MigrationContext.configure(
        sync_connection, opts={"compare_type": True, "include_object": only_this_dialect}
    )
    return compare_metadata(context, metadata)


async def test_migrations_match_the_models_and_are_idempotent(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine)
        await db.upgrade(engine)  # a second host starting: nothing to do, no error
        async with engine.connect() as conn:
            assert await db.current_revision(conn) == db.head_revision()
            diff = await conn.run_sync(schema_diff)
    finally:
        await engine.dispose()
    assert diff == []
