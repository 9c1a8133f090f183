"""The audit log: one row per operation, written with the state change it records.

``Operation`` scopes an operation: the caller writes the row inside its own transaction
(``await op.write(conn)``) so the record commits or rolls back with the change; if the
operation fails, a row with the error is written in a transaction of its own, so failures are
audited too. Reads without a transaction get their row when the scope ends.

With ``[audit] hash_chain = true`` each row carries ``prev_hash`` and ``row_hash`` (SHA-256 of
the previous hash and the row's content), so any edit or deletion breaks the chain that
``aecflow audit verify`` walks. Writers then serialise on an advisory lock (PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aecflow import actor as actors
from aecflow import schemas
from aecflow.clock import utcnow
from aecflow.errors import AecflowError, InvalidInput
from aecflow.ids import uuid7
from aecflow.store import audit as audit_rows

HASHED = (
    "id",
    "at",
    "action",
    "read_only",
    "actor",
    "source_ip",
    "user_agent",
    "request_id",
    "trace_id",
    "project",
    "file_id",
    "storage_key",
    "outcome",
    "error_code",
    "bytes_in",
    "bytes_out",
    "duration_s",
    "details",
)


def row_hash(prev_hash: str | None, row: dict[str, Any]) -> str:
    content = {key: row.get(key) for key in HASHED}
    content["at"] = row["at"].astimezone(dt.UTC).isoformat()
    text = json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash or ''}|{text}".encode()).hexdigest()


class Operation:
    """One audited operation; fill in what becomes known with :meth:`note`."""

    def __init__(self, log: AuditLog, action: str, read_only: bool, **fields: Any) -> None:
        self.log = log
        self.action = action
        self.read_only = read_only
        self.fields: dict[str, Any] = fields
        self.started = time.monotonic()
        self.written = False

    def note(self, **fields: Any) -> None:
        self.fields.update({k: v for k, v in fields.items() if v is not None})

    def row(self, outcome: str, error_code: str | None) -> dict[str, Any]:
        who = actors.current()
        return {
            "id": uuid7(),
            "at": utcnow(),
            "action": self.action,
            "read_only": self.read_only,
            "actor": who.id,
            "source_ip": who.source_ip,
            "user_agent": who.user_agent,
            "request_id": who.request_id,
            "trace_id": who.trace_id,
            "project": self.fields.get("project"),
            "file_id": self.fields.get("file_id"),
            "storage_key": self.fields.get("storage_key") or None,
            "outcome": outcome,
            "error_code": error_code,
            "bytes_in": self.fields.get("bytes_in"),
            "bytes_out": self.fields.get("bytes_out"),
            "duration_s": round(time.monotonic() - self.started, 6),
            "details": self.fields.get("details"),
        }

    async def write(self, conn: AsyncConnection) -> None:
        """Record success inside the caller's transaction."""
        await self.log.insert(conn, self.row("ok", None))
        self.written = True


class AuditLog:
    def __init__(self, engine: AsyncEngine, *, hash_chain: bool) -> None:
        self.engine = engine
        self.hash_chain = hash_chain

    @asynccontextmanager
    async def operation(
        self, action: str, *, read_only: bool, **fields: Any
    ) -> AsyncIterator[Operation]:
        op = Operation(self, action, read_only, **fields)
        try:
            yield op
        except BaseException as exc:
            code = exc.code if isinstance(exc, AecflowError) else type(exc).__name__
            outcome = "denied" if code in ("forbidden", "project_not_found") else "error"
            await self.record(op.row(outcome, code))
            raise
        if not op.written:
            await self.record(op.row("ok", None))

    async def record(self, row: dict[str, Any]) -> None:
        """Write ``row`` in a transaction of its own; never lets auditing break the caller."""
        try:
            async with self.engine.begin() as conn:
                await self.insert(conn, row)
        except Exception:
            import logging

            logging.getLogger(__name__).exception("could not write audit row %s", row["action"])

    async def insert(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        if self.hash_chain:
            prev = await audit_rows.last_hash(conn)
            row = row | {"prev_hash": prev, "row_hash": row_hash(prev, row)}
        await audit_rows.insert(conn, row)

    async def insert_many(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """Several rows in one statement (one by one when chained: each needs the last hash)."""
        if not rows:
            return
        if self.hash_chain:
            for row in rows:
                await self.insert(conn, row)
        else:
            await audit_rows.insert_many(conn, rows)

    async def search(
        self, *, limit: int = 50, cursor: str | None = None, **filters: Any
    ) -> dict[str, Any]:
        from aecflow.store.files import MAX_PAGE, decode_cursor, encode_cursor

        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="invalid_query")
        before_id = decode_cursor(cursor) if cursor else None
        async with self.engine.connect() as conn:
            rows = await audit_rows.page(
                conn,
                limit=limit + 1,
                before_id=before_id,
                projects=actors.current().scope(),
                matches=filters,
                since=filters.get("since"),
                until=filters.get("until"),
            )
        items = [public(row) for row in rows[:limit]]
        more = len(rows) > limit
        return {"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if more else None}

    async def verify(self) -> dict[str, Any]:
        """Walk the chain oldest first; report the first row whose hash does not follow."""
        checked, prev = 0, None
        async with self.engine.connect() as conn, aclosing(audit_rows.oldest_first(conn)) as rows:
            async for row in rows:
                if row["row_hash"] is None:
                    prev = None  # written before the chain was switched on
                    continue
                if row["prev_hash"] != prev or row["row_hash"] != row_hash(prev, dict(row)):
                    return {"ok": False, "checked": checked, "broken_at": row["id"]}
                prev, checked = row["row_hash"], checked + 1
        return {"ok": True, "checked": checked, "broken_at": None}


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The public shape of a row (:class:`aecflow.schemas.AuditRow`)."""
    return schemas.AuditRow.model_validate(row).model_dump(mode="json")
