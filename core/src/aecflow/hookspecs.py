"""The plugin contract: every hook a plugin may implement.

This module is the single source of truth for plugin authors. Implement a hook by defining a
function with the same name (and any subset of its parameters), decorated with
``aecflow.hookimpl``, in a module registered under the ``aecflow`` entry-point group::

    [project.entry-points.aecflow]
    my_storage = "my_package.plugin"

Two kinds of hook:

* **Registration hooks** (``register_*``) are synchronous and called once when a ``Flow``
  starts, each with a registry object. A plugin adds named factories to it.
* **Lifecycle and observation hooks** (``startup``, ``shutdown``, ``observe``) are broadcast to
  every implementation. The core calls them one implementation at a time and isolates each:
  one that raises, hangs or is slow is logged and never breaks the operation or the others.
  Implementations may be ``async def``; the core awaits them.

No hook here is ``firstresult``: pluggy would take an async implementation's coroutine as the
answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from starlette.routing import BaseRoute

    # The one upward name in the contract: hooks receive the public facade. Type-only, so
    # nothing runs it; `.importlinter` lists it as the single ignored import.
    from aecflow.flow import Flow
    from aecflow.observe import Observation
    from aecflow.registry import NotifierRegistry, ProcessorRegistry, StorageRegistry

PROJECT_NAME = "aecflow"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def register_storage(registry: StorageRegistry) -> None:
    """Register storage backends.

    Call ``registry.add(name, factory, config=ConfigModel)``. When the configuration selects
    ``[storage] backend = name``, the core validates the rest of the ``[storage]`` table with
    ``ConfigModel`` (a pydantic model) and calls ``factory(config)``, which returns a
    :class:`aecflow.storage.Storage`.
    """


@hookspec
def register_processors(registry: ProcessorRegistry) -> None:
    """Register processors.

    Call ``registry.add(name, factory, config=ConfigModel)``. The factory returns a
    :class:`aecflow.processing.Processor`. It must be importable as ``module:qualname`` because
    the core rebuilds the processor inside an isolated child process.
    """


@hookspec
def register_notifiers(registry: NotifierRegistry) -> None:
    """Register notifier backends.

    Call ``registry.add(name, factory, config=ConfigModel)``. Each ``[[notifiers]]`` entry whose
    ``backend`` is ``name`` becomes one destination built by ``factory(config)``, which returns
    a :class:`aecflow.notify.Notifier`.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``aecflow`` command line (``aecflow s3 config`` and the like).

    Called unless the command line names one of the core's own commands (those load plugins
    themselves when they open a flow, or need none), so add new top-level commands or groups
    rather than subcommands of the core's groups.
    """


@hookspec
def register_routes(routes: list[BaseRoute], flow: Flow) -> None:
    """Append Starlette routes to the HTTP host (e.g. storage_local serves its signed URLs).

    Called once when the host starts, after the flow is open. Only the host calls it, so a
    plugin imports Starlette inside the implementation, not at module level.
    """


@hookspec
def startup(flow: Flow) -> None:
    """Called once the flow is open: backends built, database reachable. May be async."""


@hookspec
def shutdown(flow: Flow) -> None:
    """Called before the flow closes. May be async."""


@hookspec
def observe(observation: Observation) -> None:
    """Receive one record per operation (name, attributes, duration, outcome, error type).

    Called for every ingest, storage call, job, processing run, delivery attempt and breaker
    transition. Keep it cheap; it may be async. Failures are logged and ignored.
    """
