"""What the commands share: settings, opening a flow, async bodies, ``key=value`` options."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from aecflow.errors import InvalidInput

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from aecflow.config import Settings
    from aecflow.flow import Flow


def root_settings(ctx: click.Context) -> Settings:
    from aecflow.config import load_settings

    return load_settings(ctx.find_root().params.get("config"))


def open_flow(settings: Settings) -> AbstractAsyncContextManager[Flow]:
    """``Flow.open``, imported on first use: ``upload`` and ``status`` start without the
    database layer."""
    from aecflow.flow import Flow

    return Flow.open(settings)


def without_worker(settings: Settings) -> Settings:
    """``settings`` with no embedded worker."""
    return settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"embedded": False})}
    )


def quiet_settings(ctx: click.Context) -> Settings:
    """Settings for commands that only read or edit records: no embedded worker."""
    return without_worker(root_settings(ctx))


def run_async(func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Run an async command body with ``asyncio.run``."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(func(*args, **kwargs))

    return wrapper


def pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep:
            raise InvalidInput(f"{option} expects key=value, got {value!r}")
        found[key] = item
    return found
