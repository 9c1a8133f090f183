"""Test helpers: settings for SQS destinations, reading a queue back, driving the dispatcher."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aecflow.config import Settings
from aecflow.db.schema import outbox
from aecflow.dispatcher import Dispatcher
from aecflow.flow import Flow
from tests.conftest import make_settings

REGION = "us-east-1"


def sqs_settings(
    tmp_path: Path, database_url: str, *notifiers: dict[str, Any], **overrides: Any
) -> Settings:
    """Quick retries and a quick breaker, so tests wait on conditions, never on the clock."""
    raw: dict[str, Any] = {
        "notifiers": list(notifiers),
        "outbox": {"max_attempts": 6, "backoff_base_s": 0.01, "backoff_max_s": 0.05},
        "breakers": {"failure_threshold": 50, "reset_timeout_s": 0.2},
    }
    raw.update(overrides)
    return make_settings(tmp_path, database_url, **raw)


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


async def outbox_rows(flow: Flow, destination: str | None = None) -> list[dict[str, Any]]:
    stmt = sa.select(outbox).order_by(outbox.c.id)
    if destination:
        stmt = stmt.where(outbox.c.destination == destination)
    async with flow.engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(stmt)).mappings()]


async def deliver_until(
    flow: Flow,
    done: Callable[[list[dict[str, Any]]], bool],
    *,
    dispatcher: Dispatcher | None = None,
    timeout_s: float = 20.0,
) -> Dispatcher:
    """Run delivery rounds for every destination until ``done(rows)`` holds."""
    dispatcher = dispatcher or Dispatcher(flow)
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await outbox_rows(flow)
        if done(rows):
            return dispatcher
        assert time.monotonic() < deadline, rows
        for name, notifier in flow.notifiers.items():
            await dispatcher.deliver_once(name, notifier)
        await asyncio.sleep(0.01)


def all_delivered(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and all(row["status"] == "delivered" for row in rows)
