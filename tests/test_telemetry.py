"""OpenTelemetry with the SDK's in-memory exporters: one trace from upload to delivery, and
metrics with the documented names and units."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from . import engine_plugin
from .conftest import make_settings
from .live import live_host

PLUGINS = [("engine_plugin", engine_plugin)]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def sdk() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    """The global providers can be set once per process; this module is their only user."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    yield spans, reader


async def test_one_trace_links_upload_processing_and_delivery(
    sdk, tmp_path: Path, database_url: str
) -> None:
    spans, reader = sdk
    spans.clear()
    settings = make_settings(
        tmp_path,
        database_url,
        notifiers=[{"backend": "flaky", "fail_times": 1}],
        worker={"embedded": True, "poll_interval_s": 0.05},
        outbox={"backoff_base_s": 0.01, "backoff_max_s": 0.05},
        auth={"mode": "none"},
    )
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.post(
            "/v1/projects/p1/files?filename=m.ok",
            content=b"a\nb\n",
            headers={"traceparent": PARENT},
        )
        assert response.status_code == 201
        notifier = app.state.flow.notifiers["flaky"]
        deadline = time.monotonic() + 30
        while {e.type for e in notifier.delivered} < {"file.stored", "file.processed"}:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        audit = await app.state.flow.audit.search(action="file.upload")
        data = reader.get_metrics_data()  # while the flow is open: its gauges report
    finished = spans.get_finished_spans()
    in_trace = [s for s in finished if format(s.context.trace_id, "032x") == TRACE_ID]
    names = {s.name for s in in_trace}
    assert "POST /v1/projects/p1/files" in names
    assert {"aecflow.ingest", "aecflow.storage.put", "aecflow.process"} <= names
    assert {"deliver file.stored", "deliver file.processed"} <= names
    server = next(s for s in in_trace if s.name.startswith("POST"))
    assert server.parent.span_id == int("00f067aa0ba902b7", 16), "continues the caller's trace"
    assert server.attributes["http.response.status_code"] == 201
    failed_attempts = [
        s
        for s in in_trace
        if s.name.startswith("deliver") and s.attributes["aecflow.outcome"] == "retry"
    ]
    assert failed_attempts, "the failed first attempt is in the trace too"
    for event in notifier.delivered:
        assert TRACE_ID in event.attributes["traceparent"], event.type
    assert audit["items"][0]["trace_id"] == TRACE_ID

    found = {
        m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    for name in (
        "aecflow.upload.duration",
        "aecflow.processing.duration",
        "aecflow.delivery.duration",
    ):
        assert found[name].unit == "s"
        assert sum(p.count for p in found[name].data.data_points) >= 1
    outcomes = {
        (p.attributes["aecflow.operation"], p.attributes["outcome"], p.attributes.get("error.type"))
        for p in found["aecflow.operations"].data.data_points
    }
    assert ("outbox.delivery", "retry", "ConnectionError") in outcomes
    assert ("processing.run", "succeeded", None) in outcomes
    breakers = {
        p.attributes["breaker"]: p.value for p in found["aecflow.breaker.state"].data.data_points
    }
    assert breakers.get("notifier:flaky") == 0 and breakers.get("storage") == 0
    assert "aecflow.queue.depth" in found


async def test_two_flows_in_one_process_have_their_own_monitor(tmp_path: Path) -> None:
    from aecflow.flow import Flow
    from aecflow.streams import aiter_bytes
    from aecflow.telemetry import MONITOR_PLUGIN, Monitor
    from aecflow.telemetry.monitor import GAUGES

    def settings(name: str):
        return make_settings(tmp_path / name, f"sqlite+aiosqlite:///{tmp_path / name}.db")

    async with Flow.open(settings("b"), plugins=PLUGINS) as flow_b:
        async with Flow.open(settings("a"), plugins=PLUGINS) as flow_a:
            monitor_a = flow_a.plugins.pm.get_plugin(MONITOR_PLUGIN)
            monitor_b = flow_b.plugins.pm.get_plugin(MONITOR_PLUGIN)
            assert isinstance(monitor_a, Monitor) and isinstance(monitor_b, Monitor)
            assert monitor_a is not monitor_b
            assert monitor_a.breakers is flow_a.breakers and monitor_b.breakers is flow_b.breakers
            await flow_a.ingest("p1", "m.ok", aiter_bytes(b"a\n"))  # queues a job in a only
            await monitor_a.poll_once()
            await monitor_b.poll_once()
            assert monitor_a.depths[("jobs", "queued")] == 1
            assert monitor_b.depths[("jobs", "queued")] == 0
        assert monitor_a not in GAUGES.monitors
        assert monitor_b in GAUGES.monitors  # closing a stopped only a's monitor
        assert monitor_b._poller is not None and not monitor_b._poller.done()
    assert monitor_b not in GAUGES.monitors
