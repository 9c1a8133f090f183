"""Filename substring search on PostgreSQL goes through the pg_trgm index (migration 0006),
and finds what it found before: case-insensitive, ``%`` and ``_`` taken literally."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from aecflow.store import engine as db
from aecflow.store import files as store_files
from aecflow.store import schema, scratch
from aecflow.store.files import FileQuery
from aecflow.testing.databases import sqlite_file_url

NAMES = [
    "a%b.ifc",
    "a_b.ifc",
    "axb.ifc",
    "Wall_Plan 100%.IFC",
    "wall plan 100.ifc",
    "back\\slash.ifc",
    "slash/a.ifc",
    "Haus-FZK.ifc",
]
#: Enough rows that a plan has something to choose between.
FILLER = 20_000
TERMS = ["%", "_", "a_b", "a%b", "wall_plan", "100%", "WALL", "\\", "/", "fzk", "zzzq", "FZK.IFC"]


async def fill(url: str) -> None:
    engine = db.create_engine(url)
    try:
        await db.upgrade(engine)
        now = dt.datetime.now(dt.UTC)
        names = NAMES + [f"model-{n:05d}.ifc" for n in range(FILLER)]
        row = {
            "project": "demo",
            "size": 1,
            "sha256": "0" * 64,
            "storage_backend": "local",
            "status": "stored",
            "meta": {},
            "created_at": now,
            "updated_at": now,
        }
        rows = [{**row, "id": str(uuid.uuid4()), "filename": n, "storage_key": n} for n in names]
        async with engine.begin() as conn:
            await conn.execute(sa.insert(schema.files), rows)
        if engine.dialect.name == "postgresql":
            # what autovacuum does after a bulk load: move GIN's pending list into the index
            # (the planner prices pending entries high) and gather statistics
            async with engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(sa.text("VACUUM ANALYZE files"))
    finally:
        await engine.dispose()


async def found(url: str, term: str) -> list[str]:
    engine = db.create_engine(url)
    try:
        async with engine.connect() as conn:
            page = await store_files.search(
                conn, FileQuery(project="demo", filename_contains=term, limit=1000)
            )
    finally:
        await engine.dispose()
    return sorted(item.filename for item in page.items)


def expected(term: str) -> list[str]:
    names = NAMES + [f"model-{n:05d}.ifc" for n in range(FILLER)]
    return sorted(name for name in names if term.lower() in name.lower())[:1000]


@pytest.fixture
async def pg(postgres_url: str) -> str:
    await scratch.truncate_all(postgres_url)
    await fill(postgres_url)
    return postgres_url


async def test_the_migration_creates_the_trigram_index(pg: str) -> None:
    engine = db.create_engine(pg)
    try:
        async with engine.connect() as conn:
            extension = await conn.scalar(
                sa.text("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")
            )
            indexdef = await conn.scalar(
                sa.text(
                    "SELECT indexdef FROM pg_indexes "
                    "WHERE tablename = 'files' AND indexname = 'ix_files_filename_trgm'"
                )
            )
    finally:
        await engine.dispose()
    assert extension == "pg_trgm"
    assert indexdef is not None
    assert "USING gin (filename gin_trgm_ops)" in indexdef


async def test_the_search_query_uses_the_index(pg: str) -> None:
    engine = db.create_engine(pg)
    try:
        async with engine.connect() as conn:
            # a small table: make the plan deterministic, as a large one would choose it anyway
            await conn.execute(sa.text("SET enable_seqscan = off"))
            for term in ("zzzq", "a%b", "wall_plan"):
                query = FileQuery(project="demo", filename_contains=term).validated()
                stmt = store_files.search_statement(query, conn.dialect.name)
                literal = {"literal_binds": True}
                sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs=literal))
                assert "ILIKE" in sql  # the operator the trigram index serves
                plan = "\n".join((await conn.execute(sa.text(f"EXPLAIN {sql}"))).scalars())
                assert "Bitmap Index Scan on ix_files_filename_trgm" in plan, (term, plan)
    finally:
        await engine.dispose()


async def test_results_are_unchanged_by_the_index(pg: str, tmp_path: Path) -> None:
    sqlite = sqlite_file_url(tmp_path)  # no trigram index there: the reference database
    await fill(sqlite)
    for term in TERMS:
        want = expected(term)
        assert len(want) < 1000, term  # one page: the page's order is by id, not by name
        assert await found(pg, term) == want, term
        assert await found(sqlite, term) == want, term


async def test_the_downgrade_drops_the_index_and_the_upgrade_brings_it_back(pg: str) -> None:
    from alembic import command

    engine = db.create_engine(pg)
    exists = sa.text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_files_filename_trgm'")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(db.alembic_config(sync), "0005"))
            assert await conn.scalar(exists) == 0
        await db.upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.scalar(exists) == 1
    finally:
        await engine.dispose()
    assert await found(pg, "a_b") == ["a_b.ifc"]
