"""API tokens: created once and shown once, stored only as a SHA-256 hash.

A token is ``aecf_`` + 43 characters of URL-safe base64 (256 random bits). With that much
entropy a single fast hash is as good as a slow one, and lookups stay one indexed query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow import schemas, validation
from aecflow.actor import Actor, Role
from aecflow.errors import InvalidInput, NotFound
from aecflow.ids import uuid7
from aecflow.store.schema import api_tokens

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


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    role: str
    projects: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> TokenInfo:  # a RowMapping or a dict
        return cls(
            row["id"],
            row["name"],
            row["role"],
            list(row["projects"]),
            row["created_at"],
            row["expires_at"],
            row["revoked_at"],
            row["last_used_at"],
        )

    def as_dict(self) -> dict[str, Any]:
        """Never the token or its hash (:class:`aecflow.schemas.TokenInfo`)."""
        info = schemas.TokenInfo.model_validate(self, from_attributes=True)
        return info.model_dump(mode="json")


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
    await conn.execute(sa.insert(api_tokens).values(**row))
    return TokenInfo.from_row(row | {"revoked_at": None, "last_used_at": None}), token


async def listing(conn: AsyncConnection) -> list[TokenInfo]:
    rows = (await conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id))).mappings()
    return [TokenInfo.from_row(row) for row in rows]


async def revoke(conn: AsyncConnection, token_id: str, now: dt.datetime) -> TokenInfo:
    await conn.execute(
        sa.update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    row = (
        (await conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"token {token_id!r} does not exist", code="token_not_found")
    return TokenInfo.from_row(row)


async def count(conn: AsyncConnection) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).select_from(api_tokens)) or 0)


class AuthFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def authenticate(conn: AsyncConnection, token: str, now: dt.datetime) -> Actor:
    """The actor a bearer token stands for, or ``AuthFailure`` saying why not."""
    if not token.startswith(PREFIX):
        raise AuthFailure("invalid_token", "the bearer token is not an aecflow token")
    row = (
        (await conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == digest(token))))
        .mappings()
        .first()
    )
    if row is None:
        raise AuthFailure("invalid_token", "the bearer token is not valid")
    if row["revoked_at"] is not None:
        raise AuthFailure("revoked_token", "the bearer token has been revoked")
    if row["expires_at"] is not None and row["expires_at"] <= now:
        raise AuthFailure("expired_token", "the bearer token has expired")
    last = row["last_used_at"]
    if last is None or now - last > dt.timedelta(minutes=1):  # bounded write amplification
        await conn.execute(
            sa.update(api_tokens).where(api_tokens.c.id == row["id"]).values(last_used_at=now)
        )
    return Actor(
        id=f"token:{row['id']}", role=Role.parse(row["role"]), projects=frozenset(row["projects"])
    )
