"""Engine creation and migrations for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from aecflow.validation import without_surrogates

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Arbitrary constant: the PostgreSQL advisory lock that serialises concurrent upgrades.
MIGRATION_LOCK_ID = 0x61656366


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine with the pragmas SQLite needs for concurrent use."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": 30}, json_deserializer=_sqlite_json
        )
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, echo=echo, pool_pre_ping=True)


# Lone surrogates are refused on every write, but SQLite took them from older versions: as
# ``\udc00`` escapes in JSON text, or as the bytes of ``char(0xDC00)`` in a text column. Decoded
# as is, such a row is a 500 (or a decode error) on every list, get and delete that touches it,
# so they are read as U+FFFD here, once, for the host, events, audit and CLI alike.
# (PostgreSQL refuses them at write time; its rows need nothing.)


def _sqlite_json(text: str) -> Any:
    value = json.loads(text)
    return without_surrogates(value) if "\\ud" in text.lower() else value


def _sqlite_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return without_surrogates(raw.decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.driver_connection.text_factory = _sqlite_text
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; busy_timeout waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run from several hosts at once."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def ping(engine: AsyncEngine) -> None:
    """Connect and run a trivial query: raises if the database cannot be reached."""
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


async def current_revision(conn: AsyncConnection) -> str | None:
    return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
