"""Upload sessions with S3: parts go straight to S3 through presigned UploadPart URLs.

Requests go through ``PresignGateway`` in front of moto, which refuses what S3 would refuse
and moto lets through: bad or expired signatures, a signed checksum header missing, and a
part whose bytes do not match its declared SHA-256. The host never sees a part's bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import httpx
import sqlalchemy as sa
from s3_support import MIB, Bucket, PresignGateway, host_settings, live_host
from test_s3_flow import TINY_IFC, poll, s3_table

from aecflow.store.schema import uploads

PART = 5 * MIB


def cut(data: bytes) -> list[bytes]:
    return [data[i : i + PART] for i in range(0, len(data), PART)]


async def put_part(part: dict, body: bytes) -> httpx.Response:
    assert "authorization" not in {name.lower() for name in part["headers"]}
    async with httpx.AsyncClient(timeout=30) as direct:
        return await direct.request(
            part["method"], part["url"], content=body, headers=part["headers"]
        )


async def test_parts_go_straight_to_s3(tmp_path: Path, bucket: Bucket, database_url: str) -> None:
    # an IFC model padded to three parts: processed after completion, like a streamed upload
    data = TINY_IFC + b"/*" + os.urandom(11 * MIB) + b"*/\n"
    digest = hashlib.sha256(data).hexdigest()
    chunks = cut(data)
    async with PresignGateway(bucket.moto.endpoint) as gateway:
        settings = host_settings(
            tmp_path / "data", database_url, s3_table(bucket, endpoint_url=gateway.url)
        )
        async with (
            live_host(settings) as (url, app),
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            no_digest = await client.post(
                "/v1/projects/tower-a/uploads", json={"filename": "t.ifc", "size": len(data)}
            )
            assert no_digest.status_code == 400
            assert no_digest.json()["error"]["code"] == "sha256_required"

            response = await client.post(
                "/v1/projects/tower-a/uploads",
                json={
                    "filename": "Tower A.ifc",
                    "size": len(data),
                    "sha256": digest,
                    "part_size": PART,
                    "part_sha256": [hashlib.sha256(c).hexdigest() for c in chunks],
                    "content_type": "application/x-step",
                    "metadata": {"phase": "design"},
                },
            )
            assert response.status_code == 201, response.text
            session = response.json()
            assert session["transport"] == "direct" and session["part_count"] == 3
            (pending,) = bucket.multipart_uploads()
            assert pending.startswith("aecflow/tower-a/")
            parts = session["parts"]
            for part in parts:
                assert part["url"].startswith(gateway.url) and "partNumber" in part["url"]
                assert "x-amz-checksum-sha256" in part["headers"]

            # S3 (the gateway) refuses bytes that differ from the signed checksum, and a URL
            # used without its signed header
            wrong = await put_part(parts[0], chunks[1])
            assert wrong.status_code == 400 and "BadDigest" in wrong.text
            unsigned = await put_part({**parts[0], "headers": {}}, chunks[0])
            assert unsigned.status_code == 403

            answers = await asyncio.gather(
                *(put_part(part, chunk) for part, chunk in zip(parts[:2], chunks[:2], strict=True))
            )
            assert [a.status_code for a in answers] == [200, 200]
            progress = (await client.get(f"/v1/uploads/{session['id']}")).json()
            assert progress["parts_received"] == 2
            assert progress["bytes_received"] == 2 * PART
            missing = [p for p in progress["parts"] if not p["received"]]
            assert [p["number"] for p in missing] == [3] and missing[0]["url"]

            incomplete = await client.post(f"/v1/uploads/{session['id']}/complete")
            assert incomplete.status_code == 409
            assert incomplete.json()["error"]["code"] == "upload_incomplete"

            assert (await put_part(missing[0], chunks[2])).status_code == 200
            done = await client.post(f"/v1/uploads/{session['id']}/complete")
            assert done.status_code == 201, done.text
            record = done.json()
            assert record["sha256"] == digest and record["size"] == len(data)
            again = await client.post(f"/v1/uploads/{session['id']}/complete")
            assert again.status_code == 200 and again.json()["id"] == record["id"]

            assert bucket.multipart_uploads() == []
            key = f"aecflow/tower-a/{record['id']}"
            assert key == pending
            stored = bucket.s3.get_object(Bucket=bucket.name, Key=key)
            assert stored["Body"].read() == data
            assert stored["ServerSideEncryption"] == "AES256"
            assert stored["Metadata"] == {"project": "tower-a", "file-id": record["id"]}
            processed = await poll(
                client,
                f"/v1/files/{record['id']}",
                lambda r: r.json()["processing"]["outcome"] is not None,
            )
            assert processed.json()["processing"]["outcome"] == "succeeded", processed.text
            assert processed.json()["processing"]["result"]["schema"] == "IFC4"
            del app


async def test_wrong_part_size_in_s3_is_refused_on_completion(
    tmp_path: Path, bucket: Bucket, database_url: str
) -> None:
    data = os.urandom(8 * MIB)
    settings = host_settings(tmp_path / "data", database_url, s3_table(bucket))
    async with (
        live_host(settings) as (url, _app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        session = (
            await client.post(
                "/v1/projects/p/uploads",
                json={
                    "filename": "scan.bin",
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "part_size": PART,
                },
            )
        ).json()
        first, second = session["parts"]
        assert (await put_part(first, data[:PART])).status_code == 200
        assert (await put_part(second, data[PART:] + b"extra")).status_code == 200
        refused = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert refused.status_code == 400
        assert refused.json()["error"] == {
            "code": "part_size_mismatch",
            "message": f"part 2 has {len(data) - PART + 5} bytes, expected {len(data) - PART}; "
            "send it again",
        }
        # still open: the part is sent again, properly this time
        view = (await client.get(f"/v1/uploads/{session['id']}")).json()
        assert view["status"] == "open" and view["parts_received"] == 1
        assert (await put_part(view["parts"][1], data[PART:])).status_code == 200
        done = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert done.status_code == 201, done.text
        content = await client.get(f"/v1/files/{done.json()['id']}/content")
        assert content.content == data


async def test_expired_and_aborted_sessions_abort_the_s3_upload(
    tmp_path: Path, bucket: Bucket, database_url: str
) -> None:
    data = os.urandom(6 * MIB)
    table = s3_table(bucket)
    settings = host_settings(tmp_path / "data", database_url, table)
    settings = settings.model_copy(
        update={"uploads": settings.uploads.model_copy(update={"session_ttl_s": 2.0})}
    )
    body = {"filename": "a.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    async with (
        live_host(settings) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        expiring = (await client.post("/v1/projects/p/uploads", json=body)).json()
        aborted = (await client.post("/v1/projects/p/uploads", json=body)).json()
        for session in (expiring, aborted):
            assert (await put_part(session["parts"][0], data[:PART])).status_code == 200
        assert len(bucket.multipart_uploads()) == 2

        assert (await client.delete(f"/v1/uploads/{aborted['id']}")).status_code == 204
        assert len(bucket.multipart_uploads()) == 1
        await asyncio.sleep(2.1)
        late = await client.post(f"/v1/uploads/{expiring['id']}/complete")
        assert late.status_code == 410 and late.json()["error"]["code"] == "upload_expired"
        assert await app.state.flow.uploads.sweep() == 1
        assert bucket.multipart_uploads() == []
        assert bucket.object_keys() == []
        async with app.state.flow.engine.connect() as conn:
            rows = (await conn.execute(sa.select(uploads.c.status, uploads.c.cleaned_at))).all()
        assert sorted(status for status, _ in rows) == ["aborted", "expired"]
        assert all(cleaned is not None for _, cleaned in rows)


async def test_the_client_sends_parts_straight_to_s3(
    tmp_path: Path, bucket: Bucket, database_url: str
) -> None:
    """aecflow.client against the host on S3: checksummed parts go to S3 (through the
    enforcing gateway) without the token, and the record's SHA-256 is the file's."""
    from aecflow.client import AsyncClient

    source = tmp_path / "scan.bin"
    data = os.urandom(3 * PART + 17)
    source.write_bytes(data)
    async with PresignGateway(bucket.moto.endpoint) as gateway:
        settings = host_settings(
            tmp_path / "data", database_url, s3_table(bucket, endpoint_url=gateway.url)
        )
        async with (
            live_host(settings) as (url, _app),
            AsyncClient(url, part_size=PART, stream_threshold=PART) as client,
        ):
            seen = []
            record = await client.upload(source, "p", {"phase": "survey"}, progress=seen.append)
            assert record["sha256"] == hashlib.sha256(data).hexdigest()
            assert record["metadata"] == {"phase": "survey"}
            assert seen[-1].sent == len(data) and seen[-1].phase == "done"
    stored = bucket.s3.get_object(Bucket=bucket.name, Key=f"aecflow/p/{record['id']}")
    assert stored["Body"].read() == data
    assert bucket.multipart_uploads() == []


async def test_a_completion_that_failed_in_the_database_is_retried(
    tmp_path: Path, bucket: Bucket, database_url: str
) -> None:
    """S3 joined the parts (the multipart upload is gone), then publishing failed: the next
    ``complete`` publishes the object S3 holds."""
    from aecflow.testing.databases import inserts_refused

    data = os.urandom(6 * MIB)
    settings = host_settings(tmp_path / "data", database_url, s3_table(bucket))
    body = {
        "filename": "a.bin",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "part_size": PART,
    }
    async with (
        live_host(settings) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        session = (await client.post("/v1/projects/p/uploads", json=body)).json()
        for part, chunk in zip(session["parts"], cut(data), strict=True):
            assert (await put_part(part, chunk)).status_code == 200
        async with inserts_refused(app.state.flow.engine, "files"):
            failed = await client.post(f"/v1/uploads/{session['id']}/complete")
            assert failed.status_code == 500, failed.text
        assert bucket.multipart_uploads() == [] and len(bucket.object_keys()) == 1
        done = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert done.status_code == 201, done.text
        assert (await client.get(f"/v1/files/{done.json()['id']}/content")).content == data


async def test_a_part_sent_after_completion_changes_nothing(
    tmp_path: Path, bucket: Bucket, database_url: str
) -> None:
    """A slow client sends part 1 again (other bytes) after the session completed: S3 has no
    such multipart upload any more, so the published object keeps the bytes it was recorded
    with."""
    data = os.urandom(6 * MIB)
    settings = host_settings(tmp_path / "data", database_url, s3_table(bucket))
    body = {
        "filename": "a.bin",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "part_size": PART,
    }
    async with (
        live_host(settings) as (url, _app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        session = (await client.post("/v1/projects/p/uploads", json=body)).json()
        for part, chunk in zip(session["parts"], cut(data), strict=True):
            assert (await put_part(part, chunk)).status_code == 200
        done = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert done.status_code == 201, done.text
        late = await put_part(session["parts"][0], os.urandom(PART))
        assert not late.is_success  # S3 answers 404 NoSuchUpload (moto: a 500)
        record = done.json()
        stored = bucket.s3.get_object(Bucket=bucket.name, Key=f"aecflow/p/{record['id']}")
        assert stored["Body"].read() == data
        assert record["sha256"] == hashlib.sha256(data).hexdigest()


async def test_a_part_replaced_while_completing_is_a_conflict(
    tmp_path: Path, bucket: Bucket, database_url: str
) -> None:
    """Part 2 is sent again (other bytes) after the core listed the parts and before S3 joins
    them: S3 refuses the stale etag, the client gets 409 ``upload_parts_changed`` (not a storage
    error), nothing is published, and the session stays open for the right part."""
    data = os.urandom(6 * MIB)
    chunks = cut(data)
    settings = host_settings(tmp_path / "data", database_url, s3_table(bucket))
    body = {
        "filename": "a.bin",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "part_size": PART,
    }
    async with (
        live_host(settings) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        session = (await client.post("/v1/projects/p/uploads", json=body)).json()
        for part, chunk in zip(session["parts"], chunks, strict=True):
            assert (await put_part(part, chunk)).status_code == 200
        storage = app.state.flow.storage
        real_complete = storage.complete_multipart

        async def replaced_first(*args, **kwargs):
            storage.complete_multipart = real_complete
            other = os.urandom(len(chunks[1]))
            assert (await put_part(session["parts"][1], other)).status_code == 200
            return await real_complete(*args, **kwargs)

        storage.complete_multipart = replaced_first
        refused = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "upload_parts_changed"
        assert bucket.object_keys() == []
        view = (await client.get(f"/v1/uploads/{session['id']}")).json()
        assert view["status"] == "open"

        assert (await put_part(session["parts"][1], chunks[1])).status_code == 200
        done = await client.post(f"/v1/uploads/{session['id']}/complete")
        assert done.status_code == 201, done.text
        assert (await client.get(f"/v1/files/{done.json()['id']}/content")).content == data
