"""Registry objects handed to the ``register_*`` hooks (tox style).

A plugin calls ``registry.add(name, factory, config=ConfigModel)``. The registry remembers which
plugin registered what, so a duplicate name is reported with both plugins' names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pydantic

from aecflow.errors import PluginError
from aecflow.notify import Notifier
from aecflow.processing import Processor
from aecflow.storage import Storage

T = TypeVar("T")

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


class EmptyConfig(pydantic.BaseModel):
    """The config model for backends that take no settings: unknown keys are an error."""

    model_config = pydantic.ConfigDict(extra="forbid")


def _accepts(factory: Callable[..., Any], count: int) -> bool | None:
    """Whether ``factory`` can be called with ``count`` positional arguments (``None``: its
    signature cannot be read, as for some builtins; then it is called the usual way)."""
    try:
        inspect.signature(factory).bind(*([None] * count))
    except TypeError:
        return False
    except ValueError:
        return None
    return True


def instantiate(factory: Callable[..., T], config: pydantic.BaseModel) -> T:
    """Build a backend: ``factory(config)``, or ``factory()`` when no config model was
    declared and the factory takes no argument (a plain ``class Upper(Processor)``)."""
    if isinstance(config, EmptyConfig) and _accepts(factory, 1) is False:
        return factory()
    return factory(config)


@dataclass(frozen=True, slots=True)
class Registration(Generic[T]):
    kind: str
    name: str
    factory: Callable[[Any], T]
    config: type[pydantic.BaseModel]
    plugin: str


class Registry(Generic[T]):
    """Named factories of one kind (storage, processor or notifier)."""

    kind = "backend"

    def __init__(self) -> None:
        self._entries: dict[str, Registration[T]] = {}
        #: The plugin whose hook is running; set by the loader around each call.
        self.current_plugin = "<unknown>"

    def add(
        self,
        name: str,
        factory: Callable[[Any], T],
        *,
        config: type[pydantic.BaseModel] = EmptyConfig,
    ) -> None:
        """Register ``factory`` under ``name``; ``config`` validates its settings."""
        if not name or not set(name) <= _NAME_CHARS:
            raise PluginError(
                f"plugin {self.current_plugin!r} registered {self.kind} name {name!r}: "
                "use lower-case letters, digits, '_' and '-'"
            )
        if not (isinstance(config, type) and issubclass(config, pydantic.BaseModel)):
            raise PluginError(
                f"plugin {self.current_plugin!r} registered {self.kind} {name!r} with a config "
                "that is not a pydantic model"
            )
        if config is not EmptyConfig and _accepts(factory, 1) is False:
            raise PluginError(
                f"plugin {self.current_plugin!r} registered {self.kind} {name!r} with "
                f"config={config.__name__}, but its factory {factory!r} takes no argument: "
                "give it an __init__(self, config) or register it without config="
            )
        if existing := self._entries.get(name):
            raise PluginError(
                f"{self.kind} name {name!r} is registered by two plugins: "
                f"{existing.plugin!r} and {self.current_plugin!r}; disable one with "
                "AECFLOW_DISABLE_PLUGINS"
            )
        self._entries[name] = Registration(self.kind, name, factory, config, self.current_plugin)

    def get(self, name: str) -> Registration[T] | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Registration[T]]:
        return iter(self._entries.values())

    def _snapshot(self) -> dict[str, Registration[T]]:
        return dict(self._entries)

    def _restore(self, snapshot: dict[str, Registration[T]]) -> None:
        self._entries = snapshot


class StorageRegistry(Registry[Storage]):
    kind = "storage backend"


class ProcessorRegistry(Registry[Processor]):
    kind = "processor"


class NotifierRegistry(Registry[Notifier]):
    kind = "notifier backend"
