"""Operations and administration: errors, dead letters, audit rows, plugins, readiness."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aecflow.schemas.common import DateTime, Shape
from aecflow.schemas.files import Page


class ErrorBody(Shape):
    code: str = Field(json_schema_extra={"pattern": "^[a-z][a-z0-9_]*$"})
    message: str


class Error(Shape):
    """Every error the API answers."""

    error: ErrorBody

    @classmethod
    def of(cls, code: str, message: str) -> dict[str, Any]:
        """The JSON of one error (not validated: an error answer must never fail itself)."""
        return {"error": {"code": code, "message": message}}


class DeadLetter(Shape):
    """An event that could not be delivered after `[outbox] max_attempts`."""

    id: str = Field(description="Give it to `.../redeliver`.")
    event_id: str
    destination: str
    event_type: str
    project: str
    file_id: str | None
    attempts: int = Field(ge=0)
    last_error: str | None
    created_at: DateTime
    payload: dict[str, Any] = Field(description="The event as it would be delivered.")


class DeadLetterPage(Page[DeadLetter]):
    """One page of dead letters."""


class Redelivered(Shape):
    redelivered: int = Field(ge=1)


class AuditRow(Shape):
    """One operation, written with the change it records (also on failure)."""

    id: str
    at: DateTime
    action: str = Field(examples=["file.upload", "auth.failed"])
    read_only: bool
    actor: str = Field(description="`token:<id>`, `system`, `cli`, ...")
    source_ip: str | None
    user_agent: str | None
    request_id: str | None
    trace_id: str | None
    project: str | None
    file_id: str | None = Field(description="As the caller gave it.")
    storage_key: str | None
    outcome: Literal["ok", "error", "denied"]
    error_code: str | None
    bytes_in: int | None
    bytes_out: int | None
    duration_s: float | None
    details: Any = Field(description="Operation-specific JSON, or `null`.")
    prev_hash: str | None = Field(description="With `hash_chain`.")
    row_hash: str | None = Field(description="With `hash_chain`.")


class AuditPage(Page[AuditRow]):
    """One page of audit rows."""


class Plugin(Shape):
    """A plugin found at start (``aecflow plugins``); never configuration values."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    status: Literal["loaded", "error", "disabled"]
    error: str | None


class PluginPage(Page[Plugin]):
    """Every plugin (one page)."""


class Check(Shape):
    status: Literal["ok", "error"]
    error: str = Field(default=None, description="Only when the check failed.")  # type: ignore[assignment]


class Breaker(Shape):
    name: str = Field(examples=["storage", "notifier:log"])
    state: Literal["closed", "open", "half_open"]
    consecutive_failures: int = Field(ge=0)
    failure_threshold: int = Field(ge=1)
    retry_after_s: float | None
    opened_count: int = Field(ge=0)


class Checks(Shape):
    database: Check
    storage: Check


class Ready(Shape):
    status: Literal["ready", "not_ready"]
    checks: Checks
    breakers: list[Breaker]


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ok"]


class TokenInfo(Shape):
    """An API token as ``aecflow tokens`` shows it: never the token or its hash."""

    id: str
    name: str
    role: str
    projects: list[str]
    created_at: DateTime
    expires_at: DateTime | None
    revoked_at: DateTime | None
    last_used_at: DateTime | None


class Me(Shape):
    """Who the request's token is: what the web page shows and decides its menus by."""

    actor: str = Field(
        description="`token:<id>`, or `anonymous-local` when `[auth] mode` is `none`.",
        examples=["token:01J..."],
    )
    token_name: str | None = Field(description="The token's name; `null` without a token.")
    role: Literal["reader", "writer", "admin"] = Field(
        description="What the token may do (no token, `[auth] mode = none`: `admin`)."
    )
    projects: list[str] = Field(
        description='The projects it reaches; `["*"]` is every project.', examples=[["demo"]]
    )
    auth_mode: Literal["token", "none"]
