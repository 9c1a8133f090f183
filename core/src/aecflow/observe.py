"""Observations: one record per operation, fanned out to every ``observe`` implementation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Observation:
    """What happened: ``name`` like ``"flow.ingest"``, how long it took and how it ended."""

    name: str
    duration_s: float
    outcome: str = "ok"
    error_type: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


class Timer:
    """Collects the attributes and outcome of an operation while it runs."""

    def __init__(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.attributes: dict[str, Any] = dict(attributes or {})
        self.outcome = "ok"
        self.error_type: str | None = None
        self.started = time.monotonic()

    def finish(self) -> Observation:
        return Observation(
            name=self.name,
            duration_s=time.monotonic() - self.started,
            outcome=self.outcome,
            error_type=self.error_type,
            attributes=self.attributes,
        )


@contextmanager
def timed(
    name: str, emit: Callable[[Observation], None], attributes: Mapping[str, Any] | None = None
) -> Iterator[Timer]:
    """Time a block and ``emit`` its observation; an exception marks it with its type."""
    timer = Timer(name, attributes)
    try:
        yield timer
    except BaseException as exc:
        cancelled = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
        timer.outcome = "cancelled" if cancelled else "error"
        timer.error_type = type(exc).__name__
        raise
    finally:
        emit(timer.finish())
