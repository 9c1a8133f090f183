"""OpenTelemetry through the API only: no-ops until an application installs an SDK.

Traces: the host opens a server span per request (continuing the caller's ``traceparent``);
ingest, storage calls, processing runs and deliveries open spans of their own. The upload's
trace context is stored with its job and its events, so one trace links the upload request,
the processing run in whichever worker claimed it, and every delivery of its events.

Metrics come from this module's ``observe`` hook (a built-in monitor): durations in seconds
(``aecflow.upload.duration``, ``aecflow.processing.duration``, ``aecflow.delivery.duration``),
``aecflow.operations`` counted by name, outcome and error type, and gauges for each circuit
breaker's state and the depth of the job and outbox queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace

from aecflow import hookimpl
from aecflow.observe import Observation

if TYPE_CHECKING:
    from aecflow.flow import Flow

log = logging.getLogger(__name__)
tracer = trace.get_tracer("aecflow")
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

_flows: weakref.WeakSet[Flow] = weakref.WeakSet()
_depths: dict[tuple[str, str], int] = {}
_pollers: dict[int, asyncio.Task[None]] = {}


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to store with work done later."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def continued(parent: str | None) -> Iterator[None]:
    """Make ``parent`` (a stored ``traceparent``) the current context for a block."""
    if not parent:
        yield
        return
    token = otel_context.attach(propagate.extract({"traceparent": parent}))
    try:
        yield
    finally:
        otel_context.detach(token)


@hookimpl
def observe(observation: Observation) -> None:
    attributes = {"aecflow.operation": observation.name, "outcome": observation.outcome}
    if observation.error_type:
        attributes["error.type"] = observation.error_type
    OPERATIONS.add(1, attributes)
    histogram = DURATIONS.get(observation.name)
    if histogram is not None:
        histogram.record(observation.duration_s, {"outcome": observation.outcome})


@hookimpl
def startup(flow: Flow) -> None:
    _flows.add(flow)
    _pollers[id(flow)] = asyncio.get_running_loop().create_task(_poll_queues(flow))


@hookimpl
async def shutdown(flow: Flow) -> None:
    _flows.discard(flow)
    task = _pollers.pop(id(flow), None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _poll_queues(flow: Flow) -> None:
    """Refresh queue depths for the gauge (its callback cannot query the database itself)."""
    from aecflow.store import jobs, outbox
    from aecflow.store.statuses import JobStatus, OutboxStatus

    while True:
        try:
            async with flow.engine.connect() as conn:
                for status in (JobStatus.QUEUED, JobStatus.RUNNING):
                    _depths[("jobs", status.value)] = await jobs.count_by_status(conn, status)
                for state in (OutboxStatus.PENDING, OutboxStatus.DEAD):
                    _depths[("outbox", state.value)] = await outbox.count_by_status(conn, state)
        except Exception as exc:
            log.debug("queue depth poll failed: %s", exc)
        await asyncio.sleep(QUEUE_POLL_S)


def _breaker_states(_options: Any) -> Iterable[metrics.Observation]:
    for flow in list(_flows):
        for name, breaker in flow.breakers.items():
            yield metrics.Observation(BREAKER_STATES[breaker.state.value], {"breaker": name})


def _queue_depths(_options: Any) -> Iterable[metrics.Observation]:
    for (queue, status), depth in list(_depths.items()):
        yield metrics.Observation(depth, {"queue": queue, "status": status})


meter.create_observable_gauge(
    "aecflow.breaker.state",
    [_breaker_states],
    unit="1",
    description="0 closed, 1 half-open, 2 open",
)
meter.create_observable_gauge(
    "aecflow.queue.depth",
    [_queue_depths],
    unit="{item}",
    description="Jobs and outbox events by status",
)
