"""Bearer-token authentication for every endpoint but ``/health``.

A request's token becomes the :class:`~aecflow.actor.Actor` the flow authorises and audits
against. Failures answer 401 (audited as ``auth.failed``); a source address that fails too
often within a minute gets 429 until the minute is over for every request whose token does not
authenticate (a valid token is never locked out, so a neighbour behind the same address cannot
lock a real client out). The source address is the peer's, or what ``X-Forwarded-For`` says
only when ``[server] forwarded_allow_ips`` trusts the peer (see :mod:`aecflow.host.server`).
A path or query holding NUL is refused (400) before anything else looks at it.
"""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from aecflow.access import tokens
from aecflow.access.audit import Operation
from aecflow.actor import Actor, acting_as
from aecflow.flow import Flow
from aecflow.host.errors import error_response

Endpoint = Callable[[Request], Awaitable[Response]]
WINDOW_S = 60.0


class FailureLimiter:
    """Counts authentication failures per source address over a sliding minute."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, source: str) -> collections.deque[float]:
        failures = self._failures.setdefault(source, collections.deque())
        cutoff = self.clock() - WINDOW_S
        while failures and failures[0] < cutoff:
            failures.popleft()
        if not failures:
            self._failures.pop(source, None)
        return failures

    def retry_after(self, source: str) -> float | None:
        failures = self._recent(source)
        if len(failures) < self.per_minute:
            return None
        return max(1.0, failures[0] + WINDOW_S - self.clock())

    def record(self, source: str) -> None:
        self._recent(source)
        self._failures.setdefault(source, collections.deque()).append(self.clock())


def request_actor(request: Request, base: Actor) -> Actor:
    """``base`` plus what this request says about where it comes from."""
    client = request.client.host if request.client else None
    return replace(
        base,
        source_ip=client,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
        request_id=getattr(request.state, "request_id", None),
        trace_id=getattr(request.state, "trace_id", None),
    )


def authenticated(endpoint: Endpoint) -> Endpoint:
    """Run ``endpoint`` as the actor the request's bearer token stands for."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        if _has_nul(request):
            return error_response(
                400, "invalid_character", "the path or query contains a NUL character"
            )
        flow = request.app.state.flow
        if flow.settings.auth.mode == "none":
            with acting_as(request_actor(request, Actor(id="anonymous-local"))):
                return await endpoint(request)
        limiter: FailureLimiter = request.app.state.auth_limiter
        source = request.client.host if request.client else "-"
        wait = limiter.retry_after(source)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise tokens.AuthFailure("missing_token", "send Authorization: Bearer <token>")
            async with flow.engine.begin() as conn:
                actor = await tokens.authenticate(conn, token.strip(), flow.runtime.clock())
        except tokens.AuthFailure as failure:
            if wait is not None:  # limited: neither counted nor audited again
                return error_response(
                    429,
                    "too_many_auth_failures",
                    "too many failed authentications from this address",
                    {"Retry-After": str(round(wait))},
                )
            limiter.record(source)
            with acting_as(request_actor(request, Actor(id="anonymous"))):
                await flow.audit.record(_denied_row(flow, failure, request))
            return error_response(
                401, failure.code, failure.message, {"WWW-Authenticate": 'Bearer realm="aecflow"'}
            )
        with acting_as(request_actor(request, actor)):
            return await endpoint(request)

    return wrapper


def _has_nul(request: Request) -> bool:
    """PostgreSQL cannot store or compare text with NUL: refuse it before it reaches a query or
    the audit row (whose insert would fail and be lost)."""
    if "\x00" in request.scope["path"]:  # percent-decoded, as the path parameters are
        return True
    return any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items())


def _denied_row(flow: Flow, failure: tokens.AuthFailure, request: Request) -> dict[str, Any]:
    """The audit row of a refused authentication (no transaction of a caller to join)."""
    op = Operation(flow.audit, "auth.failed", True, details={"path": request.url.path})
    return op.row("denied", failure.code)
