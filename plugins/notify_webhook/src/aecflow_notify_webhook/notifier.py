"""The webhook notifier: POST each event, signed as a Standard Webhook, one attempt per call.

Retries, backoff, circuit breaking and dead letters are the core's; this only sends, bounded
per endpoint, and reports honestly per event. ``webhook-id`` is the event id, so it is the
same on every retry and receivers can use it as an idempotency key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aecflow.notify import DeliveryOutcome, DeliveryStatus, Event, Notifier
from aecflow_notify_webhook.config import WebhookConfig
from aecflow_notify_webhook.outcomes import outcome_for
from aecflow_notify_webhook.signing import signature_header

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

#: Enough of a failed answer's body to explain it in the dead-letter list.
SNIPPET_BYTES = 512


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The body: compact, key-sorted, ASCII-only JSON, so what is signed is what is sent."""
    return json.dumps(
        payload, separators=(",", ":"), sort_keys=True, ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("aecflow-notify-webhook")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"aecflow-notify-webhook/{version}"


class WebhookNotifier(Notifier):
    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        self.max_batch = config.max_batch
        self._keys = config.keys()
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._client: httpx.AsyncClient | None = None

    def wants(self, event_type: str) -> bool:
        return self.config.wants(event_type)

    async def start(self) -> None:
        """Open the connection pool; the endpoint is not called (it may be down at start-up)."""
        # httpx (with rich and pygments) is imported here, not when plugins load for a command
        import httpx

        limit = self.config.max_concurrency
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.timeout_s),
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            follow_redirects=False,
            # identity: the error snippet is read raw, and a small body needs no compression
            headers={"user-agent": _user_agent(), "accept-encoding": "identity"},
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver(self, events: Sequence[Event]) -> Mapping[str, DeliveryOutcome]:
        if self._client is None:
            raise RuntimeError("the webhook notifier was not started")
        state = _Round()
        results = await asyncio.gather(*(self._post(self._client, e, state) for e in events))
        return {event.id: outcome for event, outcome in zip(events, results, strict=True)}

    async def _post(
        self, client: httpx.AsyncClient, event: Event, state: _Round
    ) -> DeliveryOutcome:
        async with self._slots:
            if skipped := state.skipped():
                return skipped
            try:
                body = encode_payload(event.payload)
            except (TypeError, ValueError) as exc:
                return DeliveryOutcome(DeliveryStatus.REJECTED, f"payload is not JSON: {exc}")
            outcome, reached = await self._send(client, event, body)
            if not reached and state.unreachable is None:
                state.unreachable = outcome.error
            if outcome.status is DeliveryStatus.DISABLED and state.gone is None:
                state.gone = outcome
                log.error("webhook %s answered 410 Gone: disabled, its events are kept", self.name)
            return outcome

    async def _send(
        self, client: httpx.AsyncClient, event: Event, body: bytes
    ) -> tuple[DeliveryOutcome, bool]:
        """One POST; also says whether the endpoint answered at all."""
        import httpx

        timestamp = int(time.time())  # the attempt's time, new on every retry (replay guard)
        headers = {
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(self._keys, event.id, timestamp, body),
        }
        if traceparent := event.attributes.get("traceparent"):
            headers["traceparent"] = traceparent
        request = client.build_request("POST", self.config.url, content=body, headers=headers)
        timeout = f"no answer within {self.config.timeout_s:g}s"
        try:
            async with asyncio.timeout(self.config.timeout_s):
                response = await client.send(request, stream=True)
                try:
                    snippet = await _read_prefix(response, SNIPPET_BYTES)
                finally:
                    await response.aclose()
        except TimeoutError:
            return DeliveryOutcome(DeliveryStatus.RETRY, timeout), False
        except httpx.TimeoutException as exc:
            return DeliveryOutcome(DeliveryStatus.RETRY, f"{timeout} ({type(exc).__name__})"), False
        except httpx.HTTPError as exc:
            return DeliveryOutcome(DeliveryStatus.RETRY, f"{type(exc).__name__}: {exc}"), False
        outcome = outcome_for(
            response.status_code,
            response.headers,
            snippet,
            max_retry_after=dt.timedelta(seconds=self.config.max_retry_after_s),
        )
        return outcome, True


@dataclass
class _Round:
    """What one delivery round learnt about the endpoint. Once it answered 410 or could not be
    reached, the round's remaining events are not sent: they are reported as such and the core
    retries them, so a hanging endpoint costs one timeout per round, not one per event."""

    gone: DeliveryOutcome | None = None
    unreachable: str | None = None

    def skipped(self) -> DeliveryOutcome | None:
        if self.gone is not None:
            return self.gone
        if self.unreachable is not None:
            return DeliveryOutcome(
                DeliveryStatus.RETRY, f"not sent: {self.unreachable} (earlier in this round)"
            )
        return None


async def _read_prefix(response: httpx.Response, limit: int) -> str:
    """At most ``limit`` bytes of the body: an endpoint's answer must not fill our memory.

    A short body is read to its end, which lets the connection go back to the pool.
    """
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= limit:
            break
    return data[:limit].decode("utf-8", "replace")
