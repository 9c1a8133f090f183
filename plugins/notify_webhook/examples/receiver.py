"""A minimal receiver for aecflow webhooks: verify, skip duplicates, answer quickly.

    AECFLOW_WEBHOOK_SECRET=whsec_... uvicorn --factory receiver:create_app --port 9000

Give several secrets, space separated, while a secret is being rotated. Answer 2xx only once
the event is safely handled: anything else is retried (410 stops deliveries altogether).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aecflow_notify_webhook import WebhookVerificationError, verify

log = logging.getLogger("receiver")


def log_event(event: dict[str, Any]) -> None:
    log.info("%s %s %s", event["type"], event["project"], event["file"]["id"])


def create_app(
    secrets: Sequence[str] | None = None,
    handle: Callable[[dict[str, Any]], None] = log_event,
) -> Starlette:
    keys = list(secrets or os.environ["AECFLOW_WEBHOOK_SECRET"].split())
    # Deliveries are at least once: remember webhook-ids (in production, a shared store with
    # an expiry of a few days, e.g. Redis SET NX EX) and acknowledge repeats without redoing.
    seen: set[str] = set()

    async def hook(request: Request) -> Response:
        body = await request.body()  # the raw bytes: never verify re-serialised JSON
        try:
            event = verify(body, request.headers, keys)
        except WebhookVerificationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        webhook_id = request.headers["webhook-id"]
        if webhook_id not in seen:
            handle(event)  # raising here answers 500: the sender retries later
            seen.add(webhook_id)
        return Response(status_code=204)

    return Starlette(routes=[Route("/hooks/aecflow", hook, methods=["POST"])])
