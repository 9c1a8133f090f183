"""Resumable upload sessions through the host, with parts sent to the host (local storage), on
SQLite and PostgreSQL. The S3 flavour (presigned parts straight to moto) is in storage_s3's
tests; the client and the CLI in test_client.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aecflow.errors import InvalidInput
from aecflow.store.schema import audit_log, files, upload_parts, uploads
from aecflow.streams import aiter_bytes

from . import engine_plugin
from .conftest import inserts_refused
from .live import live_host
from .test_host import PLUGINS, host_settings, leftovers, poll

MiB = 1024 * 1024
PART = 5 * MiB


def make_data(size: int) -> bytes:
    return b"first line\n" + os.urandom(size - 11)


def parts_of(data: bytes, part_size: int = PART) -> list[bytes]:
    return [data[i : i + part_size] for i in range(0, len(data), part_size)]


async def open_session(client: httpx.AsyncClient, data: bytes, **fields: object) -> dict:
    body = {"filename": "model.ok", "size": len(data), "part_size": PART} | fields
    response = await client.post("/v1/projects/tower-a/uploads", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def send(client: httpx.AsyncClient, session: dict, number: int, body: bytes, **headers):
    return await client.put(
        f"/v1/uploads/{session['id']}/parts/{number}", content=body, headers=headers
    )


async def file_count(app) -> int:
    async with app.state.flow.engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(files))


#: ``local`` writes parts in place into one file; ``staging`` is the storage contract's default
#: (each part an object of its own, joined on completion) that backends without their own get.
BACKENDS = pytest.mark.parametrize("backend", ["local", "staging"])


def storage_table(tmp_path: Path, backend: str) -> dict[str, str]:
    return {"backend": backend, "root": str(tmp_path / "objects")}


@BACKENDS
async def test_parts_in_any_order_then_complete(
    tmp_path: Path, database_url: str, backend: str
) -> None:
    data = make_data(12 * MiB + 123)
    settings = host_settings(tmp_path, database_url, storage=storage_table(tmp_path, backend))
    engine_plugin.OBSERVED.clear()
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, follow_redirects=True, timeout=30) as client,
    ):
        session = await open_session(
            client,
            data,
            sha256=hashlib.sha256(data).hexdigest(),
            metadata={"phase": "design"},
            content_type="application/x-test",
        )
        assert session["transport"] == "host" and session["status"] == "open"
        assert session["part_count"] == 3 and session["part_size"] == PART
        assert [p["size"] for p in session["parts"]] == [PART, PART, 2 * MiB + 123]
        assert session["parts"][0]["url"] == f"/v1/uploads/{session['id']}/parts/1"
        assert session["bytes_received"] == 0

        chunks = parts_of(data)
        answer = await send(client, session, 3, chunks[2])
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "number": 3,
            "size": len(chunks[2]),
            "sha256": hashlib.sha256(chunks[2]).hexdigest(),
        }
        progress = (await client.get(f"/v1/uploads/{session['id']}")).json()
        assert progress["parts_received"] == 1 and progress["bytes_received"] == len(chunks[2])
        assert [p["received"] for p in progress["parts"]] == [False, False, True]
        assert "url" not in progress["parts"][2] and "url" in progress["parts"][0]

        sent = await asyncio.gather(*(send(client, session, n, chunks[n - 1]) for n in (2, 1)))
        assert [r.status_code for r in sent] == [200, 200]
        done = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert done.status_code == 201, done.text
        record = done.json()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["size"] == len(data) and record["metadata"] == {"phase": "design"}

        again = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert again.status_code == 200 and again.json()["id"] == record["id"]
        assert await file_count(app) == 1

        processed = await poll(client, record["id"], lambda b: b["status"] == "processed")
        assert processed["processing"]["result"]["bytes"] == len(data)
        content = await client.get(f"/v1/files/{record['id']}/content")
        assert content.content == data
        final = (await client.get(f"/v1/uploads/{session['id']}")).json()
        assert final["status"] == "completed" and final["file_id"] == record["id"]
        # the staged parts are gone: only the published object is left
        assert [p.name for p in leftovers(tmp_path)] == [record["id"]]
        async with app.state.flow.engine.connect() as conn:
            actions = (await conn.execute(sa.select(audit_log.c.action, audit_log.c.outcome))).all()
            assert await conn.scalar(sa.select(sa.func.count()).select_from(upload_parts)) == 0
        assert ("upload.open", "ok") in actions and ("upload.complete", "ok") in actions
        assert actions.count(("upload.part", "ok")) == 3
        seen = [(o.name, o.outcome) for o in engine_plugin.OBSERVED if o.name.startswith("upload.")]
        assert seen.count(("upload.part", "ok")) == 3
        assert seen.count(("upload.complete", "ok")) == 2  # the second call found it completed


async def test_wrong_part_sizes_and_checksums_are_refused(
    tmp_path: Path, database_url: str
) -> None:
    data = make_data(11 * MiB)
    settings = host_settings(tmp_path, database_url)
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        session = await open_session(client, data)
        chunks = parts_of(data)
        short = await send(client, session, 1, chunks[0][:-1])
        long = await send(client, session, 1, chunks[0] + b"x")
        last_long = await send(client, session, 3, chunks[2] + b"x")
        for response in (short, long, last_long):
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "part_size_mismatch"
        assert "must be 5242880 bytes" in short.json()["error"]["message"]
        bad_digest = await send(
            client, session, 2, chunks[1], **{"Content-SHA256": hashlib.sha256(b"x").hexdigest()}
        )
        assert bad_digest.status_code == 400
        assert bad_digest.json()["error"]["code"] == "checksum_mismatch"
        out_of_range = await send(client, session, 4, b"x")
        assert out_of_range.status_code == 400
        assert out_of_range.json()["error"]["code"] == "invalid_part_number"
        for odd in ("9" * 5000, "\u0661", "-1"):  # thousands of digits, Arabic-Indic one
            response = await client.put(f"/v1/uploads/{session['id']}/parts/{odd}", content=b"x")
            assert response.status_code == 400, (odd[:8], response.text)
            assert response.json()["error"]["code"] == "invalid_part_number"
        progress = (await client.get(f"/v1/uploads/{session['id']}")).json()
        assert progress["parts_received"] == 0

        # a good part sent again and failing (short, or not matching its checksum) is no
        # longer received: its bytes may be half overwritten
        for retry in (
            {"body": chunks[1][:-5]},
            {"body": chunks[1], "Content-SHA256": hashlib.sha256(b"y").hexdigest()},
        ):
            assert (await send(client, session, 2, chunks[1])).status_code == 200
            body = retry.pop("body")
            assert (await send(client, session, 2, body, **retry)).status_code == 400
            view = (await client.get(f"/v1/uploads/{session['id']}")).json()
            assert view["parts_received"] == 0

        # a missing part: 409 naming it, and the session stays open for it
        for number in (1, 3):
            assert (await send(client, session, number, chunks[number - 1])).status_code == 200
        incomplete = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert incomplete.status_code == 409
        assert incomplete.json()["error"] == {
            "code": "upload_incomplete",
            "message": "1 of 3 parts are missing: 2",
        }
        assert await file_count(app) == 0
        assert (await send(client, session, 2, chunks[1])).status_code == 200
        done = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert done.status_code == 201, done.text
        assert done.json()["sha256"] == hashlib.sha256(data).hexdigest()


async def test_whole_file_checksum_mismatch_publishes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    data = make_data(6 * MiB)
    settings = host_settings(tmp_path, database_url)
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        claimed = hashlib.sha256(data + b"!").hexdigest()
        session = await open_session(client, data, sha256=claimed)
        for number, chunk in enumerate(parts_of(data), 1):
            assert (await send(client, session, number, chunk)).status_code == 200
        refused = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["code"] == "checksum_mismatch"
        assert claimed in error["message"] and hashlib.sha256(data).hexdigest() in error["message"]
        assert await file_count(app) == 0
        assert leftovers(tmp_path) == []
        view = (await client.get(f"/v1/uploads/{session['id']}")).json()
        assert view["status"] == "aborted"
        again = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert again.status_code == 409 and again.json()["error"]["code"] == "upload_aborted"


async def test_aborted_sessions_keep_nothing(tmp_path: Path, database_url: str) -> None:
    data = make_data(6 * MiB)
    settings = host_settings(tmp_path, database_url)
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        session = await open_session(client, data)
        assert (await send(client, session, 1, parts_of(data)[0])).status_code == 200
        assert len(leftovers(tmp_path)) == 1
        assert (await client.delete(f"/v1/uploads/{session['id']}")).status_code == 204
        assert leftovers(tmp_path) == []
        assert (await client.delete(f"/v1/uploads/{session['id']}")).status_code == 204
        for response in (
            await client.post(f"/v1/uploads/{session['id']}/complete"),
            await send(client, session, 2, parts_of(data)[1]),
        ):
            assert response.status_code == 409
            assert response.json()["error"]["code"] == "upload_aborted"
        assert await file_count(app) == 0

        # aborted while a part is on its way: the part is refused, not recorded
        racing = await open_session(client, data)
        halfway, resume = asyncio.Event(), asyncio.Event()

        async def slow_body():
            yield parts_of(data)[0][:MiB]
            halfway.set()
            await resume.wait()
            yield parts_of(data)[0][MiB:]

        sending = asyncio.create_task(send(client, racing, 1, slow_body()))
        await halfway.wait()
        assert (await client.delete(f"/v1/uploads/{racing['id']}")).status_code == 204
        resume.set()
        late = await sending
        assert late.status_code == 409 and late.json()["error"]["code"] == "upload_aborted"
        async with app.state.flow.engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(upload_parts)) == 0


@BACKENDS
async def test_expired_sessions_are_refused_and_swept(
    tmp_path: Path, database_url: str, backend: str
) -> None:
    data = make_data(6 * MiB)
    settings = host_settings(
        tmp_path,
        database_url,
        storage=storage_table(tmp_path, backend),
        uploads={"session_ttl_s": 1.5, "sweep_interval_s": 3600},
    )
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        session = await open_session(client, data)
        chunks = parts_of(data)
        for number, chunk in enumerate(chunks, 1):
            assert (await send(client, session, number, chunk)).status_code == 200
        # one file (local) or object (staged) per recorded attempt, never one shared file
        assert len(leftovers(tmp_path)) == 2
        await asyncio.sleep(1.6)
        late = await send(client, session, 1, chunks[0])
        assert late.status_code == 410 and late.json()["error"]["code"] == "upload_expired"
        complete = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert complete.status_code == 410
        assert complete.json()["error"]["code"] == "upload_expired"
        view = (await client.get(f"/v1/uploads/{session['id']}")).json()
        assert view["status"] == "expired" and "parts" not in view

        assert await app.state.flow.uploads.sweep() == 1
        assert leftovers(tmp_path) == []
        assert await app.state.flow.uploads.sweep() == 0  # nothing left to clean
        async with app.state.flow.engine.connect() as conn:
            row = (await conn.execute(sa.select(uploads))).mappings().one()
        assert row["status"] == "expired" and row["cleaned_at"] is not None
        assert await file_count(app) == 0


@BACKENDS
async def test_completion_that_failed_in_the_database_can_be_retried(
    tmp_path: Path, database_url: str, backend: str
) -> None:
    """The parts are joined, then publishing fails (a real database error): the joined file
    waits, a second ``complete`` publishes it, and an abort would remove it."""
    data = make_data(11 * MiB)
    settings = host_settings(tmp_path, database_url, storage=storage_table(tmp_path, backend))
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        kept, dropped = [
            await open_session(client, data, sha256=hashlib.sha256(data).hexdigest())
            for _ in range(2)
        ]
        for session in (kept, dropped):
            for number, chunk in enumerate(parts_of(data), 1):
                assert (await send(client, session, number, chunk)).status_code == 200
        async with inserts_refused(app.state.flow.engine):
            for session in (kept, dropped):
                failed = await client.post(f"/v1/uploads/{session['id']}/complete")
                assert failed.status_code == 500, failed.text
                view = (await client.get(f"/v1/uploads/{session['id']}")).json()
                assert view["status"] == "open"
        assert await file_count(app) == 0
        assert len(leftovers(tmp_path)) == 2  # the two joined files, nothing else

        done = await client.post(f"/v1/uploads/{kept['id']}/complete")
        assert done.status_code == 201, done.text
        record = done.json()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert (await client.get(f"/v1/files/{record['id']}/content")).content == data
        assert (await client.delete(f"/v1/uploads/{dropped['id']}")).status_code == 204
        assert [p.name for p in leftovers(tmp_path)] == [record["id"]]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"size": 10}, 400, "invalid_filename"),
        ({"filename": "a.ok"}, 400, "invalid_size"),
        ({"filename": "a.ok", "size": 0}, 400, "invalid_size"),
        ({"filename": "a.ok", "size": "10"}, 400, "invalid_size"),
        ({"filename": "../a.ok", "size": 10}, 400, "invalid_filename"),
        ({"filename": "a.ok", "size": 10, "part_size": 1024}, 400, "invalid_part_size"),
        ({"filename": "a.ok", "size": 10 * 1024**3}, 413, "too_large"),
        ({"filename": "a.ok", "size": 10, "sha256": "abc"}, 400, "invalid_checksum"),
        ({"filename": "a.ok", "size": 10, "part_sha256": ["0" * 64] * 2}, 400, "invalid_checksum"),
        ({"filename": "a.ok", "size": 10, "colour": "red"}, 400, "invalid_json"),
        ({"filename": "a.ok", "size": 10, "part_sha256": [{}]}, 400, "invalid_checksum"),
        (
            {"filename": "a.ok", "size": 10, "content_type": "a/b\r\nX: y"},
            400,
            "invalid_content_type",
        ),
        ({"filename": "a.ok", "size": 10, "content_type": "text"}, 400, "invalid_content_type"),
    ],
)
async def test_bad_session_requests(tmp_path: Path, body: dict, status: int, code: str) -> None:
    settings = host_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        response = await client.post("/v1/projects/tower-a/uploads", json=body)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
        async with app.state.flow.engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(uploads)) == 0
        for size in ("%C2%B2", "9" * 5000, "99999999999999999999"):
            listed = await client.get(f"/v1/projects/tower-a/uploads?size={size}")
            assert listed.status_code == 400 and listed.json()["error"]["code"] == "invalid_size"
        unknown = await client.get("/v1/uploads/0190a5a8-0000-7000-8000-000000000000")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "upload_not_found"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"filename": "a\udc00.ok", "size": 10}, "invalid_filename"),
        ({"filename": "a.ok", "size": 10, "metadata": {"k": "\udc00"}}, "invalid_metadata"),
    ],
)
async def test_a_lone_surrogate_is_refused_and_stores_nothing(
    tmp_path: Path, database_url: str, body: dict, code: str
) -> None:
    """JSON may escape a lone surrogate; stored, it made every listing of the project a 500."""
    async with (
        live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        raw = json.dumps(body).encode()  # ensure_ascii: the surrogate travels as \\udc00
        response = await client.post(
            "/v1/projects/tower-a/uploads",
            content=raw,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == code
        assert (await client.get("/v1/projects/tower-a/uploads")).status_code == 200
        async with app.state.flow.engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(uploads)) == 0
        with pytest.raises(InvalidInput):
            await app.state.flow.ingest("tower-a", "b\udc00.ok", aiter_bytes(b"x"))


async def test_a_deeply_nested_session_body_is_refused(tmp_path: Path) -> None:
    settings = host_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with (
        live_host(settings, plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        deep = b"[" * 100_000 + b"]" * 100_000  # 200 KB, under the body limit
        response = await client.post(
            "/v1/projects/tower-a/uploads",
            content=deep,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_json"


async def test_open_sessions_are_found_by_the_files_identity(
    tmp_path: Path, database_url: str
) -> None:
    data = make_data(6 * MiB)
    digest = hashlib.sha256(data).hexdigest()
    settings = host_settings(tmp_path, database_url)
    async with (
        live_host(settings, plugins=PLUGINS) as (url, _app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        wanted = await open_session(client, data, sha256=digest)
        await open_session(client, data, filename="other.ok", sha256=digest)
        aborted = await open_session(client, data, sha256=digest)
        await client.delete(f"/v1/uploads/{aborted['id']}")
        found = await client.get(
            "/v1/projects/tower-a/uploads",
            params={"sha256": digest, "filename": "model.ok", "size": len(data)},
        )
        assert [s["id"] for s in found.json()["items"]] == [wanted["id"]]
        other_project = await client.get("/v1/projects/tower-b/uploads")
        assert other_project.json() == {"items": []}


class PartGate:
    """Holds one ``put_part`` call of the real storage at a barrier: ``mid_write`` after its
    first chunk went to storage, ``before_record`` after storage returned and before the core
    records the part. Every other call passes straight through."""

    def __init__(self, storage, hold: str) -> None:
        self.real = storage.put_part
        self.hold = hold
        self.reached, self.release = asyncio.Event(), asyncio.Event()
        self.armed = True
        storage.put_part = self.put_part

    async def put_part(self, key, upload_id, number, chunks, *, offset):
        if not self.armed:
            return await self.real(key, upload_id, number, chunks, offset=offset)
        self.armed = False

        async def held():
            async for chunk in chunks:
                yield chunk
                if self.hold == "mid_write" and not self.reached.is_set():
                    self.reached.set()
                    await self.release.wait()

        stored = await self.real(key, upload_id, number, held(), offset=offset)
        if self.hold == "before_record":
            self.reached.set()
            await self.release.wait()
        return stored


@BACKENDS
@pytest.mark.parametrize("hold", ["mid_write", "before_record"])
async def test_a_late_part_write_never_changes_the_published_file(
    tmp_path: Path, database_url: str, backend: str, hold: str
) -> None:
    """A slow PUT of part 1 started before a faster one and before ``complete``: held at a
    barrier while the fast one lands and the session completes, it is refused (409) and the
    published bytes stay those recorded, matching the file's SHA-256."""
    data = make_data(6 * MiB)
    stale = os.urandom(PART)
    settings = host_settings(tmp_path, database_url, storage=storage_table(tmp_path, backend))
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        session = await open_session(client, data)
        chunks = parts_of(data)
        assert (await send(client, session, 2, chunks[1])).status_code == 200
        gate = PartGate(app.state.flow.storage, hold)
        slow = asyncio.create_task(send(client, session, 1, stale))
        await gate.reached.wait()
        fast = await send(client, session, 1, chunks[0])
        assert fast.status_code == 200, fast.text
        done = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert done.status_code == 201, done.text
        gate.release.set()
        late = await slow
        assert late.status_code == 409, late.text
        assert late.json()["error"]["code"] == "upload_completed"
        record = done.json()
        content = (await client.get(f"/v1/files/{record['id']}/content")).content
        assert content == data
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        # the refused attempt left nothing behind: only the published object
        assert [p.name for p in leftovers(tmp_path)] == [record["id"]]


