"""Events and the transactional outbox.

An event is written in the same transaction as the state change it announces, one outbox row
per destination that wants it, so a committed change is never left unannounced and an
announced change is never rolled back. The event id is shared by all destinations and stable
across retries: it is the Standard Webhooks ``webhook-id`` and the SQS deduplication id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow import telemetry
from aecflow.clock import iso
from aecflow.ids import uuid7
from aecflow.notify import Notifier
from aecflow.store import outbox as outbox_rows
from aecflow.store.records import FileRecord
from aecflow.store.statuses import OutboxStatus

PAYLOAD_VERSION = 1
EVENT_TYPES = (
    "file.stored",
    "file.processed",
    "file.processing_failed",
    "file.step_succeeded",
    "file.step_failed",
    "file.deleted",
    "file.restored",
    "file.purged",
)


def file_event(
    event_type: str, record: FileRecord, now: dt.datetime, *, step: str | None = None
) -> dict[str, Any]:
    """The versioned payload of a file event; purged files carry no personal data. Step
    events name their ``step``."""
    assert event_type in EVENT_TYPES, event_type
    data = record.as_dict()
    if event_type == "file.purged":
        data = {"id": record.id, "project": record.project, "purged_at": data["purged_at"]}
    event = {
        "id": uuid7(),
        "type": event_type,
        "version": PAYLOAD_VERSION,
        "occurred_at": iso(now),
        "project": record.project,
        "file": data,
    }
    if step is not None:
        event["step"] = step
    return event


async def enqueue(
    conn: AsyncConnection,
    event: Mapping[str, Any],
    destinations: Iterable[tuple[str, Notifier]],
    now: dt.datetime,
) -> int:
    """Write one outbox row per destination that wants ``event``; returns how many."""
    rows = [
        {
            "id": uuid7(),
            "event_id": event["id"],
            "destination": name,
            "event_type": event["type"],
            "project": event["project"],
            "file_id": event["file"]["id"],
            "payload": dict(event),
            "traceparent": telemetry.traceparent(),
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "available_at": now,
            "created_at": now,
        }
        for name, notifier in destinations
        if notifier.wants(event["type"])
    ]
    if rows:
        await outbox_rows.insert(conn, rows)
    return len(rows)


async def announce(
    conn: AsyncConnection,
    notifiers: Mapping[str, Notifier],
    event_type: str,
    record: FileRecord,
    now: dt.datetime,
    *,
    step: str | None = None,
) -> None:
    """Queue ``event_type`` of ``record`` for every destination, in the caller's transaction."""
    await enqueue(conn, file_event(event_type, record, now, step=step), notifiers.items(), now)
