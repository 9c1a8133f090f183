"""Fixtures: a moto S3 server on a free loopback port, reached over real HTTP.

The server runs in a thread of the test process (moto's ThreadedMotoServer, not its
in-process decorators), so obstore and aioboto3 talk to it exactly as they would to S3. It
lives for the whole session; each test gets its own bucket. AWS settings of the machine are
hidden so that no test can reach a real account.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from s3_support import Bucket, MotoServer, new_bucket


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake keys for moto, and nothing from ~/.aws, the environment or instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket(moto: MotoServer) -> Bucket:
    """A fresh, empty bucket in eu-central-1."""
    return new_bucket(moto, "eu-central-1")


# -- databases for the journey over HTTP ---------------------------------------------------

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def _admin(url: str, statement: str | None = None) -> str | None:
    """Run ``statement`` on ``url`` (or just connect); the problem as text, or ``None``."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement or "SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


def _run(coro):
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session (skipped loudly without a server)."""
    import uuid

    import sqlalchemy as sa

    admin = os.environ.get("AECFLOW_TEST_DATABASE_URL", LOCAL_POSTGRES)
    problem = _run(_admin(admin))
    if problem:
        reason = f"PostgreSQL not reachable at {admin}: {problem}"
        if os.environ.get("AECFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"AECFLOW_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {reason} (set AECFLOW_TEST_DATABASE_URL)")
    name = f"aecflow_s3_test_{uuid.uuid4().hex[:12]}"
    _run(_admin(admin, f'CREATE DATABASE "{name}"'))
    yield sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)
    _run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'aecflow.db'}"
    return request.getfixturevalue("postgres_url")
