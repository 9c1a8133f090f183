"""The pytest plugin (``pytest11`` entry point ``aecflow``): fixtures for plugin tests.

Override ``aecflow_plugins`` (the extra plugins) or ``aecflow_settings`` (top-level settings
tables) in a conftest or test module to shape the ``flow`` and ``live_host`` fixtures. The
database fixtures (``database_url``, ``postgres_url``, ``sqlite_url``) come from
:mod:`aecflow.testing.databases`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from aecflow.flow import Flow
from aecflow.testing.aws import MotoServer, sandbox
from aecflow.testing.databases import database_url, postgres_url, sqlite_url
from aecflow.testing.flows import PLUGIN, flow_settings, open_test_flow
from aecflow.testing.live import LiveHost
from aecflow.testing.live import live_host as serve_host

__all__ = [
    "aecflow_plugins",
    "aecflow_settings",
    "aws_sandbox",
    "database_url",
    "flow",
    "live_host",
    "moto_server",
    "postgres_url",
    "sqlite_url",
]

try:  # async fixtures need pytest-asyncio (the core's ``testing`` extra); strict mode too
    import pytest_asyncio

    async_fixture: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - without it only the sync helpers are usable
    async_fixture = pytest.fixture


@pytest.fixture
def aecflow_plugins() -> list[tuple[str, object]]:
    """Extra ``(name, plugin)`` pairs for the ``flow`` and ``live_host`` fixtures."""
    return []


@pytest.fixture
def aecflow_settings() -> dict[str, Any]:
    """Top-level settings tables that replace :func:`~aecflow.testing.flow_settings`' own."""
    return {}


@async_fixture
async def flow(
    tmp_path: Path, aecflow_plugins: list[tuple[str, object]], aecflow_settings: dict[str, Any]
) -> AsyncIterator[Flow]:
    """A flow on SQLite in ``tmp_path`` with memory storage and a recording destination."""
    async with open_test_flow(tmp_path, aecflow_plugins, **aecflow_settings) as opened:
        yield opened


@async_fixture
async def live_host(
    tmp_path: Path, aecflow_plugins: list[tuple[str, object]], aecflow_settings: dict[str, Any]
) -> AsyncIterator[LiveHost]:
    """The HTTP host on a free loopback port over its own flow (same settings as ``flow``,
    embedded worker off unless ``aecflow_settings`` says otherwise)."""
    settings = flow_settings(tmp_path / "host", **aecflow_settings)
    async with serve_host(settings, plugins=[PLUGIN, *aecflow_plugins]) as host:
        yield host


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's S3/SQS/KMS server on a free loopback port for the session (needs moto[server])."""
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake AWS keys; nothing from ~/.aws, the environment or instance metadata."""
    sandbox(monkeypatch, tmp_path_factory.getbasetemp())
