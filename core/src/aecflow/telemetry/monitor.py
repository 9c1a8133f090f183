"""The built-in monitor: OpenTelemetry metrics from observations, breakers and queues.

Durations in seconds (``aecflow.upload.duration``, ``aecflow.processing.duration``,
``aecflow.delivery.duration``), ``aecflow.operations`` counted by name, outcome and error type,
and gauges for each circuit breaker's state and the depth of the job and outbox queues.

Each open flow gets its own :class:`Monitor` (its breakers, its queue depths, its poller), so
two flows in one process never see each other's state. The instruments themselves are
process-wide, like the meter provider they come from: an observable gauge takes its callbacks
once, so :data:`GAUGES` asks each live monitor in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncEngine

from aecflow import hookimpl
from aecflow.breaker import CircuitBreaker
from aecflow.observe import Observation
from aecflow.store import jobs as job_rows
from aecflow.store import outbox as outbox_rows
from aecflow.store.statuses import JobStatus, OutboxStatus

log = logging.getLogger(__name__)
meter = metrics.get_meter("aecflow")

DURATIONS = {
    "flow.ingest": meter.create_histogram(
        "aecflow.upload.duration", unit="s", description="Time to store an upload"
    ),
    "upload.complete": meter.create_histogram(
        "aecflow.upload_session.complete.duration",
        unit="s",
        description="Time to verify and publish an upload session",
    ),
    "processing.run": meter.create_histogram(
        "aecflow.processing.duration", unit="s", description="Time of one processing run"
    ),
    "outbox.delivery": meter.create_histogram(
        "aecflow.delivery.duration", unit="s", description="Time of one delivery attempt"
    ),
}
OPERATIONS = meter.create_counter(
    "aecflow.operations",
    unit="{operation}",
    description="Operations by name, outcome and error type",
)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
QUEUE_POLL_S = 15.0
#: The statuses whose counts the ``aecflow.queue.depth`` gauge reports.
JOB_QUEUES = (JobStatus.QUEUED, JobStatus.RUNNING)
OUTBOX_QUEUES = (OutboxStatus.PENDING, OutboxStatus.DEAD)


class Monitor:
    """One flow's metrics: registered as a plugin object when that flow starts."""

    def __init__(self, engine: AsyncEngine, breakers: Mapping[str, CircuitBreaker]) -> None:
        self.engine = engine
        self.breakers = breakers
        #: (queue, status) -> depth, refreshed by the poller (a gauge callback cannot query).
        self.depths: dict[tuple[str, str], int] = {}
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll_queues())
        GAUGES.monitors.add(self)

    @hookimpl
    def observe(self, observation: Observation) -> None:
        attributes = {"aecflow.operation": observation.name, "outcome": observation.outcome}
        if observation.error_type:
            attributes["error.type"] = observation.error_type
        OPERATIONS.add(1, attributes)
        histogram = DURATIONS.get(observation.name)
        if histogram is not None:
            histogram.record(observation.duration_s, {"outcome": observation.outcome})

    @hookimpl
    async def shutdown(self) -> None:
        GAUGES.monitors.discard(self)
        task, self._poller = self._poller, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll_queues(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception as exc:
                log.debug("queue depth poll failed: %s", exc)
            await asyncio.sleep(QUEUE_POLL_S)

    async def poll_once(self) -> None:
        """Count this flow's queued, running, pending and dead rows."""
        async with self.engine.connect() as conn:
            for job_status in JOB_QUEUES:
                count = await job_rows.count_by_status(conn, job_status)
                self.depths[("jobs", job_status.value)] = count
            for event_status in OUTBOX_QUEUES:
                count = await outbox_rows.count_by_status(conn, event_status)
                self.depths[("outbox", event_status.value)] = count

    def breaker_states(self) -> Iterable[metrics.Observation]:
        for name, breaker in self.breakers.items():
            yield metrics.Observation(BREAKER_STATES[breaker.state.value], {"breaker": name})

    def queue_depths(self) -> Iterable[metrics.Observation]:
        for (queue, status), depth in list(self.depths.items()):
            yield metrics.Observation(depth, {"queue": queue, "status": status})


class Gauges:
    """The process's two observable gauges, answered by every monitor still running."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.monitors: weakref.WeakSet[Monitor] = weakref.WeakSet()
        meter.create_observable_gauge(
            "aecflow.breaker.state",
            [self._breaker_states],
            unit="1",
            description="0 closed, 1 half-open, 2 open",
        )
        meter.create_observable_gauge(
            "aecflow.queue.depth",
            [self._queue_depths],
            unit="{item}",
            description="Jobs and outbox events by status",
        )

    def _breaker_states(self, _options: Any) -> Iterable[metrics.Observation]:
        for monitor in list(self.monitors):
            yield from monitor.breaker_states()

    def _queue_depths(self, _options: Any) -> Iterable[metrics.Observation]:
        for monitor in list(self.monitors):
            yield from monitor.queue_depths()


GAUGES = Gauges(meter)
