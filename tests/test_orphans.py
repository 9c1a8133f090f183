"""The orphan sweep: an object whose ingest died before its row committed is removed.

A host SIGKILLed between the storage put and the row's commit leaves an object nothing else
will ever remove (the chaos run found them); the sweep removes exactly those, and only once
they are older than the grace period, never a file's, a session's or a staged part.
"""

from __future__ import annotations

from pathlib import Path

from aecflow.config import Settings
from aecflow.files.orphans import file_id_of, sweep_orphans
from aecflow.flow import Flow
from aecflow.ids import uuid7
from aecflow.store import uploads as upload_rows
from aecflow.streams import aiter_bytes

from .conftest import make_settings


async def keys(flow: Flow) -> set[str]:
    return {info.key async for info in flow.runtime.storage.list("")}


def test_only_keys_in_the_files_key_space_are_candidates() -> None:
    file_id = uuid7()
    assert file_id_of(f"p1/{file_id}") == file_id
    assert file_id_of(f".uploads/{file_id}/00001.abc") is None
    assert file_id_of(f"p1/{file_id}/artifact.json") is None
    assert file_id_of("p1/not-an-id") is None
    assert file_id_of(file_id) is None


async def test_sweep_removes_objects_without_a_row_and_keeps_the_rest(
    tmp_path: Path, database_url: str
) -> None:
    settings: Settings = make_settings(tmp_path, database_url)
    async with Flow.open(settings) as flow:
        kept = await flow.ingest("p1", "kept.txt", aiter_bytes(b"a file with its row"))
        # What a host killed between put and commit leaves behind: an object, no row.
        orphan = f"p1/{uuid7()}"
        await flow.runtime.storage.put(orphan, aiter_bytes(b"half an ingest"))
        # A session reserves its file id (and key) before any row exists in files.
        session = await flow.uploads.open("p1", "big.bin", 10)
        async with flow.engine.connect() as conn:
            row = await upload_rows.get(conn, session["id"])
        assert row is not None
        session_key = row.storage_key
        assert file_id_of(session_key) == row.file_id
        await flow.runtime.storage.put(session_key, aiter_bytes(b"0123456789"))
        staged = f".uploads/{uuid7()}/00001.x"
        await flow.runtime.storage.put(staged, aiter_bytes(b"a staged part"))

        # Younger than the grace period: an ingest may still be about to commit.
        assert await sweep_orphans(flow.runtime, older_than_s=3600) == 0
        assert orphan in await keys(flow)

        assert await sweep_orphans(flow.runtime, older_than_s=0) == 1
        left = await keys(flow)
        assert orphan not in left
        assert {kept.storage_key, session_key, staged} <= left
        assert (await flow.get(kept.id)).status == "stored"
        assert await sweep_orphans(flow.runtime, older_than_s=0) == 0
