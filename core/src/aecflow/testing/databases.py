"""Databases for tests: every flow test can run against real SQLite and real PostgreSQL.

The pytest plugin (:mod:`aecflow.testing.plugin`) exposes the fixtures ``postgres_url`` (a
fresh database for the session) and ``database_url`` (parametrised: ``sqlite`` in
``tmp_path``, and ``postgres`` emptied before each test). PostgreSQL comes from
``AECFLOW_TEST_DATABASE_URL`` or the local server at 127.0.0.1:5432; without one the PostgreSQL
half is skipped loudly, and ``AECFLOW_REQUIRE_POSTGRES=1`` (set by CI) turns that skip into a
failure. The PostgreSQL half needs the core's ``postgres`` extra (asyncpg).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from aecflow.store import scratch
from aecflow.store.scratch import inserts_refused, truncate

__all__ = ["inserts_refused", "run_sync", "session_database", "sqlite_url", "truncate"]

T = TypeVar("T")

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
#: Names the server test databases are created on (any database of it).
URL_VARIABLE = "AECFLOW_TEST_DATABASE_URL"
#: ``1`` makes an unreachable PostgreSQL a failure instead of a skip.
REQUIRE_VARIABLE = "AECFLOW_REQUIRE_POSTGRES"


def admin_url() -> str:
    """The PostgreSQL server that test databases are created on."""
    return os.environ.get(URL_VARIABLE, LOCAL_POSTGRES)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextlib.contextmanager
def session_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; skips (or fails, see above) when no
    server answers."""
    admin = admin_url()
    problem = run_sync(scratch.reachable(admin))
    if problem:
        reason = f"PostgreSQL not reachable at {admin}: {problem}"
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{REQUIRE_VARIABLE}=1 but {reason}")
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {reason} (set {URL_VARIABLE})")
    name = f"aecflow_test_{uuid.uuid4().hex[:12]}"
    run_sync(scratch.create_database(admin, name))
    url = sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        run_sync(scratch.drop_database(admin, name))


def sqlite_url(directory: Path) -> str:
    """A SQLite database file in ``directory``."""
    return f"sqlite+aiosqlite:///{directory / 'aecflow.db'}"
