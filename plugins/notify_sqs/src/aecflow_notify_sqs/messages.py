"""Events as SQS messages, and messages as SendMessageBatch calls within SQS's limits.

A message's size, as SQS counts it, is its body plus each message attribute's name, type
and value. A batch holds at most 10 entries and, in total, no more than the queue's
``MaximumMessageSize`` (SQS caps the total and each message alike).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aecflow.notify import Event

MAX_ENTRIES = 10
STRING = "String"


def encode_body(payload: Mapping[str, Any]) -> str:
    """Compact, key-sorted, ASCII-only JSON: always within the characters SQS accepts."""
    return json.dumps(
        payload, separators=(",", ":"), sort_keys=True, ensure_ascii=True, allow_nan=False
    )


@dataclass(frozen=True, slots=True)
class Message:
    event_id: str
    #: A SendMessageBatch entry without its ``Id`` (given per call).
    entry: dict[str, Any]
    size: int


def build_message(event: Event, *, fifo: bool, group_by: str) -> Message:
    """The message for ``event``: body, attributes and, on FIFO queues, group and dedup ids."""
    body = encode_body(event.payload)
    attributes = {"event_type": event.type, "event_id": event.id}
    if traceparent := event.attributes.get("traceparent"):
        attributes["traceparent"] = traceparent
    entry: dict[str, Any] = {
        "MessageBody": body,
        "MessageAttributes": {
            name: {"DataType": STRING, "StringValue": value} for name, value in attributes.items()
        },
    }
    if fifo:
        group = event.file_id if group_by == "file" and event.file_id else event.project
        entry["MessageGroupId"] = group
        entry["MessageDeduplicationId"] = event.id  # a redelivery within 5 minutes is dropped
    size = len(body.encode()) + sum(
        len(name.encode()) + len(STRING) + len(value.encode()) for name, value in attributes.items()
    )
    return Message(event.id, entry, size)


def batches(messages: Iterable[Message], max_bytes: int) -> list[list[Message]]:
    """Consecutive groups of at most 10 messages and ``max_bytes`` in total, order kept."""
    groups: list[list[Message]] = []
    current: list[Message] = []
    total = 0
    for message in messages:
        if current and (len(current) == MAX_ENTRIES or total + message.size > max_bytes):
            groups.append(current)
            current, total = [], 0
        current.append(message)
        total += message.size
    if current:
        groups.append(current)
    return groups
