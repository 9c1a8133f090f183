"""Installing the OpenTelemetry SDK for ``aecflow serve`` and ``aecflow worker``.

Libraries never install an SDK; the programs that run aecflow do, when configured. Embedding
applications configure their own SDK and aecflow's spans and metrics join it.
"""

from __future__ import annotations

from collections.abc import Callable

from aecflow.config import TelemetrySettings
from aecflow.errors import ConfigError


def configure(settings: TelemetrySettings) -> Callable[[], None]:
    """Install tracer and meter providers as configured; returns a function that flushes them."""
    if settings.exporter == "none" and not settings.prometheus:
        return lambda: None
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            ConsoleMetricExporter,
            MetricReader,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        raise ConfigError(
            "[telemetry] needs the OpenTelemetry SDK: pip install 'aecflow[telemetry]'"
        ) from None
    resource = Resource.create({"service.name": settings.service_name})
    readers: list[MetricReader] = []
    tracer_provider = TracerProvider(resource=resource)
    if settings.exporter == "console":
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    elif settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if settings.prometheus:
        try:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
        except ImportError:
            raise ConfigError(
                "[telemetry] prometheus = true needs "
                "opentelemetry-exporter-prometheus and prometheus-client"
            ) from None
        readers.append(PrometheusMetricReader())
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)

    def flush() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return flush
