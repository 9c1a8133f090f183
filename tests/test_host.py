"""The HTTP host over real HTTP (uvicorn on a loopback port), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aecflow.flow import Flow
from aecflow.store.schema import files

from . import engine_plugin
from .conftest import make_settings
from .live import TcpProxy, live_host

PLUGINS = [("engine_plugin", engine_plugin)]


def host_settings(tmp_path: Path, database_url: str, **overrides: object):
    base: dict[str, object] = {
        "notifiers": [{"backend": "flaky", "fail_times": 0}],
        "worker": {"embedded": True, "poll_interval_s": 0.05},
        # authentication has its own tests (test_access.py); these are about the API itself
        "auth": {"mode": "none"},
    }
    base.update(overrides)
    return make_settings(tmp_path, database_url, **base)


def leftovers(tmp_path: Path) -> list[Path]:
    root = tmp_path / "objects"
    return [p for p in root.rglob("*") if p.is_file() and p.name != ".signing-key"]


async def file_rows(flow: Flow) -> int:
    async with flow.engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(files))


async def poll(client: httpx.AsyncClient, file_id: str, until, timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        body = (await client.get(f"/v1/files/{file_id}")).json()
        if until(body):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


async def test_the_whole_journey(tmp_path: Path, database_url: str) -> None:
    data = b"first line\n" + os.urandom(3 * 1024 * 1024) + b"\nlast line\n"
    settings = host_settings(tmp_path, database_url)
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, follow_redirects=True) as client,
    ):
        response = await client.post(
            "/v1/projects/tower-a/files?filename=model.ok",
            content=data,
            headers={
                "X-Aecflow-Meta-Phase": "design",
                "Content-Type": "application/x-test",
                "Content-SHA256": hashlib.sha256(data).hexdigest(),
            },
        )
        assert response.status_code == 201, response.text
        record = response.json()
        assert response.headers["location"] == f"/v1/files/{record['id']}"
        assert record["size"] == len(data) and record["metadata"] == {"phase": "design"}

        done = await poll(client, record["id"], lambda b: b["status"] == "processed")
        assert done["processing"]["result"]["bytes"] == len(data)
        assert done["processing"]["outcome"] == "succeeded"
        notifier = app.state.flow.notifiers["flaky"]
        deadline = time.monotonic() + 10
        while {e.type for e in notifier.delivered} < {"file.stored", "file.processed"}:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)

        found = (
            await client.get(
                "/v1/projects/tower-a/files",
                params={"filename": "MODEL", "meta.phase": "design", "status": "processed"},
            )
        ).json()
        assert [item["id"] for item in found["items"]] == [record["id"]]

        download = await client.get(f"/v1/files/{record['id']}/download")
        assert download.status_code == 200
        assert download.history[0].status_code == 307
        assert "signature=" in str(download.url)
        assert download.content == data
        assert "model.ok" in download.headers["content-disposition"]
        signed_path = download.url.path
        for odd in ("\u00b2", "9" * 5000, ""):
            forged = await client.get(signed_path, params={"expires": odd, "signature": "0" * 64})
            assert forged.status_code == 403, (odd[:8], forged.text)
            assert forged.json()["error"]["code"] == "invalid_signature"
        ranged = await client.get(
            f"/v1/files/{record['id']}/content", headers={"Range": "bytes=0-9"}
        )
        assert ranged.status_code == 206 and ranged.content == data[:10]
        assert ranged.headers["content-range"] == f"bytes 0-9/{len(data)}"
        tail = await client.get(f"/v1/files/{record['id']}/content", headers={"Range": "bytes=-10"})
        assert tail.content == data[-10:]
        bad_range = await client.get(
            f"/v1/files/{record['id']}/content", headers={"Range": f"bytes={len(data)}-"}
        )
        assert bad_range.status_code == 416
        huge = "9" * 5000
        to_the_end = await client.get(
            f"/v1/files/{record['id']}/content", headers={"Range": f"bytes=0-{huge}"}
        )
        assert to_the_end.status_code == 206 and to_the_end.content == data
        whole_tail = await client.get(
            f"/v1/files/{record['id']}/content", headers={"Range": f"bytes=-{huge}"}
        )
        assert whole_tail.status_code == 206 and whole_tail.content == data
        past_the_end = await client.get(
            f"/v1/files/{record['id']}/content", headers={"Range": f"bytes={huge}-"}
        )
        assert past_the_end.status_code == 416
        backwards = await client.get(
            f"/v1/files/{record['id']}/content", headers={"Range": "bytes=5-3"}
        )
        assert backwards.status_code == 200 and backwards.content == data  # invalid: ignored

        deleted = await client.delete(f"/v1/files/{record['id']}")
        assert deleted.json()["deleted_at"] is not None
        assert (await client.get(f"/v1/files/{record['id']}/content")).status_code == 404
        listed = (await client.get("/v1/projects/tower-a/files")).json()
        assert listed["items"] == []
        restored = await client.post(f"/v1/files/{record['id']}/restore")
        assert restored.status_code == 200 and restored.json()["deleted_at"] is None
        reprocessed = await client.post(f"/v1/files/{record['id']}/reprocess")
        assert reprocessed.status_code == 202
        await poll(client, record["id"], lambda b: b["status"] == "processed")
        purged = await client.delete(f"/v1/files/{record['id']}", params={"purge": "true"})
        assert purged.status_code == 200 and purged.json()["purged_at"] is not None
        conflict = await client.post(f"/v1/files/{record['id']}/restore")
        assert conflict.status_code == 409
        assert conflict.json()["error"]["code"] == "file_purged"
    assert leftovers(tmp_path) == []


async def test_browser_multipart_upload(tmp_path: Path, database_url: str) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    async with (
        live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.post(
            "/v1/projects/p1/files",
            data={"meta.phase": "as-built"},
            files={"file": ("plan ä.bin", data, "application/octet-stream")},
        )
        assert response.status_code == 201, response.text
        record = response.json()
        assert record["filename"] == "plan ä.bin" and record["size"] == len(data)
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["metadata"] == {"phase": "as-built"}
        body = (await client.get(f"/v1/files/{record['id']}/content")).content
        assert body == data


async def test_fifty_concurrent_uploads_while_health_answers(
    tmp_path: Path, database_url: str
) -> None:
    payloads = [os.urandom(3 * 1024 * 1024) for _ in range(5)]
    health_answers = 0
    settings = host_settings(tmp_path, database_url, notifiers=[])
    async with (
        live_host(settings, plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(
            base_url=url, timeout=120, limits=httpx.Limits(max_connections=100)
        ) as client,
    ):
        uploading = True

        async def watch_health() -> None:
            nonlocal health_answers
            while uploading:
                response = await client.get("/health")
                assert response.status_code == 200
                health_answers += 1
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch_health())
        responses = await asyncio.gather(
            *(
                client.post(f"/v1/projects/p1/files?filename=f{i}.bin", content=payloads[i % 5])
                for i in range(50)
            )
        )
        uploading = False
        await watcher
        assert [r.status_code for r in responses] == [201] * 50
        digests = {hashlib.sha256(p).hexdigest() for p in payloads}
        assert {r.json()["sha256"] for r in responses} == digests
        listed = (await client.get("/v1/projects/p1/files", params={"limit": 100})).json()
        assert len(listed["items"]) == 50
    assert health_answers > 0


BAD_REQUESTS = [
    pytest.param(
        "?filename=a.bin",
        {"Content-SHA256": "0" * 64},
        b"data",
        400,
        "checksum_mismatch",
        id="wrong digest",
    ),
    pytest.param(
        "?filename=a.bin",
        {"Digest": "sha-256=" + base64.b64encode(b"x" * 32).decode()},
        b"data",
        400,
        "checksum_mismatch",
        id="wrong Digest header",
    ),
    pytest.param("?filename=a.bin", {}, b"", 400, "empty_file", id="empty body"),
    pytest.param(
        "?filename=../../etc/passwd", {}, b"data", 400, "invalid_filename", id="traversal filename"
    ),
    pytest.param(
        "",
        {"Content-Disposition": 'attachment; filename="/etc/passwd"'},
        b"data",
        400,
        "invalid_filename",
        id="absolute filename header",
    ),
    pytest.param("", {}, b"data", 400, "invalid_filename", id="no filename"),
    pytest.param(
        "",
        {"Content-Disposition": b'attachment; filename="caf\xe9.ifc"'},  # 0xE9: not UTF-8
        b"data",
        400,
        "invalid_filename",
        id="filename not utf-8",
    ),
    pytest.param("?filename=big.bin", {}, b"x" * 4096, 413, "too_large", id="over the limit"),
    pytest.param(
        "",
        {"Content-Type": "multipart/form-data; boundary=xyz"},
        b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="caf\xe9.ifc"\r\n\r\n'
        b"data\r\n--xyz--\r\n",
        400,
        "invalid_filename",
        id="form filename not utf-8",
    ),
    pytest.param(
        "",
        {"Content-Type": "multipart/form-data; boundary=" + "b" * 300},
        b"--" + b"b" * 300 + b"\r\n",
        400,
        "invalid_multipart",
        id="boundary longer than 70",
    ),
    pytest.param(
        "?filename=a.bin",
        {"Content-Type": "multipart/form-data; boundary=xyz"},
        b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--\r\n',
        400,
        "missing_file_part",
        id="multipart without a file part",
    ),
]


@pytest.mark.parametrize(("query", "headers", "body", "status", "code"), BAD_REQUESTS)
async def test_bad_uploads_get_the_documented_error_and_leave_nothing(
    tmp_path: Path,
    database_url: str,
    query: str,
    headers: dict,
    body: bytes,
    status: int,
    code: str,
) -> None:
    settings = host_settings(tmp_path, database_url, uploads={"max_size": 1024})
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.post(f"/v1/projects/p1/files{query}", content=body, headers=headers)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code and error["message"]
        assert "x-request-id" in response.headers
        assert await file_rows(app.state.flow) == 0
    assert leftovers(tmp_path) == []


async def test_a_lone_extended_filename_names_the_upload(tmp_path: Path, database_url: str) -> None:
    """RFC 6266: ``filename*`` alone names the file, and wins over ``filename``."""
    async with (
        live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        for disposition in (
            "attachment; filename*=UTF-8''caf%C3%A9.ifc",
            "attachment; filename=\"cafe.ifc\"; filename*=UTF-8''caf%C3%A9.ifc",
        ):
            response = await client.post(
                "/v1/projects/p1/files",
                content=b"data",
                headers={"Content-Disposition": disposition},
            )
            assert response.status_code == 201, response.text
            assert response.json()["filename"] == "café.ifc"


async def test_streamed_over_limit_body_without_length_is_cut_off(
    tmp_path: Path, database_url: str
) -> None:
    async def endless():
        for _ in range(64):
            yield b"\0" * 65536

    settings = host_settings(tmp_path, database_url, uploads={"max_size": 1024 * 1024})
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.post("/v1/projects/p1/files?filename=a.bin", content=endless())
        assert response.status_code == 413
        assert await file_rows(app.state.flow) == 0
    assert leftovers(tmp_path) == []


async def test_client_that_disconnects_mid_body_leaves_nothing(
    tmp_path: Path, database_url: str
) -> None:
    async with live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, app):
        port = int(url.rsplit(":", 1)[1])
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/projects/p1/files?filename=cut.bin HTTP/1.1\r\n"
            b"Host: x\r\nContent-Length: 20000000\r\n\r\n"
        )
        writer.write(os.urandom(3 * 1024 * 1024))
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.transport.abort()
        deadline = time.monotonic() + 10
        while leftovers(tmp_path) or list((tmp_path / "objects" / "tmp").glob("*")):
            assert time.monotonic() < deadline, leftovers(tmp_path)
            await asyncio.sleep(0.05)
        assert await file_rows(app.state.flow) == 0


async def test_unknown_ids_request_ids_and_json_errors(tmp_path: Path, database_url: str) -> None:
    async with (
        live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        for path in (
            "/v1/files/01a1ffc4-0000-7000-8000-000000000000",
            "/v1/files/nope",
            "/v1/files/nope/content",
            "/v1/files/nope/download",
            "/v1/nothing",
        ):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] in ("file_not_found", "not_found")
        given = await client.get("/health", headers={"X-Request-ID": "trace-123"})
        assert given.headers["x-request-id"] == "trace-123"
        generated = await client.get(
            "/health", headers={"X-Request-ID": "bad id\u00e9".encode("latin-1")}
        )
        assert len(generated.headers["x-request-id"]) == 32
        bad = await client.get("/v1/projects/Bad!/files")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_project"
        plugins = (await client.get("/v1/plugins")).json()["items"]
        assert {"storage_local", "engine_plugin"} <= {p["name"] for p in plugins}
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert {b["name"] for b in ready.json()["breakers"]} == {"storage", "notifier:flaky"}


async def test_too_many_concurrent_uploads_get_503(tmp_path: Path, database_url: str) -> None:
    release = asyncio.Event()

    async def slow_body():
        yield b"first chunk"
        await release.wait()
        yield b"last chunk"

    settings = host_settings(tmp_path, database_url, uploads={"max_concurrent": 1})
    async with (
        live_host(settings, plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        first = asyncio.create_task(
            client.post("/v1/projects/p1/files?filename=a.bin", content=slow_body())
        )
        await asyncio.sleep(0.3)
        second = await client.post("/v1/projects/p1/files?filename=b.bin", content=b"x")
        assert second.status_code == 503 and second.headers["retry-after"]
        assert second.json()["error"]["code"] == "too_many_uploads"
        release.set()
        assert (await first).status_code == 201


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_database_down_mid_run_answers_503_and_recovers(
    tmp_path: Path, database_url: str
) -> None:
    real = sa.engine.make_url(database_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.start()
    via_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = host_settings(tmp_path, via_proxy, notifiers=[])
    async with (
        live_host(settings, plugins=PLUGINS) as (url, _app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert (
            await client.post("/v1/projects/p1/files?filename=a.bin", content=b"before")
        ).status_code == 201
        await proxy.stop()
        down = await client.post("/v1/projects/p1/files?filename=b.bin", content=b"during")
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "database_unavailable"
        assert down.headers["retry-after"]
        assert (await client.get("/ready")).status_code == 503
        assert (await client.get("/health")).status_code == 200
        await proxy.start()
        deadline = time.monotonic() + 20
        while (await client.get("/ready")).status_code != 200:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        after = await client.post("/v1/projects/p1/files?filename=c.bin", content=b"after")
        assert after.status_code == 201
        names = [i["filename"] for i in (await client.get("/v1/projects/p1/files")).json()["items"]]
        assert names == ["c.bin", "a.bin"]
    await proxy.stop()
    # the upload that failed while the database was down left no object behind
    objects = leftovers(tmp_path)
    assert len(objects) == 2 and all(p.read_bytes() != b"during" for p in objects)


async def test_unprocessable_files_are_refused_when_configured(
    tmp_path: Path, database_url: str
) -> None:
    settings = host_settings(tmp_path, database_url, processing={"refuse_unprocessable": True})
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        refused = await client.post("/v1/projects/p1/files?filename=a.bin", content=b"data")
        assert refused.status_code == 415
        assert refused.json()["error"]["code"] == "unsupported_file"
        accepted = await client.post("/v1/projects/p1/files?filename=a.ok", content=b"data")
        assert accepted.status_code == 201
        assert await file_rows(app.state.flow) == 1
    assert len(leftovers(tmp_path)) == 1


async def test_each_request_is_logged_once_readable_with_its_fields(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="aecflow.access")
    async with (
        live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        await client.get("/v1/files/nope", headers={"X-Request-ID": "req-42"})
    records = [r for r in caplog.records if r.name == "aecflow.access"]
    [record] = [r for r in records if r.access["request_id"] == "req-42"]
    assert record.getMessage().startswith('127.0.0.1 "GET /v1/files/nope" 404 ')
    assert record.getMessage().endswith(" req-42")
    line = record.access
    assert line["status"] == 404 and line["path"] == "/v1/files/nope"
    assert line["method"] == "GET" and line["duration_s"] >= 0 and line["bytes_out"] > 0
