"""Shared fixtures: every flow test runs against real SQLite and real PostgreSQL.

The database fixtures (``database_url``, ``postgres_url``, ``sqlite_url``) are the plugin
kit's, registered by its pytest plugin (:mod:`aecflow.testing.databases`): PostgreSQL comes
from ``AECFLOW_TEST_DATABASE_URL`` or the local server at 127.0.0.1:5432; without one the
PostgreSQL half is skipped loudly, and ``AECFLOW_REQUIRE_POSTGRES=1`` (set by CI) turns that
skip into a failure. Each test session gets its own database, dropped at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aecflow.config import Settings
from aecflow.flow import Flow
from aecflow.testing.databases import inserts_refused

from .fakedist import FakeDists

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples" / "ifc"

__all__ = ["SAMPLES", "inserts_refused", "make_settings"]


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
