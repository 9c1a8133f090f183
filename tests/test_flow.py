"""The flow from Python: ingest, read, search, delete, restore and purge on both databases."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import os
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from aecflow.errors import Conflict, InvalidInput, NotFound, TooLarge
from aecflow.flow import Flow
from aecflow.store.files import FileQuery
from aecflow.store.schema import files, jobs, outbox
from aecflow.streams import aiter_bytes

from .conftest import inserts_refused, make_settings


def objects_on_disk(tmp_path: Path) -> list[Path]:
    root = tmp_path / "objects"
    return [p for p in root.rglob("*") if p.is_file() and p.name != ".signing-key"]


async def count(flow: Flow, table: sa.Table) -> int:
    async with flow.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


async def test_ingest_get_search_delete_restore_purge(flow: Flow, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    record = await flow.ingest(
        "tower-a",
        "model.bin",
        aiter_bytes(data),
        metadata={"phase": "design"},
        content_type="application/x-test",
    )
    assert record.size == len(data)
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert record.status == "stored"
    assert record.processing["outcome"] == "skipped"  # no processor takes .bin files
    stored = tmp_path / "objects" / "objects" / record.storage_key
    assert stored.read_bytes() == data

    fetched = await flow.get(record.id)
    assert fetched.as_dict() == record.as_dict()
    page = await flow.list(FileQuery(project="tower-a", metadata={"phase": "design"}))
    assert [item.id for item in page.items] == [record.id]
    assert (await flow.list(FileQuery(project="tower-b"))).items == []

    deleted = await flow.delete(record.id)
    assert deleted.deleted_at is not None
    assert (await flow.list(FileQuery(project="tower-a"))).items == []
    only_deleted = await flow.list(FileQuery(project="tower-a", deleted="only"))
    assert [item.id for item in only_deleted.items] == [record.id]
    with pytest.raises(NotFound):
        await flow.download_url(record.id)
    assert stored.exists(), "soft delete keeps the bytes"

    restored = await flow.restore(record.id)
    assert restored.deleted_at is None
    assert [i.id for i in (await flow.list(FileQuery(project="tower-a"))).items] == [record.id]

    purged = await flow.purge(record.id)
    assert purged.purged_at is not None
    assert not stored.exists()
    assert objects_on_disk(tmp_path) == []
    assert purged.filename == "" and dict(purged.metadata) == {} and purged.sha256 == ""
    assert (await flow.list(FileQuery(project="tower-a", deleted="include"))).items == []
    with pytest.raises(Conflict):
        await flow.restore(record.id)

    async with flow.engine.connect() as conn:
        types = (
            (await conn.execute(sa.select(outbox.c.event_type).order_by(outbox.c.id)))
            .scalars()
            .all()
        )
    assert types == ["file.stored", "file.deleted", "file.restored", "file.purged"]


async def test_processable_file_queues_a_job_in_the_same_transaction(flow: Flow) -> None:
    record = await flow.ingest("p1", "notes.txt", aiter_bytes(b"hello world\nsecond line\n"))
    assert record.processing["processor"] == "textstats"
    assert record.processing["outcome"] is None
    async with flow.engine.connect() as conn:
        job = (await conn.execute(sa.select(jobs))).mappings().one()
        event = (await conn.execute(sa.select(outbox))).mappings().one()
    assert job["file_id"] == record.id and job["status"] == "queued"
    assert event["event_type"] == "file.stored" and event["destination"] == "log"
    assert event["payload"]["file"]["id"] == record.id
    assert event["payload"]["version"] == 1


async def test_search_filters_and_cursor_pagination(flow: Flow) -> None:
    ids = []
    for index in range(7):
        name = f"Level-{index}.IFCZIP" if index % 2 else f"notes-{index}.bin"
        record = await flow.ingest(
            "site",
            name,
            aiter_bytes(b"x" * (index + 1)),
            metadata={"parity": "odd" if index % 2 else "even"},
        )
        ids.append(record.id)
    newest_first = list(reversed(ids))

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await flow.list(FileQuery(project="site", limit=3, cursor=cursor))
        seen += [item.id for item in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == newest_first and pages == 3

    by_name = await flow.list(FileQuery(project="site", filename_contains="level-"))
    assert [i.id for i in by_name.items] == [ids[5], ids[3], ids[1]]
    # LIKE wildcards in the search text are literal
    assert (await flow.list(FileQuery(project="site", filename_contains="%"))).items == []
    odd = await flow.list(FileQuery(project="site", metadata={"parity": "odd"}))
    assert len(odd.items) == 3
    assert (await flow.list(FileQuery(project="site", status="processed"))).items == []
    assert len((await flow.list(FileQuery(project="site", status="stored"))).items) == 7

    middle = (await flow.get(ids[3])).created_at
    after = await flow.list(FileQuery(project="site", created_after=middle))
    assert set(ids[3:]) <= {i.id for i in after.items}
    before = await flow.list(FileQuery(project="site", created_before=middle))
    assert {i.id for i in before.items} <= set(ids[:3])
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert (await flow.list(FileQuery(project="site", created_after=future))).items == []

    with pytest.raises(InvalidInput):
        await flow.list(FileQuery(project="site", cursor="not-a-cursor"))


BAD_INPUT = [
    pytest.param({"filename": "empty.ifc", "data": b""}, "empty_file", id="empty file"),
    pytest.param({"filename": "../../etc/passwd"}, "invalid_filename", id="traversal"),
    pytest.param({"filename": "/etc/passwd"}, "invalid_filename", id="absolute path"),
    pytest.param({"filename": "C:\\models\\a.ifc"}, "invalid_filename", id="windows path"),
    pytest.param({"filename": "a\x00b.ifc"}, "invalid_filename", id="NUL"),
    pytest.param({"filename": "a\nb.ifc"}, "invalid_filename", id="newline"),
    pytest.param({"filename": "a\u202eb.ifc"}, "invalid_filename", id="bidi override"),
    pytest.param({"filename": ".."}, "invalid_filename", id="dot-dot"),
    pytest.param({"filename": "x" * 256}, "invalid_filename", id="over-long name"),
    pytest.param({"project": "Bad Project!"}, "invalid_project", id="invalid project"),
    pytest.param({"project": "../other"}, "invalid_project", id="project traversal"),
    pytest.param({"metadata": {"phase": 3}}, "invalid_metadata", id="metadata int value"),
    pytest.param({"metadata": {"a": {"b": "c"}}}, "invalid_metadata", id="nested metadata"),
    pytest.param({"metadata": ["a"]}, "invalid_metadata", id="metadata not a mapping"),
    pytest.param({"metadata": {"Bad Key": "x"}}, "invalid_metadata", id="metadata key"),
    pytest.param({"sha256": "abc"}, "invalid_checksum", id="malformed checksum"),
    pytest.param({"sha256": "0" * 64}, "checksum_mismatch", id="checksum mismatch"),
]


@pytest.mark.parametrize(("overrides", "code"), BAD_INPUT)
async def test_bad_input_is_refused_and_leaves_nothing(
    flow: Flow, tmp_path: Path, overrides: dict, code: str
) -> None:
    args = {"project": "p1", "filename": "model.ifc", "data": b"ISO-10303-21;\n" * 100}
    args.update(overrides)
    data = args.pop("data")
    with pytest.raises(InvalidInput) as caught:
        await flow.ingest(args.pop("project"), args.pop("filename"), aiter_bytes(data), **args)
    assert caught.value.code == code
    assert caught.value.message
    assert await count(flow, files) == 0
    assert await count(flow, outbox) == 0
    assert objects_on_disk(tmp_path) == []


async def test_over_limit_stream_is_refused_while_streaming(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, uploads={"max_size": 2 * 1024 * 1024})
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"\0" * 1024 * 1024

    async with Flow.open(settings) as flow:
        with pytest.raises(TooLarge):
            await flow.ingest("p1", "huge.bin", endless())
        assert await count(flow, files) == 0
    assert pulled <= 4, "the limit must stop reading, not read the whole stream"
    assert objects_on_disk(tmp_path) == []
    assert list((tmp_path / "objects" / "tmp").glob("*")) == []


async def test_storage_failure_half_way_leaves_no_row_and_no_object(
    flow: Flow, tmp_path: Path
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(1024 * 1024)
        yield os.urandom(1024 * 1024)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await flow.ingest("p1", "model.bin", broken())
    assert await count(flow, files) == 0
    assert objects_on_disk(tmp_path) == []
    assert list((tmp_path / "objects" / "tmp").glob("*")) == []


async def test_database_failure_after_storing_removes_the_object(
    flow: Flow, tmp_path: Path
) -> None:
    """A real database error (a trigger refusing the outbox insert) rolls everything back."""
    async with inserts_refused(flow.engine):
        with pytest.raises(sa.exc.DBAPIError):
            await flow.ingest("p1", "model.bin", aiter_bytes(os.urandom(2_000_000)))
        assert await count(flow, files) == 0
        assert await count(flow, jobs) == 0
        assert objects_on_disk(tmp_path) == []


async def test_download_url_is_signed_for_the_stored_object(flow: Flow) -> None:
    record = await flow.ingest("p1", "plan.pdf", aiter_bytes(b"%PDF-1.7 test"))
    url = await flow.download_url(record.id, dt.timedelta(minutes=5), host_relative=True)
    assert url is not None and "signature=" in url and "plan.pdf" in url
    assert url.startswith("/v1/storage/local/")
    with pytest.raises(NotFound):
        await flow.get("00000000-0000-7000-8000-000000000000")
    with pytest.raises(NotFound):
        await flow.get("not-an-id")


async def test_an_embedder_without_a_host_gets_a_file_uri_it_can_read(flow: Flow) -> None:
    """storage_local's URLs are paths that only the HTTP host serves; embedded, the flow turns
    them into the object's ``file://`` URI instead of a path that leads nowhere."""
    record = await flow.ingest("p1", "plan.pdf", aiter_bytes(b"%PDF-1.7 embedded"))
    url = await flow.download_url(record.id)
    assert url is not None and url.startswith("file:///")
    path = Path(urllib.request.url2pathname(urlsplit(url).path))
    assert await asyncio.to_thread(path.read_bytes) == b"%PDF-1.7 embedded"
    await flow.delete(record.id)
    with pytest.raises(NotFound):
        await flow.download_url(record.id)


async def test_a_cursor_that_decodes_to_nul_bytes_is_invalid(flow: Flow) -> None:
    """PostgreSQL refuses NUL in text: such a cursor was a 500 on files, audit, dead letters."""
    nul = base64.urlsafe_b64encode(b"\0" * 36).decode()
    for call in (
        lambda: flow.list(FileQuery(project="p1", cursor=nul)),
        lambda: flow.audit.search(cursor=nul),
        lambda: flow.dead_letters(cursor=nul),
    ):
        with pytest.raises(InvalidInput) as refused:
            await call()
        assert refused.value.code == "invalid_cursor"
