"""Fixtures: a live receiver per test and the repository's database fixtures (real SQLite and
PostgreSQL, from the top-level ``tests`` package)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# pytest puts the repository root on sys.path only when it collects the top-level ``tests``
# package; make it importable when this plugin's tests run on their own too.
ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from webhook_support import Receiver, serve  # noqa: E402

from aecflow_notify_webhook import generate_secret  # noqa: E402
from tests.conftest import database_url, postgres_url  # noqa: E402, F401


@pytest.fixture
def secret() -> str:
    return generate_secret()


@pytest.fixture
async def receiver(secret: str) -> AsyncIterator[Receiver]:
    recv = Receiver([secret])
    async with serve(recv.app()) as base:
        recv.url = f"{base}/hook"
        try:
            yield recv
        finally:
            recv.release.set()  # let hanging handlers finish so uvicorn can stop


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """For behaviour that does not depend on the database: SQLite only, to stay fast."""
    return f"sqlite+aiosqlite:///{tmp_path / 'aecflow.db'}"
