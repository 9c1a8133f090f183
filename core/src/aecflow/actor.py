"""Who is acting: the context every operation is authorised and audited against.

The HTTP host sets it per request from the bearer token; the CLI sets ``cli``; workers and
the dispatcher act as ``system``. Embedding applications that set nothing act as ``system``
with no restrictions, as befits code running inside the trust boundary.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

from aecflow.errors import AecflowError, NotFound


class Role(IntEnum):
    """Each role includes the ones below it."""

    READER = 1  # list, get, download
    WRITER = 2  # + upload, delete, restore, reprocess
    ADMIN = 3  # + purge, dead letters, audit, plugins

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"unknown role {value!r}; use reader, writer or admin") from None


class Forbidden(AecflowError):
    code = "forbidden"
    http_status = 403
    exit_code = 77  # EX_NOPERM


@dataclass(frozen=True, slots=True)
class Actor:
    id: str = "system"
    #: ``None``: unrestricted (system, CLI, embedding code).
    role: Role | None = None
    #: Projects this actor may reach; ``None`` or containing ``"*"``: every project.
    projects: frozenset[str] | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def sees(self, project: str) -> bool:
        return self.projects is None or "*" in self.projects or project in self.projects

    def scope(self) -> frozenset[str] | None:
        """The projects this actor is confined to, or ``None`` when it sees every project."""
        return None if self.projects is None or "*" in self.projects else self.projects

    def require_project(self, project: str) -> None:
        """Projects an actor may not see do not exist for it: 404, never 403."""
        if not self.sees(project):
            raise NotFound(f"project {project!r} does not exist", code="project_not_found")

    def require(self, role: Role, action: str) -> None:
        if self.role is not None and self.role < role:
            raise Forbidden(
                f"{action} needs the {role.name.lower()} role; this token is "
                f"{self.role.name.lower()}"
            )


SYSTEM = Actor()
_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("aecflow_actor", default=SYSTEM)


def current() -> Actor:
    return _current.get()


@contextmanager
def acting_as(actor: Actor, **changes: Any) -> Iterator[Actor]:
    """Run a block as ``actor`` (tasks started inside inherit it)."""
    actor = replace(actor, **changes) if changes else actor
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)
