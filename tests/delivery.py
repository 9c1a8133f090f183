"""Driving the outbox in tests: read its rows, run delivery rounds until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from aecflow.flow import Flow
from aecflow.outbox.dispatcher import Dispatcher
from aecflow.store.schema import outbox


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
    dispatcher = dispatcher or Dispatcher(flow.runtime)
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
