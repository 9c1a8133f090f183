"""Real servers for tests: the aecflow host under uvicorn (``serve_app`` and ``live_host`` come
from :mod:`aecflow.testing`), and a TCP proxy to cut a link."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aecflow.config import Settings
from aecflow.host import create_app
from aecflow.host.server import uvicorn_config
from aecflow.testing.live import live_host, serve_app

__all__ = ["TcpProxy", "live_host", "live_served", "serve_app"]


@contextlib.asynccontextmanager
async def live_served(
    settings: Settings, *, plugins=None, worker: bool | None = None
) -> AsyncIterator[tuple[str, object]]:
    """Like :func:`live_host`, but under the uvicorn configuration ``aecflow serve`` uses
    (header limits, timeouts, forwarding trust)."""
    app = create_app(settings, plugins=plugins, worker=worker)
    config = uvicorn_config(
        app, settings, host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    async with serve_app(app, config=config) as url:
        yield url, app


class TcpProxy:
    """Forwards a loopback port to ``target``; ``stop()`` cuts every connection like an outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._links |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self._links.discard(writer)
            writer.close()
