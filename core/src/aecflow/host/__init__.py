"""The HTTP host: a small Starlette app over a :class:`~aecflow.flow.Flow`.

``create_app(settings)`` opens the flow in the app's lifespan (with the embedded worker unless
``worker=False``), so other ASGI applications can mount it; ``aecflow serve`` runs it under
uvicorn.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aecflow.config import Settings
from aecflow.flow import Flow
from aecflow.host import cors, files, openapi, ops, sessions, tus, uppy, webpage
from aecflow.host.auth import Endpoint, FailureLimiter, authenticated
from aecflow.host.errors import HANDLERS
from aecflow.host.limits import BodyIdleTimeout
from aecflow.host.middleware import RequestContext
from aecflow.host.uploads import UploadSlots, upload


def by_method(**endpoints: Endpoint) -> Endpoint:
    """One route per path, so that a 405's ``Allow`` names every method the path has."""

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return dispatch


ROUTES = [
    Route("/", webpage.index),
    Route("/web/{name}", webpage.web_asset),
    Route("/health", ops.health),
    Route("/v1/me", authenticated(webpage.me)),
    Route("/ready", authenticated(ops.ready)),
    Route("/v1/plugins", authenticated(ops.plugins)),
    Route("/v1/audit", authenticated(ops.audit)),
    Route("/v1/events/dead", authenticated(ops.dead_letters)),
    Route("/v1/events/dead/{dead_id}/redeliver", authenticated(ops.redeliver), methods=["POST"]),
    Route(
        "/v1/projects/{project}/files",
        authenticated(by_method(GET=files.list_files, POST=upload)),
        methods=["GET", "POST"],
    ),
    Route(
        "/v1/files/{file_id}",
        authenticated(by_method(GET=files.get_file, DELETE=files.delete_file)),
        methods=["GET", "DELETE"],
    ),
    Route("/v1/files/{file_id}/download", authenticated(files.download)),
    Route("/v1/files/{file_id}/content", authenticated(files.content)),
    Route("/v1/files/{file_id}/restore", authenticated(files.restore_file), methods=["POST"]),
    Route("/v1/files/{file_id}/reprocess", authenticated(files.reprocess_file), methods=["POST"]),
    Route("/v1/files/{file_id}/artifacts", authenticated(files.list_artifacts)),
    Route("/v1/files/{file_id}/artifacts/{name}/content", authenticated(files.artifact_content)),
    Route("/v1/files/{file_id}/artifacts/{name}/download", authenticated(files.artifact_download)),
    Route(
        "/v1/projects/{project}/pipeline",
        authenticated(files.pipeline_endpoint),
        methods=["GET", "PUT", "DELETE"],
    ),
    Route(
        "/v1/projects/{project}/uploads",
        authenticated(by_method(GET=sessions.list_sessions, POST=sessions.open_session)),
        methods=["GET", "POST"],
    ),
    Route(
        "/v1/uploads/{upload_id}",
        authenticated(by_method(GET=sessions.get_session, DELETE=sessions.abort_session)),
        methods=["GET", "DELETE"],
    ),
    Route(
        "/v1/uploads/{upload_id}/parts/{number}",
        authenticated(sessions.put_part),
        methods=["PUT"],
    ),
    Route(
        "/v1/uploads/{upload_id}/complete",
        authenticated(sessions.complete_session),
        methods=["POST"],
    ),
    *(Route(path, endpoint, methods=methods) for path, endpoint, methods in tus.ROUTES),
    *(Route(path, endpoint, methods=methods) for path, endpoint, methods in uppy.ROUTES),
    Route("/openapi.json", authenticated(openapi.openapi_json)),
    Route("/docs", authenticated(openapi.docs)),
]


def create_app(
    settings: Settings | None = None,
    *,
    worker: bool | None = None,
    plugins: list[tuple[str, object]] | None = None,
) -> Starlette:
    """The aecflow ASGI app; ``worker`` overrides ``[worker] embedded``."""
    settings = settings or Settings()
    if worker is not None:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update={"embedded": worker})}
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with Flow.open(settings, plugins=plugins or ()) as flow:
            app.state.flow = flow
            app.state.upload_slots = UploadSlots(
                settings.uploads.max_concurrent, settings.uploads.max_concurrent_per_token
            )
            app.state.auth_limiter = FailureLimiter(settings.auth.failures_per_minute)
            extra: list = []
            await flow.plugins.broadcast("register_routes", routes=extra, flow=flow)
            app.router.routes.extend(extra)
            # Everything allocated so far lives as long as the app: keep the collector from
            # walking it again and again (gen-2 pauses of 100+ ms were seen under load).
            gc.freeze()
            yield

    routes = list(ROUTES)
    if settings.telemetry.prometheus:
        routes.append(Route("/metrics", authenticated(ops.prometheus_metrics)))
    return Starlette(
        routes=routes,
        middleware=[
            *cors.middleware(settings.server),
            Middleware(RequestContext),
            Middleware(BodyIdleTimeout, timeout_s=settings.uploads.body_idle_timeout_s),
        ],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
