"""Building the configured backends from the plugins' registrations.

Each backend's table is validated by the config model its plugin registered, after secret
references are resolved into a copy; errors name the section, the backend and the plugin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pydantic

from aecflow.config import ProcessorSettings, Settings, resolve_secrets, validate
from aecflow.errors import ConfigError
from aecflow.isolation import ProcessorSpec
from aecflow.notify import Notifier
from aecflow.processing import Processor
from aecflow.registry import Registration, Registry, instantiate
from aecflow.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessorBinding:
    """An enabled processor with its validated config and limits."""

    registration: Registration[Processor]
    config: pydantic.BaseModel
    processor: Processor
    settings: ProcessorSettings
    #: How the child rebuilds it; made (and its import paths checked) once, at open.
    spec: ProcessorSpec


def _build(
    registry: Registry[Any], name: str, options: dict[str, Any], section: str
) -> tuple[Any, Any]:
    registration = registry.get(name)
    if registration is None:
        known = ", ".join(registry.names()) or "none"
        raise ConfigError(
            f"{section}: {registry.kind} {name!r} is not registered by any loaded plugin "
            f"(registered: {known}); install its plugin or check `aecflow plugins`"
        )
    where = f"{section} {registry.kind} {name!r} (plugin {registration.plugin!r})"
    config = validate(registration.config, resolve_secrets(options, where), where=where)
    try:
        instance = instantiate(registration.factory, config)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{where}: could not start: {type(exc).__name__}: {exc}") from exc
    return registration, (config, instance)


def build_storage(registry: Registry[Storage], settings: Settings) -> Storage:
    _, (_, storage) = _build(
        registry, settings.storage.backend, settings.storage.options(), "[storage]"
    )
    storage.name = settings.storage.backend
    return storage


def build_processors(
    registry: Registry[Processor], settings: Settings
) -> dict[str, ProcessorBinding]:
    bindings: dict[str, ProcessorBinding] = {}
    configured = settings.processing.processors
    for name in sorted(set(configured) - set(registry.names())):
        if configured[name].enabled:  # a table that only disables it asks for nothing
            log.warning(
                "[processing.processors.%s] in %s: no loaded plugin registers processor %r "
                "(not installed, left out by AECFLOW_LOAD_PLUGINS/AECFLOW_DISABLE_PLUGINS, "
                "or broken: see `aecflow plugins`); registered: %s; the table is ignored",
                name,
                settings.source("processing", "processors", name),
                name,
                ", ".join(registry.names()) or "none",
            )
    for name in registry.names():
        table = configured.get(name, ProcessorSettings())
        if not table.enabled:
            continue
        registration, (config, processor) = _build(
            registry, name, table.options(), f"[processing.processors.{name}]"
        )
        try:  # refuse now what the worker could never rebuild in its child (a __main__ class)
            spec = ProcessorSpec.from_registration(registration, config)
        except ValueError as exc:
            raise ConfigError(f"[processing.processors.{name}]: {exc}") from None
        processor.name = name
        bindings[name] = ProcessorBinding(registration, config, processor, table, spec)
    return bindings


def build_notifiers(registry: Registry[Notifier], settings: Settings) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    for index, (entry, name) in enumerate(
        zip(settings.notifiers, settings.notifier_names(), strict=True)
    ):
        _, (_, notifier) = _build(
            registry, entry.backend, entry.options(), f"[[notifiers]][{index}]"
        )
        notifier.name = name
        notifiers[name] = notifier
    return notifiers


async def start_backend(backend: Storage | Notifier, what: str) -> None:
    """Run a backend's start-up checks; a failure stops start-up with a message naming it."""
    try:
        await backend.start()
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{what} could not start: {type(exc).__name__}: {exc}") from exc
