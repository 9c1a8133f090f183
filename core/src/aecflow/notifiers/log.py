"""The log notifier: the embedded default destination, writes each event to the log."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

import pydantic

from aecflow.notify import DeliveryOutcome, DeliveryStatus, Event, Notifier

log = logging.getLogger("aecflow.events")


class LogNotifierConfig(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    #: Only these event types (all when empty).
    events: list[str] = []
    level: str = "INFO"


class LogNotifier(Notifier):
    max_batch = 100

    def __init__(self, config: LogNotifierConfig) -> None:
        self.config = config
        self.level = logging.getLevelName(config.level.upper())

    def wants(self, event_type: str) -> bool:
        return not self.config.events or event_type in self.config.events

    async def deliver(self, events: Sequence[Event]) -> Mapping[str, DeliveryOutcome]:
        for event in events:
            log.log(self.level, "%s %s", event.type, json.dumps(dict(event.payload), default=str))
        return {event.id: DeliveryOutcome(DeliveryStatus.DELIVERED) for event in events}
