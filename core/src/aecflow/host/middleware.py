"""Request ids and access logs, as plain ASGI middleware (streams untouched)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from opentelemetry import propagate, trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aecflow.telemetry import tracer

access_log = logging.getLogger("aecflow.access")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """Give every request an id (the client's ``X-Request-ID`` when sane), a server span
    (continuing the caller's ``traceparent``) and one access-log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _CLIENT_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.monotonic()
        status = 500
        sent = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with tracer.start_as_current_span(
            f"{scope['method']} {scope['path']}",
            context=propagate.extract(headers),
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": scope["method"],
                "url.path": scope["path"],
                "aecflow.request_id": request_id,
            },
        ) as span:
            context = span.get_span_context()
            if context.is_valid:
                scope["state"]["trace_id"] = format(context.trace_id, "032x")
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(trace.StatusCode.ERROR)
                self._log(scope, request_id, status, sent, started)

    @staticmethod
    def _log(scope: Scope, request_id: str, status: int, sent: int, started: float) -> None:
        """One readable line; the same fields as a dict in the record's ``access`` attribute,
        for structured (JSON) log handlers."""
        client = scope.get("client") or ("-", 0)
        fields = {
            "request_id": request_id,
            "trace_id": scope["state"].get("trace_id"),
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "bytes_out": sent,
            "duration_s": round(time.monotonic() - started, 6),
            "client": client[0],
        }
        access_log.info(
            '%s "%s %s" %d %dB %.3fs %s',
            fields["client"],
            fields["method"],
            fields["path"],
            status,
            sent,
            fields["duration_s"],
            request_id,
            extra={"access": fields},
        )
