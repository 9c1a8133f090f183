"""Settings of one webhook destination: a `[[notifiers]]` entry with `backend = "webhook"`."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

import pydantic

from aecflow_notify_webhook.signing import MIN_SECRET_BYTES, decode_secret


class WebhookConfig(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    #: The endpoint; deliveries are POSTed here and redirects are never followed.
    url: str
    #: ``whsec_`` secret(s). A list while rotating: every delivery is signed with each.
    secret: list[pydantic.SecretStr]
    #: Event types (or patterns such as ``file.*``) this endpoint receives; empty = all.
    events: list[str] = []
    #: Deadline of one request, connection to last byte read.
    timeout_s: float = pydantic.Field(15.0, gt=0, le=300)
    #: Requests in flight to this endpoint at once.
    max_concurrency: int = pydantic.Field(8, ge=1, le=256)
    #: Events handed over per delivery round (the dispatcher's batch). A round must end within
    #: the outbox lease: keep ceil(max_batch / max_concurrency) * timeout_s under lease_s.
    max_batch: int = pydantic.Field(16, ge=1, le=1000)
    #: Longest ``Retry-After`` honoured; a larger one is cut to this.
    max_retry_after_s: float = pydantic.Field(3600.0, ge=0)

    @pydantic.field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @pydantic.field_validator("secret", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | pydantic.SecretStr) else value

    @pydantic.field_validator("secret")
    @classmethod
    def _valid_keys(cls, value: list[pydantic.SecretStr]) -> list[pydantic.SecretStr]:
        if not value:
            raise ValueError("give at least one secret")
        for index, secret in enumerate(value):
            try:
                decode_secret(secret.get_secret_value(), min_bytes=MIN_SECRET_BYTES)
            except ValueError as exc:  # the message never contains the secret
                raise ValueError(f"secret #{index + 1}: {exc}") from None
        return value

    def keys(self) -> list[bytes]:
        """The HMAC keys, in configured order."""
        return [decode_secret(s.get_secret_value()) for s in self.secret]

    def wants(self, event_type: str) -> bool:
        return not self.events or any(fnmatchcase(event_type, p) for p in self.events)
