"""How ``aecflow serve`` runs uvicorn: the limits a public host needs that uvicorn lacks.

uvicorn's ``auto`` HTTP implementation is httptools when installed (``aecflow[server]``
installs it). httptools has no limit on the request head, and it grows the URL and each header
value by concatenation, so one 96 MiB header costs seconds of CPU (quadratic); uvicorn starts
no timer before a request's head is complete (a connection that sends nothing, or one byte a
second, stays for ever). :class:`GuardedHttpToolsProtocol` adds both: at most
``[server] max_header_bytes`` of request line and headers (then 431, connection closed) and
``[server] header_timeout_s`` to send them (then 408, or a silent close when nothing was sent).
uvicorn itself cannot answer 431; its ``h11_max_incomplete_event_size`` only bounds the h11
implementation, with a 400, which is what the fallback without httptools gets.

Forwarding headers (``X-Forwarded-For``) are believed only from ``[server]
forwarded_allow_ips``: uvicorn trusts 127.0.0.1 by default, which lets anyone on the host (or
behind a local proxy that does not set the header) pick the address the audit log records and
the failure limiter counts.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import uvicorn

from aecflow.config import Settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is part of aecflow[server]
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def _raw_error(status: bytes, code: str, message: str) -> bytes:
    """An answer written before any route runs; it has an X-Request-ID like every other."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"x-request-id: " + uuid.uuid4().hex.encode() + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """httptools' protocol with a size cap and a deadline on each request's head."""

        max_header_bytes = 64 * 1024
        header_timeout_s = 30.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_bytes = 0
            self._in_head = True
            self._head_timer: asyncio.TimerHandle | None = None
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            # Feed the parser no more head than allowed: what it is never given costs nothing.
            while data and self._in_head and not self.transport.is_closing():
                room = self.max_header_bytes - self._head_bytes
                if room <= 0:
                    self._refuse(
                        b"431 Request Header Fields Too Large",
                        "headers_too_large",
                        f"the request line and headers exceed {self.max_header_bytes} bytes",
                    )
                    return
                piece, data = data[:room], data[room:]
                self._head_bytes += len(piece)
                super().data_received(piece)
            if data and not self.transport.is_closing():
                super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._cancel_head_timer()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes = True, 0

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.cycle.response_complete:
                self._arm_head_timer()  # the next request's head (or the rest of an unread body)

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being answered; its end arms the timer again
            if self._in_head and self._head_bytes:
                self._refuse(
                    b"408 Request Timeout",
                    "header_timeout",
                    f"the request headers did not arrive within {self.header_timeout_s:g} s",
                )
            else:
                self.transport.close()

        def _refuse(self, status: bytes, code: str, message: str) -> None:
            self._cancel_head_timer()
            self.transport.write(_raw_error(status, code, message))
            self.transport.close()


def http_protocol(settings: Settings) -> type[asyncio.Protocol] | str:
    """The HTTP protocol class for ``settings``: the guarded httptools one, or ``"h11"``."""
    if HttpToolsProtocol is None:
        return "h11"
    limits = {
        "max_header_bytes": settings.server.max_header_bytes,
        "header_timeout_s": settings.server.header_timeout_s,
    }
    return type("ConfiguredHttpToolsProtocol", (GuardedHttpToolsProtocol,), limits)


def uvicorn_config(
    app: Any, settings: Settings, *, host: str, port: int, **extra: Any
) -> uvicorn.Config:
    """The ``uvicorn.Config`` that ``aecflow serve`` runs ``app`` with."""
    trusted = settings.server.forwarded_allow_ips
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http_protocol(settings),
        h11_max_incomplete_event_size=settings.server.max_header_bytes,
        timeout_keep_alive=settings.server.keep_alive_timeout_s,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted) if trusted else None,
        **extra,
    )
