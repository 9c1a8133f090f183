"""Dead letters: events that could not be delivered, read and redelivered by admins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aecflow import actor as actors
from aecflow import schemas
from aecflow.actor import Role
from aecflow.errors import InvalidInput
from aecflow.loading.runtime import Runtime
from aecflow.store import files as catalog
from aecflow.store import outbox as outbox_rows


def dead_letter(row: Mapping[str, Any]) -> dict[str, Any]:
    """The public shape of a dead-lettered event (:class:`aecflow.schemas.DeadLetter`)."""
    fields = {name: row[name] for name in schemas.DeadLetter.model_fields}
    return schemas.DeadLetter.model_validate(fields).model_dump(mode="json")


class DeadLetters:
    """Listing and redelivering dead letters, scoped to the admin's projects."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def page(
        self, *, limit: int = 50, cursor: str | None = None, destination: str | None = None
    ) -> dict[str, Any]:
        """Events that could not be delivered, newest first, with their last error."""
        async with self.runtime.audit.operation("events.dead_letters", read_only=True):
            actors.current().require(Role.ADMIN, "reading dead letters")
            if not 1 <= limit <= catalog.MAX_PAGE:
                raise InvalidInput(
                    f"limit must be between 1 and {catalog.MAX_PAGE}", code="invalid_query"
                )
            before = catalog.decode_cursor(cursor) if cursor else None
            async with self.runtime.engine.connect() as conn:
                rows = await outbox_rows.dead_page(
                    conn,
                    limit=limit + 1,
                    before_id=before,
                    destination=destination,
                    projects=actors.current().scope(),
                )
            items = [dead_letter(row) for row in rows[:limit]]
            more = len(rows) > limit
            return {
                "items": items,
                "next_cursor": catalog.encode_cursor(items[-1]["id"]) if more else None,
            }

    async def of_file(self, file_id: str) -> list[dict[str, Any]]:
        """The file's dead-lettered events, oldest first: settled, but never delivered."""
        async with self.runtime.engine.connect() as conn:
            return [dead_letter(row) for row in await outbox_rows.dead_of_file(conn, file_id)]

    async def redeliver(self, ids: Iterable[str] | None = None) -> int:
        """Put dead letters back in the queue (all when ``ids`` is None); returns how many."""
        async with self.runtime.audit.operation("events.redeliver", read_only=False) as op:
            actors.current().require(Role.ADMIN, "redelivering events")
            async with self.runtime.engine.begin() as conn:
                count = await outbox_rows.redeliver(
                    conn,
                    ids=None if ids is None else list(ids),
                    projects=actors.current().scope(),
                    now=self.runtime.clock(),
                )
                op.note(details={"redelivered": count})
                await op.write(conn)
            self.runtime.wake()
            return count
