"""Fixtures: a live receiver per test. The database fixtures (``database_url`` on real SQLite
and PostgreSQL, ``sqlite_url``) come from ``aecflow.testing``'s pytest plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from webhook_support import Receiver, serve

from aecflow_notify_webhook import generate_secret


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
