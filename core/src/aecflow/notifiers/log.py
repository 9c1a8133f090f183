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
        """One readable line per event; the whole payload too when DEBUG is on."""
        for event in events:
            file = event.payload.get("file") or {}
            processing = file.get("processing") or {}
            outcome = f" {processing['outcome']}" if processing.get("outcome") else ""
            log.log(
                self.level,
                "%s %s/%s %s%s (event %s)",
                event.type,
                event.project,
                file.get("filename", "-"),
                event.file_id,
                outcome,
                event.id,
            )
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s", event.type, json.dumps(dict(event.payload), default=str))
        return {event.id: DeliveryOutcome(DeliveryStatus.DELIVERED) for event in events}
