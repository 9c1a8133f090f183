"""Real servers for tests: the aecflow host under uvicorn (``serve_app`` and ``live_host`` come
from :mod:`aecflow.testing`, as does ``TcpProxy`` that cuts a link), and the host under the
uvicorn configuration of ``aecflow serve``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aecflow.config import Settings
from aecflow.host import create_app
from aecflow.host.server import uvicorn_config
from aecflow.testing.live import live_host, serve_app
from aecflow.testing.proxy import TcpProxy

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
