"""The ``api_tokens`` table: token rows, found by id or by the hash of the token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow import schemas
from aecflow.store.schema import api_tokens


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


async def insert(conn: AsyncConnection, row: Mapping[str, Any]) -> TokenInfo:
    """Store a new token row (its hash, never the token); returns its record."""
    await conn.execute(sa.insert(api_tokens).values(**row))
    return TokenInfo.from_row({"revoked_at": None, "last_used_at": None} | dict(row))


async def listing(conn: AsyncConnection) -> list[TokenInfo]:
    """Every token, oldest first."""
    rows = (await conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id))).mappings()
    return [TokenInfo.from_row(row) for row in rows]


async def get(conn: AsyncConnection, token_id: str) -> TokenInfo | None:
    row = (
        (await conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)))
        .mappings()
        .first()
    )
    return TokenInfo.from_row(row) if row else None


async def by_hash(conn: AsyncConnection, token_hash: str) -> TokenInfo | None:
    """The token whose SHA-256 is ``token_hash`` (one indexed lookup)."""
    row = (
        (await conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == token_hash)))
        .mappings()
        .first()
    )
    return TokenInfo.from_row(row) if row else None


async def revoke(conn: AsyncConnection, token_id: str, now: dt.datetime) -> None:
    """Revoke a token unless it already was (the first revocation time stays)."""
    await conn.execute(
        sa.update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def touch(conn: AsyncConnection, token_id: str, now: dt.datetime) -> None:
    """Note that the token was just used."""
    await conn.execute(
        sa.update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now)
    )


async def count(conn: AsyncConnection) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).select_from(api_tokens)) or 0)
