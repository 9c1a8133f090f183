"""The aecflow host under uvicorn on a free loopback port, for tests that speak real HTTP.

Needs the ``server`` extra (uvicorn, Starlette); imported lazily so that the rest of
:mod:`aecflow.testing` works without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aecflow.config import Settings

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

    from aecflow.flow import Flow


@dataclass(frozen=True, slots=True)
class LiveHost:
    """A running host: its base URL and the Starlette app (``flow`` once the lifespan ran)."""

    url: str
    app: Starlette

    @property
    def flow(self) -> Flow:
        flow: Flow = self.app.state.flow
        return flow

    # ``url, app = host`` keeps working for callers of the older tuple form.
    def __iter__(self) -> Any:
        return iter((self.url, self.app))


@contextlib.asynccontextmanager
async def serve_app(
    app: object, *, lifespan: str = "off", config: uvicorn.Config | None = None
) -> AsyncIterator[str]:
    """Run any ASGI ``app`` under uvicorn on a free loopback port; yields its base URL."""
    import uvicorn

    if config is None:
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]  # any ASGI callable
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan=lifespan,  # type: ignore[arg-type]
        )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def live_host(
    settings: Settings,
    *,
    plugins: Iterable[tuple[str, object]] | None = None,
    worker: bool | None = None,
) -> AsyncIterator[LiveHost]:
    """Serve the aecflow host for ``settings`` on a free loopback port (lifespan on, so the
    flow is open while the block runs)."""
    from aecflow.host import create_app

    app = create_app(settings, plugins=list(plugins or ()), worker=worker)
    async with serve_app(app, lifespan="on") as url:
        yield LiveHost(url, app)
