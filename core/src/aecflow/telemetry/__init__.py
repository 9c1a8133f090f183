"""OpenTelemetry for aecflow: traces (:mod:`.traces`), the built-in monitor (:mod:`.monitor`)
and the optional SDK set-up (:mod:`.sdk`, needs ``aecflow[telemetry]``).

This package is a built-in plugin: when a flow starts it registers that flow's own
:class:`~aecflow.telemetry.monitor.Monitor`, which then observes and shuts down with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from aecflow import hookimpl
from aecflow.breaker import CircuitBreaker
from aecflow.telemetry.traces import continued, traceparent, tracer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from aecflow.telemetry.monitor import Monitor

__all__ = ["MONITOR_PLUGIN", "Monitor", "continued", "traceparent", "tracer"]

#: The name the flow's monitor is registered under in its plugin manager.
MONITOR_PLUGIN = "aecflow.telemetry.monitor"


class _Plugins(Protocol):
    @property
    def pm(self) -> pluggy.PluginManager: ...


class Monitored(Protocol):
    """What the monitor needs of an open flow (this layer does not import the facade)."""

    @property
    def engine(self) -> AsyncEngine: ...
    @property
    def breakers(self) -> Mapping[str, CircuitBreaker]: ...
    @property
    def plugins(self) -> _Plugins: ...


def __getattr__(name: str) -> Any:
    # The monitor imports the store (SQLAlchemy): loading this built-in plugin, which every
    # CLI command does, should not; it is imported when a flow starts or when asked for.
    if name == "Monitor":
        from aecflow.telemetry.monitor import Monitor

        return Monitor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def startup(flow: Monitored) -> None:
    from aecflow.telemetry.monitor import Monitor

    monitor = Monitor(flow.engine, flow.breakers)
    flow.plugins.pm.register(monitor, name=MONITOR_PLUGIN)
    monitor.start()
