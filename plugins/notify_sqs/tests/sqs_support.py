"""Test helpers: settings for SQS destinations, reading a queue back, driving the dispatcher."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aecflow.config import Settings
from aecflow.testing import (  # noqa: F401 - re-exported for the tests
    all_delivered,
    deliver_until,
    flow_settings,
    open_flow,
    outbox_rows,
)

REGION = "us-east-1"


def sqs_settings(
    tmp_path: Path, database_url: str, *notifiers: dict[str, Any], **overrides: Any
) -> Settings:
    """Quick retries and a quick breaker, so tests wait on conditions, never on the clock.
    Objects go to the kit's ``memory`` storage: open the flow with ``open_flow``."""
    raw: dict[str, Any] = {
        "database": {"url": database_url},
        "notifiers": list(notifiers),
        "outbox": {"max_attempts": 6, "backoff_base_s": 0.01, "backoff_max_s": 0.05},
        "breakers": {"failure_threshold": 50, "reset_timeout_s": 0.2},
    }
    raw.update(overrides)
    return flow_settings(tmp_path, **raw)


def destination(queue_url: str, endpoint: str, **options: Any) -> dict[str, Any]:
    return {
        "backend": "sqs",
        "queue_url": queue_url,
        "endpoint_url": endpoint,
        "region": REGION,
    } | options


async def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message in the queue (received and deleted), oldest first."""
    messages: list[dict[str, Any]] = []
    while True:
        answer = await sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            VisibilityTimeout=30,
        )
        batch = answer.get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        await sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
            ],
        )


def event_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["MessageAttributes"]["event_id"]["StringValue"] for m in messages]


def bodies(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in messages]
