"""A flow on a temporary directory, and runners that settle its work without a background loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from aecflow.config import Settings
from aecflow.flow import Flow
from aecflow.jobs.worker import Worker
from aecflow.outbox.dispatcher import Dispatcher
from aecflow.testing import backends
from aecflow.testing.backends import RecordingNotifier

#: The name the testing backends register under (pass it to ``plugins=`` yourself only when
#: building a flow without :func:`open_test_flow`).
PLUGIN = ("aecflow-testing", backends)


def flow_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a flow in ``tmp_path``: SQLite, ``memory`` storage, one ``recording``
    destination, no embedded worker (tests settle work with :func:`run_until_settled`).
    ``overrides`` replace whole top-level tables (``storage={"backend": "local", ...}``)."""
    raw: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'aecflow.db'}"},
        "storage": {"backend": "memory"},
        "notifiers": [{"backend": "recording"}],
        "worker": {"embedded": False},
    }
    raw.update(overrides)
    return Settings.model_validate(raw)


@contextlib.asynccontextmanager
async def open_flow(
    settings: Settings, plugins: Iterable[tuple[str, object]] = ()
) -> AsyncIterator[Flow]:
    """Open a :class:`~aecflow.flow.Flow` on any ``settings`` (e.g. a PostgreSQL
    ``database_url``) with the testing backends and ``plugins`` registered beside the entry
    points: what :func:`open_test_flow` does on :func:`flow_settings`."""
    async with Flow.open(settings, plugins=[PLUGIN, *plugins]) as flow:
        yield flow


@contextlib.asynccontextmanager
async def open_test_flow(
    tmp_path: Path, plugins: Iterable[tuple[str, object]] = (), **settings: Any
) -> AsyncIterator[Flow]:
    """Open a :class:`~aecflow.flow.Flow` on :func:`flow_settings` with the testing backends
    and ``plugins`` (``(name, module-or-object)`` pairs) registered beside the entry points."""
    async with open_flow(flow_settings(tmp_path, **settings), plugins) as flow:
        yield flow


async def run_worker(flow: Flow, *, include_retries: bool = False) -> None:
    """Process queued jobs until none is runnable (with ``include_retries``, until none waits)."""
    await Worker(flow.runtime).run_until_idle(include_retries=include_retries)


async def run_dispatcher(flow: Flow) -> None:
    """Deliver due outbox events until no destination can take one now."""
    await Dispatcher(flow.runtime).run_until_idle()


async def run_until_settled(flow: Flow, *, include_retries: bool = False) -> None:
    """Run the worker, then the dispatcher, so every job is processed and its events sent."""
    await run_worker(flow, include_retries=include_retries)
    await run_dispatcher(flow)


def recording_notifier(flow: Flow, name: str = "recording") -> RecordingNotifier:
    """The flow's ``recording`` destination (``name`` if it was given another)."""
    notifier = flow.runtime.notifiers[name]
    if not isinstance(notifier, RecordingNotifier):
        raise TypeError(f"destination {name!r} is a {type(notifier).__name__}, not recording")
    return notifier
