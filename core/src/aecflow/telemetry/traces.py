"""Traces through the OpenTelemetry API only: no-ops until an application installs an SDK.

The host opens a server span per request (continuing the caller's ``traceparent``); ingest,
storage calls, processing runs and deliveries open spans of their own. The upload's trace
context is stored with its job and its events, so one trace links the upload request, the
processing run in whichever worker claimed it, and every delivery of its events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

tracer = trace.get_tracer("aecflow")


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
