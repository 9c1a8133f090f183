"""The core's own plugin loader and hook caller.

pluggy's ``load_setuptools_entrypoints`` has no error handling and silently skips a second
plugin with the same name, a raising implementation stops a broadcast, and async
implementations are not awaited. So each :class:`PluginHost` (one per ``Flow``, never a
module-level one) walks the ``aecflow`` entry points itself, filters them *before* importing
(``AECFLOW_LOAD_PLUGINS`` allowlist, ``""`` meaning none; ``AECFLOW_DISABLE_PLUGINS``
denylist), isolates each import and registration, and calls broadcast hooks one
implementation at a time.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.metadata
import inspect
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from aecflow import hookspecs
from aecflow.errors import PluginError
from aecflow.observe import Observation
from aecflow.registry import NotifierRegistry, ProcessorRegistry, Registry, StorageRegistry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "aecflow"
#: Plugins that ship inside the core (the log notifier); always loaded unless disabled.
BUILTIN_PLUGINS: tuple[str, ...] = ("aecflow.loading.builtins", "aecflow.telemetry")
#: How long an async broadcast implementation may run before it is abandoned.
HOOK_TIMEOUT_S = 10.0


@dataclass(slots=True)
class PluginInfo:
    """What ``aecflow plugins`` shows; never configuration values."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    status: str = "loaded"  # loaded | error | disabled
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The public shape (:class:`aecflow.schemas.Plugin`)."""
        from aecflow import schemas  # the public models load on use, not with every plugin

        return schemas.Plugin.model_validate(self, from_attributes=True).model_dump(mode="json")


def _name_list(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


@dataclass(slots=True)
class Registries:
    storage: StorageRegistry = field(default_factory=StorageRegistry)
    processors: ProcessorRegistry = field(default_factory=ProcessorRegistry)
    notifiers: NotifierRegistry = field(default_factory=NotifierRegistry)

    def by_hook(self) -> dict[str, Registry[Any]]:
        return {
            "register_storage": self.storage,
            "register_processors": self.processors,
            "register_notifiers": self.notifiers,
        }


class PluginHost:
    """One plugin manager, the plugins it loaded, and the registries they filled."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.allow = _name_list(env.get("AECFLOW_LOAD_PLUGINS"))
        self.deny = _name_list(env.get("AECFLOW_DISABLE_PLUGINS")) or set()
        self.strict = env.get("AECFLOW_STRICT_PLUGINS", "") not in ("", "0", "false", "no")
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.registries = Registries()
        self._background: set[asyncio.Task[None]] = set()

    # -- loading -----------------------------------------------------------------------

    def _wanted(self, name: str, distribution: str | None) -> bool:
        names = {name} | ({distribution} if distribution else set())
        if names & self.deny:
            return False
        return self.allow is None or bool(names & self.allow)

    def _fail(self, info: PluginInfo, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        info.status, info.error = "error", message
        log.error("plugin %s skipped: %s", info.name, message)
        if self.strict:
            raise PluginError(f"plugin {info.name!r} failed (AECFLOW_STRICT_PLUGINS=1): {message}")

    def load(self, extra: Iterable[tuple[str, ModuleType | object]] = ()) -> PluginHost:
        """Load builtins, then entry-point plugins, then ``extra`` (name, object) pairs."""
        for module_name in BUILTIN_PLUGINS:
            info = PluginInfo(name=module_name, module=module_name, distribution="aecflow")
            info.version = _version("aecflow")
            # Builtins honour the denylist only: an allowlist names third-party plugins.
            if module_name in self.deny:
                info.status = "disabled"
                self.plugins.append(info)
            else:
                self._register(info, functools.partial(importlib.import_module, module_name))
        seen: dict[str, str] = {}
        for ep in sorted(
            importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name
        ):
            dist = ep.dist.name if ep.dist else None
            info = PluginInfo(
                name=ep.name,
                module=ep.value,
                distribution=dist,
                version=ep.dist.version if ep.dist else None,
            )
            if not self._wanted(ep.name, dist):
                info.status = "disabled"
                self.plugins.append(info)
                continue
            if ep.name in seen:
                self.plugins.append(info)
                self._fail(
                    info,
                    f"plugin name {ep.name!r} is provided by two distributions: "
                    f"{seen[ep.name]!r} and {dist!r}; uninstall or disable one",
                )
                continue
            seen[ep.name] = dist or ep.value
            self._register(info, ep.load)
        for name, obj in extra:
            self._register(
                PluginInfo(name=name, module=getattr(obj, "__name__", name)),
                functools.partial(_itself, obj),
            )
        self._run_registration()
        return self

    def _register(self, info: PluginInfo, load: Callable[[], object]) -> None:
        self.plugins.append(info)
        try:
            plugin = load()
            self.pm.register(plugin, name=info.name)
        except Exception as exc:
            self._fail(info, exc)
            return
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=info.name)
            self._fail(info, exc)
            return
        info.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())

    def _run_registration(self) -> None:
        registries = self.registries.by_hook()
        for info in self.plugins:
            plugin = self.pm.get_plugin(info.name)
            if info.status != "loaded" or plugin is None:
                continue
            snapshots = {hook: reg._snapshot() for hook, reg in registries.items()}
            try:
                for hook_name, registry in registries.items():
                    for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                        if impl.plugin is plugin:
                            registry.current_plugin = info.name
                            impl.function(**_kwargs(impl, registry=registry))
            except PluginError:
                raise  # duplicate names are ambiguous: never guess which plugin wins
            except Exception as exc:
                for hook, reg in registries.items():
                    reg._restore(snapshots[hook])
                self.pm.unregister(name=info.name)
                self._fail(info, exc)

    def register_commands(self, cli: Any) -> None:
        """Let each plugin add CLI commands; one that fails is reported and skipped."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(**_kwargs(impl, cli=cli))
            except Exception as exc:
                log.error("plugin %s could not add commands: %s", impl.plugin_name, exc)

    # -- broadcasting ------------------------------------------------------------------

    async def broadcast(self, hook_name: str, **kwargs: Any) -> None:
        """Call every implementation of ``hook_name`` in turn, awaiting async ones, isolated."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                result = impl.function(**_kwargs(impl, **kwargs))
                if inspect.isawaitable(result):
                    await asyncio.wait_for(_as_coroutine(result), HOOK_TIMEOUT_S)
            except Exception:
                log.exception("plugin %s failed in %s; ignored", impl.plugin_name, hook_name)

    def observe(self, observation: Observation) -> None:
        """Fan an observation out without ever blocking or failing the caller.

        Synchronous monitors run inline; async ones run as background tasks with a timeout,
        so a slow or hanging monitor never delays the operation it observes.
        """
        for impl in self.pm.hook.observe.get_hookimpls():
            try:
                result = impl.function(**_kwargs(impl, observation=observation))
                if inspect.isawaitable(result):
                    self._spawn(impl.plugin_name, result)
            except Exception:
                log.exception("monitor %s failed; ignored", impl.plugin_name)

    def _spawn(self, plugin_name: str, awaitable: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("async monitor %s called outside an event loop; skipped", plugin_name)
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            return

        async def run() -> None:
            try:
                await asyncio.wait_for(_as_coroutine(awaitable), HOOK_TIMEOUT_S)
            except Exception:
                log.exception("monitor %s failed; ignored", plugin_name)

        task = loop.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background monitor calls (used on shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _itself(obj: object) -> object:
    return obj


def _kwargs(impl: pluggy.HookImpl, **available: Any) -> dict[str, Any]:
    """pluggy passes only the parameters an implementation names (those without defaults)."""
    return {name: available[name] for name in impl.argnames if name in available}


async def _as_coroutine(awaitable: Any) -> Any:
    return await awaitable


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
