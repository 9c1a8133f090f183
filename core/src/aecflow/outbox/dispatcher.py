"""The outbox dispatcher: delivers committed events to every destination, at least once.

One loop per destination claims due rows (leases, as jobs do), hands them to the notifier in
batches and records each event's outcome: delivered; retried later with exponential backoff
and jitter (or the destination's Retry-After); dead-lettered after ``outbox.max_attempts`` or
when the notifier rejects the event outright. Each destination has its own circuit breaker:
while it is open nothing is claimed, so an outage postpones delivery without spending attempts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import propagate, trace
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.access.audit import Operation
from aecflow.breaker import CircuitBreaker, CircuitOpen, admitted
from aecflow.loading.runtime import Runtime
from aecflow.notify import DeliveryOutcome, DeliveryStatus, Event, Notifier
from aecflow.observe import Observation
from aecflow.retries import backoff, db_retries
from aecflow.store import leases
from aecflow.store import outbox as outbox_rows
from aecflow.store.outbox import OutboxRow
from aecflow.store.statuses import OutboxStatus
from aecflow.telemetry import continued, tracer

log = logging.getLogger(__name__)


def event_from_row(row: OutboxRow, span: trace.Span | None = None) -> Event:
    """The notifier's view of an outbox row; ``traceparent`` is the delivery span's."""
    payload = row.payload
    carrier: dict[str, str] = {}
    if span is not None:
        propagate.inject(carrier, context=trace.set_span_in_context(span))
    return Event(
        id=row.event_id,
        type=row.event_type,
        occurred_at=dt.datetime.fromisoformat(payload["occurred_at"].replace("Z", "+00:00")),
        project=row.project,
        file_id=row.file_id,
        payload=payload,
        attributes={"traceparent": carrier["traceparent"]} if "traceparent" in carrier else {},
    )


class Dispatcher:
    def __init__(self, runtime: Runtime, *, owner: str | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.outbox
        self.owner = owner or leases.new_owner("dispatcher")
        self.lease = dt.timedelta(seconds=self.settings.lease_s)
        self.poll_s = runtime.settings.worker.poll_interval_s
        #: Set by :meth:`Runtime.wake` when this process commits new events.
        self.wake = runtime.listen()
        #: Destinations that answered "gone" (webhook 410): events are kept, not sent.
        self.disabled: dict[str, str] = {}

    def breaker(self, name: str) -> CircuitBreaker:
        return self.runtime.breakers[f"notifier:{name}"]

    # -- loops -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """One delivery loop per destination until ``stop`` is set."""
        loops = [
            asyncio.create_task(self._loop(name, notifier, stop), name=f"outbox {name}")
            for name, notifier in self.runtime.notifiers.items()
        ]
        if loops:
            await asyncio.gather(*loops)

    async def _loop(self, name: str, notifier: Notifier, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            delay = self.poll_s
            try:
                sent = await self.deliver_once(name, notifier)
                failures = 0
                if sent:
                    continue
                wait = self.breaker(name).retry_after()
                if wait:
                    delay = min(wait, 30.0)
            except Exception as exc:
                failures += 1
                delay = min(30.0, self.poll_s * 2**failures)
                log.warning(
                    "outbox %s: %s: %s; retrying in %.1fs", name, type(exc).__name__, exc, delay
                )
            await _first(stop, self.wake, delay)
            self.wake.clear()

    async def run_until_idle(self) -> None:
        """Deliver until no destination has a due event it can take now (CLI and tests)."""
        while True:
            sent = 0
            for name, notifier in self.runtime.notifiers.items():
                sent += await self.deliver_once(name, notifier)
            if not sent:
                return

    # -- one batch -------------------------------------------------------------------------

    async def deliver_once(self, name: str, notifier: Notifier) -> int:
        """Claim and deliver one batch for ``name``; returns how many events were attempted."""
        if name in self.disabled or self.breaker(name).retry_after() is not None:
            return 0
        now = self.runtime.clock()
        async with self.runtime.engine.begin() as conn:
            rows = await outbox_rows.claim(
                conn, name, self.owner, notifier.max_batch, self.lease, now
            )
        if not rows:
            return 0
        outcomes = await self._attempt(name, notifier, rows)
        async for attempt in db_retries():
            with attempt:
                await self._record(name, rows, outcomes)
        return len(rows)

    async def _attempt(
        self, name: str, notifier: Notifier, rows: Sequence[OutboxRow]
    ) -> dict[str, DeliveryOutcome]:
        breaker = self.breaker(name)
        spans = [self._delivery_span(name, row) for row in rows]
        events = [event_from_row(row, span) for row, span in zip(rows, spans, strict=True)]
        try:
            return await self._attempt_batch(name, notifier, breaker, events, spans)
        finally:
            for span in spans:
                span.end()

    def _delivery_span(self, name: str, row: OutboxRow) -> trace.Span:
        """A producer span per event, in the trace of the change the event announces."""
        with continued(row.traceparent):
            return tracer.start_span(
                f"deliver {row.event_type}",
                kind=trace.SpanKind.PRODUCER,
                attributes={
                    "aecflow.destination": name,
                    "aecflow.event_id": row.event_id,
                    "aecflow.event_type": row.event_type,
                    "aecflow.attempt": row.attempts + 1,
                },
            )

    async def _attempt_batch(
        self,
        name: str,
        notifier: Notifier,
        breaker: CircuitBreaker,
        events: list[Event],
        spans: list[trace.Span],
    ) -> dict[str, DeliveryOutcome]:
        started = time.monotonic()
        error_type = None
        try:
            with admitted(breaker) as call:
                try:
                    outcomes = dict(await notifier.deliver(events))
                except Exception as exc:  # whatever a notifier raises counts against it
                    call.failed()
                    error_type = type(exc).__name__
                    outcomes = {
                        e.id: DeliveryOutcome(DeliveryStatus.RETRY, f"{error_type}: {exc}")
                        for e in events
                    }
                else:
                    statuses = {outcomes.get(e.id, _MISSING).status for e in events}
                    if DeliveryStatus.RETRY in statuses:
                        call.failed()
        except CircuitOpen as exc:  # opened meanwhile: give the rows back untouched
            return {e.id: DeliveryOutcome(DeliveryStatus.RETRY, str(exc)) for e in events}
        for event, span in zip(events, spans, strict=True):
            outcome = outcomes.get(event.id, _MISSING)
            span.set_attribute("aecflow.outcome", outcome.status.value)
            if outcome.status is not DeliveryStatus.DELIVERED:
                span.set_status(trace.StatusCode.ERROR, outcome.error or outcome.status.value)
            self.runtime.emit(
                Observation(
                    "outbox.delivery",
                    time.monotonic() - started,
                    outcome.status.value,
                    error_type,
                    {"destination": name, "event_type": event.type, "event_id": event.id},
                )
            )
        return outcomes

    async def _record(
        self, name: str, rows: Sequence[OutboxRow], outcomes: Mapping[str, DeliveryOutcome]
    ) -> None:
        """Record a batch's outcomes in one transaction: delivered rows in one statement (the
        common case, and the dispatcher's throughput), the others one by one."""
        now = self.runtime.clock()
        delivered = [
            r for r in rows if outcomes.get(r.event_id, _MISSING).status is DeliveryStatus.DELIVERED
        ]
        async with self.runtime.engine.begin() as conn:
            if delivered:
                done = await outbox_rows.mark_delivered(
                    conn, [r.id for r in delivered], self.owner, now
                )
                await self.runtime.audit.insert_many(
                    conn,
                    [
                        self._audit_row(name, row, "event.delivered", None)
                        for row in delivered
                        if row.id in done
                    ],
                )
            for row in rows:
                outcome = outcomes.get(row.event_id, _MISSING)
                if outcome.status is not DeliveryStatus.DELIVERED:
                    await self._record_one(conn, name, row, outcome, now)

    async def _record_one(
        self,
        conn: AsyncConnection,
        name: str,
        row: OutboxRow,
        outcome: DeliveryOutcome,
        now: dt.datetime,
    ) -> None:
        values: dict[str, Any] = {}
        attempts = row.attempts + 1
        dead = False
        if outcome.status is DeliveryStatus.DISABLED:
            self.disabled[name] = outcome.error or "disabled by the destination"
            log.error(
                "destination %s disabled itself: %s; its events are kept", name, self.disabled[name]
            )
            values |= {"last_error": outcome.error}
        elif outcome.status is DeliveryStatus.REJECTED or attempts >= self.settings.max_attempts:
            dead = True
            values |= {
                "status": OutboxStatus.DEAD,
                "attempts": attempts,
                "last_error": outcome.error or "rejected",
            }
            self.runtime.emit(
                Observation(
                    "outbox.dead_letter",
                    0.0,
                    "dead",
                    None,
                    {"destination": name, "event_id": row.event_id},
                )
            )
        else:
            delay = self.retry_delay(attempts, outcome.retry_after)
            values |= {
                "attempts": attempts,
                "available_at": now + delay,
                "last_error": outcome.error,
            }
        held = await outbox_rows.settle(conn, row.id, self.owner, **values)
        if dead and held:
            await self.runtime.audit.insert(
                conn, self._audit_row(name, row, "event.dead", "dead_letter")
            )

    def _audit_row(
        self, name: str, row: OutboxRow, action: str, error_code: str | None
    ) -> dict[str, Any]:
        return Operation(
            self.runtime.audit,
            action,
            False,
            project=row.project,
            file_id=row.file_id,
            details={
                "destination": name,
                "event_id": row.event_id,
                "event_type": row.event_type,
                "attempts": row.attempts + 1,
            },
        ).row("error" if error_code else "ok", error_code)

    def retry_delay(self, attempts: int, retry_after: dt.timedelta | None) -> dt.timedelta:
        """Exponential backoff with full jitter, never sooner than the destination asked."""
        delay = backoff(attempts, self.settings.backoff_base_s, self.settings.backoff_max_s)
        return max(delay, retry_after) if retry_after else delay


_MISSING = DeliveryOutcome(DeliveryStatus.RETRY, "the notifier reported no outcome")


async def _first(stop: asyncio.Event, wake: asyncio.Event, delay: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
