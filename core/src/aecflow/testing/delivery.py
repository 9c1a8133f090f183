"""Driving the outbox in tests: read its rows, run delivery rounds until a condition holds.

Tests wait on conditions (``all_delivered``), never on the clock; give the flow quick retries
(``outbox.backoff_base_s``) so a failing-then-recovering destination settles fast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aecflow.flow import Flow
from aecflow.outbox.dispatcher import Dispatcher
from aecflow.store import outbox

Rows = list[dict[str, Any]]


async def outbox_rows(flow: Flow, destination: str | None = None) -> Rows:
    """Every outbox row (all columns, as dicts), oldest first; one destination's if given."""
    async with flow.engine.connect() as conn:
        return await outbox.every_row(conn, destination)


async def deliver_until(
    flow: Flow,
    done: Callable[[Rows], bool],
    *,
    dispatcher: Dispatcher | None = None,
    timeout_s: float = 20.0,
) -> Dispatcher:
    """Run delivery rounds for every destination until ``done(rows)`` holds; fails with the
    rows when it does not within ``timeout_s``. Returns the dispatcher (its state, e.g.
    ``disabled``, is worth asserting on)."""
    dispatcher = dispatcher or Dispatcher(flow.runtime)
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await outbox_rows(flow)
        if done(rows):
            return dispatcher
        if time.monotonic() >= deadline:
            raise AssertionError(f"not settled within {timeout_s:g}s: {rows}")
        for name, notifier in flow.notifiers.items():
            await dispatcher.deliver_once(name, notifier)
        await asyncio.sleep(0.01)


def all_delivered(rows: Rows) -> bool:
    """There are rows, and every one was delivered."""
    return bool(rows) and all(row["status"] == "delivered" for row in rows)
