"""Test helpers: a real Standard Webhooks receiver and a driver for the core's dispatcher.

The receiver checks every delivery with the plugin's own ``verify`` and answers from a
script, so tests can make an endpoint fail, hang, redirect or vanish, then recover.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aecflow.config import Settings
from aecflow.notify import Event
from aecflow.testing import (  # noqa: F401 - re-exported for the tests
    all_delivered,
    deliver_until,
    flow_settings,
    open_flow,
    outbox_rows,
    serve_app,
)
from aecflow_notify_webhook import WebhookVerificationError, verify

#: What the receiver answers: a status, a status with headers, or HANG (never answer).
HANG = "hang"
Answer = int | tuple[int, dict[str, str]] | str


@dataclass
class Attempt:
    webhook_id: str
    timestamp: int
    signatures: list[str]
    answer: Answer
    headers: dict[str, str]


@dataclass
class Receiver:
    """Verifies every request; answers ``plan`` in order, then ``default``."""

    secrets: list[str]
    url: str = ""
    plan: list[Answer] = field(default_factory=list)
    default: Answer = 200
    attempts: list[Attempt] = field(default_factory=list)
    #: webhook-id -> verified payload, for every delivery answered 2xx (repeats included).
    delivered: list[tuple[str, Any]] = field(default_factory=list)
    forged: list[str] = field(default_factory=list)
    redirect_target_hits: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    inflight: int = 0
    max_inflight: int = 0
    #: When set, requests wait until this many are in flight at once (then all go on).
    hold_until: int = 0
    _crowd: asyncio.Event = field(default_factory=asyncio.Event)

    def delivered_ids(self) -> list[str]:
        return [webhook_id for webhook_id, _ in self.delivered]

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            payload = verify(body, request.headers, self.secrets)
        except WebhookVerificationError as exc:
            self.forged.append(str(exc))
            return Response(str(exc), status_code=400)
        answer = self.plan.pop(0) if self.plan else self.default
        self.attempts.append(
            Attempt(
                request.headers["webhook-id"],
                int(request.headers["webhook-timestamp"]),
                request.headers["webhook-signature"].split(),
                answer,
                dict(request.headers),
            )
        )
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.hold_until:
                if self.inflight >= self.hold_until:
                    self._crowd.set()
                await self._crowd.wait()
            if answer == HANG:
                await self.release.wait()
                return Response("too late", status_code=200)
            status, headers = answer if isinstance(answer, tuple) else (answer, {})
            assert isinstance(status, int)
            if 200 <= status < 300:
                self.delivered.append((request.headers["webhook-id"], payload))
            return Response(f"answer {status}", status_code=status, headers=headers)
        finally:
            self.inflight -= 1

    async def elsewhere(self, request: Request) -> Response:
        self.redirect_target_hits += 1
        return Response(status_code=200)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/hook", self.hook, methods=["POST"]),
                Route("/elsewhere", self.elsewhere, methods=["POST", "GET"]),
            ]
        )


serve = serve_app  # a receiver app on a free loopback port


def hook_settings(
    tmp_path: Path, database_url: str, *notifiers: dict[str, Any], **overrides: Any
) -> Settings:
    """Quick retries and a quick breaker, so tests wait on conditions, never on the clock.
    Objects go to the kit's ``memory`` storage: open the flow with ``open_flow``."""
    raw: dict[str, Any] = {
        "database": {"url": database_url},
        "notifiers": list(notifiers),
        "outbox": {"max_attempts": 6, "backoff_base_s": 0.01, "backoff_max_s": 0.05},
        "breakers": {"failure_threshold": 50, "reset_timeout_s": 0.2},
    }
    raw.update(overrides)
    return flow_settings(tmp_path, **raw)


def webhook(receiver: Receiver, **options: Any) -> dict[str, Any]:
    return {"backend": "webhook", "url": receiver.url, "secret": receiver.secrets[0]} | options


def sample_event(event_id: str, **attributes: str) -> Event:
    now = dt.datetime.now(dt.UTC)
    payload = {
        "id": event_id,
        "type": "file.stored",
        "version": 1,
        "project": "p1",
        "occurred_at": now.isoformat(),
        "file": {"id": "f1", "filename": "a.ifc"},
    }
    return Event(event_id, "file.stored", now, "p1", "f1", payload, attributes)
