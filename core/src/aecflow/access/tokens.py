"""API tokens: created once and shown once, stored only as a SHA-256 hash.

A token is ``aecf_`` + 43 characters of URL-safe base64 (256 random bits). With that much
entropy a single fast hash is as good as a slow one, and lookups stay one indexed query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow import validation
from aecflow.actor import Actor, Role
from aecflow.errors import InvalidInput, NotFound
from aecflow.ids import uuid7
from aecflow.store import tokens as token_rows
from aecflow.store.tokens import TokenInfo

PREFIX = "aecf_"
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12h``, ``30m``, ``2w``."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(
            f"invalid duration {text!r}: use e.g. 90d, 12h, 30m", code="invalid_duration"
        )
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create(
    conn: AsyncConnection,
    *,
    name: str,
    role: Role,
    projects: Iterable[str],
    expires_in: dt.timedelta | None,
    now: dt.datetime,
) -> tuple[TokenInfo, str]:
    """Store a new token; returns its record and the token itself (shown once)."""
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("a token needs a name of 1-128 characters", code="invalid_name")
    scope = sorted(set(projects))
    if not scope:
        raise InvalidInput("give --project P (repeatable) or --all-projects", code="invalid_scope")
    for project in scope:
        if project != "*":
            validation.project_name(project)
    token = PREFIX + secrets.token_urlsafe(32)
    row = {
        "id": uuid7(),
        "name": name,
        "token_hash": digest(token),
        "role": role.name.lower(),
        "projects": scope,
        "created_at": now,
        "expires_at": now + expires_in if expires_in else None,
    }
    return await token_rows.insert(conn, row), token


async def listing(conn: AsyncConnection) -> list[TokenInfo]:
    return await token_rows.listing(conn)


async def revoke(conn: AsyncConnection, token_id: str, now: dt.datetime) -> TokenInfo:
    await token_rows.revoke(conn, token_id, now)
    info = await token_rows.get(conn, token_id)
    if info is None:
        raise NotFound(f"token {token_id!r} does not exist", code="token_not_found")
    return info


async def count(conn: AsyncConnection) -> int:
    return await token_rows.count(conn)


class AuthFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def authenticate(conn: AsyncConnection, token: str, now: dt.datetime) -> Actor:
    """The actor a bearer token stands for, or ``AuthFailure`` saying why not."""
    if not token.startswith(PREFIX):
        raise AuthFailure("invalid_token", "the bearer token is not an aecflow token")
    info = await token_rows.by_hash(conn, digest(token))
    if info is None:
        raise AuthFailure("invalid_token", "the bearer token is not valid")
    if info.revoked_at is not None:
        raise AuthFailure("revoked_token", "the bearer token has been revoked")
    if info.expires_at is not None and info.expires_at <= now:
        raise AuthFailure("expired_token", "the bearer token has expired")
    last = info.last_used_at
    if last is None or now - last > dt.timedelta(minutes=1):  # bounded write amplification
        await token_rows.touch(conn, info.id, now)
    return Actor(
        id=f"token:{info.id}",
        role=Role.parse(info.role),
        projects=frozenset(info.projects),
        extra={"token_name": info.name},
    )
