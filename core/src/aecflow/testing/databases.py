"""Database fixtures: run a test on real SQLite and real PostgreSQL.

``database_url`` is parametrised (``sqlite``, ``postgres``): each test that asks for it runs
twice. PostgreSQL comes from ``AECFLOW_TEST_DATABASE_URL`` (an admin URL such as
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``), else that local default; each test
session gets its own database, dropped at the end, and its tables are emptied before every
test. Without a reachable server the PostgreSQL half is skipped loudly, and
``AECFLOW_REQUIRE_POSTGRES=1`` (CI) turns that skip into a failure.

The fixtures are registered by the kit's pytest plugin; a conftest may override them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from aecflow.store import scratch
from aecflow.store.scratch import inserts_refused as inserts_refused

#: The server tried when ``AECFLOW_TEST_DATABASE_URL`` is not set.
LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
URL_VARIABLE = "AECFLOW_TEST_DATABASE_URL"
REQUIRE_VARIABLE = "AECFLOW_REQUIRE_POSTGRES"

T = TypeVar("T")

try:  # async fixtures need pytest-asyncio (the core's ``testing`` extra), in strict mode too
    import pytest_asyncio

    async_fixture: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - without it only the sync fixtures are usable
    async_fixture = pytest.fixture


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def admin_url() -> str:
    """The PostgreSQL server the tests create their databases on."""
    return os.environ.get(URL_VARIABLE) or LOCAL_POSTGRES


def sqlite_file_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'aecflow.db'}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (skipped when no server answers)."""
    admin = admin_url()
    problem = run_sync(scratch.unreachable(admin))
    if problem:
        reason = f"PostgreSQL not reachable at {admin}: {problem}"
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{REQUIRE_VARIABLE}=1 but {reason}")
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {reason} (set {URL_VARIABLE})")
    name = f"aecflow_test_{uuid.uuid4().hex[:12]}"
    url = run_sync(scratch.create_database(admin, name))
    yield url
    run_sync(scratch.drop_database(admin, name))


@async_fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL, once SQLite in ``tmp_path`` and once the session's PostgreSQL
    database with every table emptied."""
    if request.param == "sqlite":
        return sqlite_file_url(tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    await scratch.truncate_all(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLite in ``tmp_path`` only: for behaviour that does not depend on the database."""
    return sqlite_file_url(tmp_path)
