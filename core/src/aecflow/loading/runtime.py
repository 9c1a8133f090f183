"""The runtime: everything the services share, built once per open flow.

Services (files, uploads, jobs, outbox, telemetry) receive a :class:`Runtime`, never the
:class:`~aecflow.flow.Flow`: the facade sits on top of them, so they must not reach back up into
it. A runtime owns nothing that needs closing itself; :func:`open_runtime` builds one and closes
its backends, engine and plugins when its block ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from aecflow.access.audit import AuditLog
from aecflow.breaker import CircuitBreaker, State
from aecflow.clock import utcnow
from aecflow.config import Settings
from aecflow.loading.components import (
    ProcessorBinding,
    build_notifiers,
    build_processors,
    build_storage,
    start_backend,
)
from aecflow.loading.plugins import PluginHost
from aecflow.notify import Notifier
from aecflow.observe import Observation, Timer, timed
from aecflow.storage import Storage
from aecflow.store import engine as db


@dataclass(eq=False)
class Runtime:
    """Settings, metadata store, backends, breakers, observations and one clock."""

    settings: Settings
    plugins: PluginHost
    engine: AsyncEngine
    storage: Storage
    processors: dict[str, ProcessorBinding]
    notifiers: dict[str, Notifier]
    audit: AuditLog
    #: The one clock every service reads (tests may pass their own).
    clock: Callable[[], dt.datetime] = utcnow
    #: One breaker per dependency: ``storage`` and ``notifier:<destination>``.
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    _listeners: list[asyncio.Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.breakers:
            self.breakers = {
                name: CircuitBreaker(
                    name,
                    failure_threshold=self.settings.breakers.failure_threshold,
                    reset_timeout_s=self.settings.breakers.reset_timeout_s,
                    on_transition=self._breaker_moved,
                )
                for name in ["storage", *(f"notifier:{n}" for n in self.notifiers)]
            }

    def emit(self, observation: Observation) -> None:
        """Hand an observation to every ``observe`` hook."""
        self.plugins.observe(observation)

    def timed(self, name: str, **attributes: Any) -> AbstractContextManager[Timer]:
        """Time an operation as an observation (see :func:`aecflow.observe.timed`)."""
        return timed(name, self.plugins.observe, attributes)

    def listen(self) -> asyncio.Event:
        """An event that :meth:`wake` sets: how a local worker hears of new work at once."""
        event = asyncio.Event()
        self._listeners.append(event)
        return event

    def forget(self, event: asyncio.Event) -> None:
        if event in self._listeners:
            self._listeners.remove(event)

    def wake(self) -> None:
        """New rows were committed: wake this process's workers and dispatchers."""
        for event in self._listeners:
            event.set()

    async def check_database(self) -> None:
        await db.ping(self.engine)

    def _breaker_moved(self, name: str, old: State, new: State) -> None:
        self.emit(
            Observation(
                "breaker.transition",
                0.0,
                new.value,
                None,
                {"breaker": name, "from": old.value, "to": new.value},
            )
        )


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    plugins: Iterable[tuple[str, object]] = (),
) -> AsyncIterator[Runtime]:
    """Load plugins, build and start backends, migrate and connect; close all on exit."""
    host = PluginHost(environ).load(extra=plugins)
    async with AsyncExitStack() as stack:
        storage = build_storage(host.registries.storage, settings)
        stack.push_async_callback(storage.close)
        await start_backend(storage, f"storage backend {storage.name!r}")
        processors = build_processors(host.registries.processors, settings)
        notifiers = build_notifiers(host.registries.notifiers, settings)
        for name, notifier in notifiers.items():
            stack.push_async_callback(notifier.close)
            await start_backend(notifier, f"notifier {name!r}")
        engine = db.create_engine(settings.database_url(), echo=settings.database.echo)
        stack.push_async_callback(engine.dispose)
        if settings.database.migrate_on_start:
            await db.upgrade(engine)
        runtime = Runtime(
            settings=settings,
            plugins=host,
            engine=engine,
            storage=storage,
            processors=processors,
            notifiers=notifiers,
            audit=AuditLog(engine, hash_chain=settings.audit.hash_chain),
        )
        await runtime.check_database()
        stack.push_async_callback(host.drain)
        yield runtime