@BACKENDS
async def test_concurrent_puts_of_one_part_the_last_to_finish_wins(
    tmp_path: Path, database_url: str, backend: str
) -> None:
    """Two PUTs of part 1 at once: both written, the first held before it is recorded while
    the second is recorded. Both are answered 200 (never a 500); the one recorded last holds
    the part, and what is published is exactly its bytes and recorded hash."""
    data = make_data(6 * MiB)
    other = os.urandom(PART)
    settings = host_settings(tmp_path, database_url, storage=storage_table(tmp_path, backend))
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        session = await open_session(client, data)
        chunks = parts_of(data)
        assert (await send(client, session, 2, chunks[1])).status_code == 200
        gate = PartGate(app.state.flow.storage, "before_record")
        first = asyncio.create_task(send(client, session, 1, other))
        await gate.reached.wait()
        second = await send(client, session, 1, chunks[0])
        assert second.status_code == 200, second.text
        gate.release.set()
        first_answer = await first
        assert first_answer.status_code == 200, first_answer.text
        assert first_answer.json()["sha256"] == hashlib.sha256(other).hexdigest()
        view = (await client.get(f"/v1/uploads/{session['id']}")).json()
        assert view["parts_received"] == 2
        async with app.state.flow.engine.connect() as conn:
            recorded = await conn.scalar(
                sa.select(upload_parts.c.sha256).where(upload_parts.c.number == 1)
            )
        assert recorded == hashlib.sha256(other).hexdigest()
        done = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert done.status_code == 201, done.text
        expected = other + chunks[1]
        assert done.json()["sha256"] == hashlib.sha256(expected).hexdigest()
        content = (await client.get(f"/v1/files/{done.json()['id']}/content")).content
        assert content == expected
        assert [p.name for p in leftovers(tmp_path)] == [done.json()["id"]]
