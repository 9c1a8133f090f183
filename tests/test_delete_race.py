"""Concurrent deletes (or restores) of one file announce it once.

Found while checking the chaos run's delete announcements: two hosts deleting the same file at
once both read it as not deleted, both set ``deleted_at`` and both queued a ``file.deleted``,
two events with different ids for one change, and the file's ``deleted_at`` moved to the later
delete. The change is now conditional on the row's state, so only the first one counts.
"""

from __future__ import annotations

import asyncio

from aecflow.flow import Flow
from aecflow.streams import aiter_bytes
from aecflow.testing import outbox_rows


async def test_concurrent_deletes_and_restores_are_announced_once(flow: Flow) -> None:
    record = await flow.ingest("p1", "a.txt", aiter_bytes(b"one file"))
    deleted = await asyncio.gather(*(flow.delete(record.id) for _ in range(8)))
    assert len({r.deleted_at for r in deleted}) == 1, "every caller sees the one deletion"
    restored = await asyncio.gather(*(flow.restore(record.id) for _ in range(8)))
    assert all(r.deleted_at is None for r in restored)
    types = [row["event_type"] for row in await outbox_rows(flow)]
    assert types == ["file.stored", "file.deleted", "file.restored"]
