"""A deadline on each read of a request body, as plain ASGI middleware.

Without it a client that sends a few bytes and then nothing holds its upload slot (and the
storage write behind it) for as long as it likes. Only the wait for the *next* chunk is timed,
so a large body that keeps moving is never cut; once the body is complete, ``receive`` is
passed through untouched (it then only reports the disconnect).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aecflow.errors import AecflowError


class BodyTimeout(AecflowError):
    """The request body stalled for longer than ``[uploads] body_idle_timeout_s``."""

    code = "body_timeout"
    http_status = 408


class BodyIdleTimeout:
    """Raise :class:`BodyTimeout` from ``receive`` when no body bytes arrive for
    ``timeout_s``; the answer (408) closes the connection, whose body is unfinished."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        timed_out = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise BodyTimeout(
                    f"no request body bytes arrived for {self.timeout_s:g} s"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def closing_send(message: Message) -> None:
            if timed_out and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, timed_receive, closing_send)
