"""The notifier contract: deliver a batch of events and say, per event, how it went.

Retries, backoff, circuit breaking and dead-lettering belong to the core's outbox dispatcher,
so a notifier only makes one attempt per call and reports honestly.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One event as notifiers see it. ``id`` is stable across retries (idempotency key)."""

    id: str
    type: str
    occurred_at: dt.datetime
    project: str
    file_id: str | None
    payload: Mapping[str, Any]
    attributes: Mapping[str, str] = field(default_factory=dict)


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    #: Worth trying again later (timeout, 5xx, 429); counts as a health failure for the breaker.
    RETRY = "retry"
    #: Will never succeed (e.g. payload too large); the event is dead-lettered at once.
    REJECTED = "rejected"
    #: The destination is gone (e.g. webhook 410): stop delivering, keep the events.
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    status: DeliveryStatus
    error: str | None = None
    #: The destination asked us to wait this long (Retry-After).
    retry_after: dt.timedelta | None = None


class Notifier(ABC):
    """A destination for events: one attempt per ``deliver`` call, an honest outcome per event
    (the core's outbox retries, backs off, breaks the circuit and dead-letters)."""

    #: The configured destination's name, set by the registry.
    name: str = ""
    #: Upper bound of events per ``deliver`` call.
    max_batch: int = 10

    def wants(self, event_type: str) -> bool:
        """Whether this destination subscribes to ``event_type`` (filters are per destination)."""
        return True

    async def start(self) -> None:
        """Called once when a flow opens: open clients, check the destination is reachable and
        read its limits. Raise to refuse to start."""

    @abstractmethod
    async def deliver(self, events: Sequence[Event]) -> Mapping[str, DeliveryOutcome]:
        """Try each event once; return an outcome per event id (missing ids count as RETRY)."""

    async def close(self) -> None:
        """Release clients and connections."""
