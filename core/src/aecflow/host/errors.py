"""Every error as JSON, ``{"error": {"code": ..., "message": ...}}``, with the right status.

Known errors carry their own code and status (:mod:`aecflow.errors`); a database that cannot
be reached is 503 with ``Retry-After``; anything else is a 500 whose details stay in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from aecflow import schemas
from aecflow.breaker import CircuitOpen
from aecflow.errors import AecflowError
from aecflow.retries import is_transient as is_transient_db_error

log = logging.getLogger("aecflow.host")


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(schemas.Error.of(code, message), status, headers=headers)


async def aecflow_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AecflowError)
    headers = None
    if isinstance(exc, CircuitOpen):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    elif exc.http_status == 503:
        headers = {"Retry-After": "5"}
    if exc.http_status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc.message)
    return error_response(exc.http_status, exc.code, exc.message, headers)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    if is_transient_db_error(exc):
        log.warning(
            "database unavailable during %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return error_response(
            503,
            "database_unavailable",
            "the database cannot be reached; try again shortly",
            {"Retry-After": "5"},
        )
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")


HANDLERS = {AecflowError: aecflow_error, HTTPException: http_error, Exception: unexpected_error}
