"""Shared fixtures: every flow test runs against real SQLite and real PostgreSQL.

``database_url`` and ``postgres_url`` come from the plugin authors' kit (the ``aecflow``
pytest plugin, :mod:`aecflow.testing.databases`), so the repository's own tests and every
plugin's use one definition: PostgreSQL from ``AECFLOW_TEST_DATABASE_URL`` or 127.0.0.1:5432,
skipped loudly without it, failed with ``AECFLOW_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aecflow.config import Settings
from aecflow.flow import Flow
from aecflow.testing.databases import inserts_refused
from aecflow.testing.plugin import database_url, postgres_url  # still imported by notify plugins

from .fakedist import FakeDists

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples" / "ifc"

__all__ = ["SAMPLES", "database_url", "inserts_refused", "make_settings", "postgres_url"]


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
