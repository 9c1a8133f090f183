"""Plugins that ship with the core: the embedded-default log notifier."""

from __future__ import annotations

from aecflow import hookimpl
from aecflow.registry import NotifierRegistry


@hookimpl
def register_notifiers(registry: NotifierRegistry) -> None:
    from aecflow.notifiers.log import LogNotifier, LogNotifierConfig

    registry.add("log", LogNotifier, config=LogNotifierConfig)
