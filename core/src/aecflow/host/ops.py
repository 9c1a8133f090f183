"""Operations: liveness, readiness, plugins and dead letters."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aecflow import actor as actors
from aecflow import schemas
from aecflow.actor import Role
from aecflow.breaker import admitted
from aecflow.errors import InvalidInput
from aecflow.flow import Flow

CHECK_TIMEOUT_S = 5.0


async def health(request: Request) -> Response:
    """The process is alive and its event loop answers; nothing else is checked."""
    return JSONResponse(schemas.Health(status="ok").model_dump())


async def ready(request: Request) -> Response:
    """Database and storage reachable, every circuit's state; 503 when not ready."""
    flow: Flow = request.app.state.flow
    checks: dict[str, dict[str, str]] = {}
    for name, check in (("database", flow.check_database), ("storage", _storage_check(flow))):
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            checks[name] = {"status": "ok"}
        except Exception as exc:
            checks[name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    breakers = [breaker.snapshot() for breaker in flow.breakers.values()]
    storage_open = flow.breakers["storage"].state.value == "open"
    is_ready = all(c["status"] == "ok" for c in checks.values()) and not storage_open
    body = schemas.Ready.model_validate(
        {"status": "ready" if is_ready else "not_ready", "checks": checks, "breakers": breakers}
    ).model_dump(mode="json", exclude_unset=True)
    return JSONResponse(
        body, 200 if is_ready else 503, headers=None if is_ready else {"Retry-After": "5"}
    )


def _storage_check(flow: Flow) -> Callable[[], Awaitable[None]]:
    """Storage's readiness check, run through its breaker when the breaker admits a call: a
    load balancer that drains instances answering 503 sends no other traffic, so /ready
    itself must be the probe that closes an open circuit."""
    breaker = flow.breakers["storage"]

    async def check() -> None:
        if breaker.allow():
            with admitted(breaker):
                await flow.storage.check()
        else:
            await flow.storage.check()

    return check


async def plugins(request: Request) -> Response:
    flow: Flow = request.app.state.flow
    async with flow.audit.operation("plugins.list", read_only=True):
        actors.current().require(Role.ADMIN, "listing plugins")
    page = schemas.PluginPage(
        items=[
            schemas.Plugin.model_validate(info, from_attributes=True)
            for info in flow.plugins.plugins
        ],
        next_cursor=None,
    )
    return JSONResponse(page.model_dump(mode="json"))


async def audit(request: Request) -> Response:
    """The audit log, newest first (admin): filters action, actor, project, file_id, outcome,
    request_id, since, until; cursor pagination."""
    flow: Flow = request.app.state.flow
    params = request.query_params
    actors.current().require(Role.ADMIN, "reading the audit log")
    filters: dict[str, Any] = {
        key: params.get(key)
        for key in ("action", "actor", "project", "file_id", "outcome", "request_id")
    }
    for key in ("since", "until"):
        if params.get(key):
            filters[key] = parse_time(params[key], key)
    page = await flow.audit.search(limit=_limit(request), cursor=params.get("cursor"), **filters)
    return JSONResponse(page)


def parse_time(value: str, name: str) -> dt.datetime:
    """An ISO 8601 time in UTC (naive means UTC); 400 also when UTC cannot represent it."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted past the range
        raise InvalidInput(f"{name} must be an ISO 8601 time", code="invalid_query") from None


def _limit(request: Request) -> int:
    """``limit``, or 0 when it is no whole number (refused after the flow's role check)."""
    value = request.query_params.get("limit", "50")
    try:
        return int(value) if value.isascii() and value.isdigit() else 0
    except ValueError:  # more digits than int() converts
        return 0


async def dead_letters(request: Request) -> Response:
    flow: Flow = request.app.state.flow
    params = request.query_params
    page = await flow.dead_letters(
        limit=_limit(request),
        cursor=params.get("cursor"),
        destination=params.get("destination"),
    )
    return JSONResponse(page)


async def redeliver(request: Request) -> Response:
    flow: Flow = request.app.state.flow
    count = await flow.redeliver([request.path_params["dead_id"]])
    if not count:
        from aecflow.errors import NotFound

        raise NotFound("no such dead letter", code="dead_letter_not_found")
    return JSONResponse(schemas.Redelivered(redelivered=count).model_dump(), 202)


async def prometheus_metrics(request: Request) -> Response:
    """Metrics in the Prometheus text format (``[telemetry] prometheus = true``)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
