"""Shared fixtures: every flow test runs against real SQLite and real PostgreSQL.

PostgreSQL comes from ``AECFLOW_TEST_DATABASE_URL`` or the local server at 127.0.0.1:5432;
without one the PostgreSQL half is skipped loudly, and ``AECFLOW_REQUIRE_POSTGRES=1`` (set by
CI) turns that skip into a failure. Each test session gets its own database, dropped at the end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from aecflow.config import Settings
from aecflow.flow import Flow
from aecflow.store.schema import metadata

from .fakedist import FakeDists

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples" / "ifc"
LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def _admin_url() -> str:
    return os.environ.get("AECFLOW_TEST_DATABASE_URL", LOCAL_POSTGRES)


async def _try_connect(url: str) -> str | None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


async def _run_admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def run_sync(coro):
    """Run ``coro`` to completion from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    admin = _admin_url()
    problem = run_sync(_try_connect(admin))
    if problem:
        reason = f"PostgreSQL not reachable at {admin}: {problem}"
        if os.environ.get("AECFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"AECFLOW_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {reason} (set AECFLOW_TEST_DATABASE_URL)")
    name = f"aecflow_test_{uuid.uuid4().hex[:12]}"
    run_sync(_run_admin(admin, f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)
    yield url
    run_sync(_run_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            exists = await conn.run_sync(lambda c: sa.inspect(c).has_table("files"))
            if exists:
                names = ", ".join(t.name for t in metadata.sorted_tables)
                await conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'aecflow.db'}"
    url = request.getfixturevalue("postgres_url")
    await _truncate(url)
    return url


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    raw: dict[str, object] = {
        "data_dir": str(tmp_path / "data"),
        "database": {"url": database_url},
        "storage": {"backend": "local", "root": str(tmp_path / "objects")},
        "worker": {"embedded": False},
    }
    raw.update(overrides)
    return Settings.model_validate(raw)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
async def flow(settings: Settings) -> AsyncIterator[Flow]:
    async with Flow.open(settings) as opened:
        yield opened


@pytest.fixture
def fake_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDists]:
    """Throw-away plugin distributions with real entry points (see fakedist.py)."""
    dists = FakeDists(tmp_path / "site", monkeypatch)
    yield dists
    dists.cleanup()


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
