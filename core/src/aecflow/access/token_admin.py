"""Creating, listing and revoking API tokens: admin operations, each audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncEngine

from aecflow import actor as actors
from aecflow.access import tokens
from aecflow.access.audit import AuditLog
from aecflow.access.tokens import TokenInfo
from aecflow.actor import Role


class TokenAdmin:
    """The token operations of :class:`~aecflow.flow.Flow`, for admins only."""

    def __init__(
        self, engine: AsyncEngine, audit: AuditLog, clock: Callable[[], dt.datetime]
    ) -> None:
        self.engine, self.audit, self.clock = engine, audit, clock

    async def create(
        self,
        *,
        name: str,
        role: Role,
        projects: Iterable[str],
        expires_in: dt.timedelta | None = None,
    ) -> tuple[TokenInfo, str]:
        """A new API token; the token itself is returned once and stored only as a hash."""
        async with self.audit.operation("token.create", read_only=False) as op:
            actors.current().require(Role.ADMIN, "creating tokens")
            async with self.engine.begin() as conn:
                info, token = await tokens.create(
                    conn,
                    name=name,
                    role=role,
                    projects=projects,
                    expires_in=expires_in,
                    now=self.clock(),
                )
                op.note(details={"token_id": info.id, "role": info.role, "projects": info.projects})
                await op.write(conn)
            return info, token

    async def list(self) -> list[TokenInfo]:
        async with self.audit.operation("token.list", read_only=True):
            actors.current().require(Role.ADMIN, "listing tokens")
            async with self.engine.connect() as conn:
                return await tokens.listing(conn)

    async def revoke(self, token_id: str) -> TokenInfo:
        async with self.audit.operation(
            "token.revoke", read_only=False, details={"token_id": token_id}
        ) as op:
            actors.current().require(Role.ADMIN, "revoking tokens")
            async with self.engine.begin() as conn:
                info = await tokens.revoke(conn, token_id, self.clock())
                await op.write(conn)
            return info
