"""tus 1.0 at /v1/tus/ over a live host: the protocol's answers, status code by status code,
bodies cut anywhere (not at part boundaries), CORS for browsers, and bearer tokens. The real
clients (tuspy, tus-js-client) are in test_tus_clients.py."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import os
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aecflow.actor import Role
from aecflow.store.schema import audit_log, upload_parts

from .live import live_host
from .test_host import PLUGINS, host_settings, leftovers, poll

MiB = 1024 * 1024
PART = 5 * MiB
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def create(client: httpx.AsyncClient, length: int, **values: str) -> httpx.Response:
    values = {"project": "tower-a", "filename": "model.ok"} | values
    return await client.post(
        "/v1/tus/",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(**values)},
    )


async def patch(
    client: httpx.AsyncClient, location: str, offset: int, body: bytes, **headers: str
) -> httpx.Response:
    return await client.patch(
        location, content=body, headers={**OCTETS, "Upload-Offset": str(offset), **headers}
    )


def settings_for(tmp_path: Path, database_url: str, **overrides: object):
    uploads = {"part_size": PART} | dict(overrides.pop("uploads", {}))  # type: ignore[arg-type]
    return host_settings(tmp_path, database_url, uploads=uploads, **overrides)


async def test_discovery_and_every_response_says_tus_resumable(
    tmp_path: Path, database_url: str
) -> None:
    settings = settings_for(tmp_path, database_url, uploads={"max_size": 123 * MiB})
    async with (
        live_host(settings, plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        answer = await client.options("/v1/tus/")
        assert answer.status_code == 204
        assert answer.headers["tus-version"] == "1.0.0"
        assert answer.headers["tus-resumable"] == "1.0.0"
        assert answer.headers["tus-max-size"] == str(123 * MiB)
        extensions = set(answer.headers["tus-extension"].split(","))
        assert {"creation", "creation-with-upload", "termination", "checksum"} <= extensions
        assert "expiration" in extensions
        assert "sha256" in answer.headers["tus-checksum-algorithm"]
        # 412 for another (or no) version, naming the one spoken
        refused = await client.post("/v1/tus/", headers={"Upload-Length": "5"})
        assert refused.status_code == 412 and refused.headers["tus-version"] == "1.0.0"
        assert refused.headers["tus-resumable"] == "1.0.0"
        other = await client.post(
            "/v1/tus/", headers={"Tus-Resumable": "0.2.2", "Upload-Length": "5"}
        )
        assert other.status_code == 412
        # 413 past Tus-Max-Size, before anything is opened
        too_big = await create(client, 123 * MiB + 1)
        assert too_big.status_code == 413 and too_big.headers["tus-resumable"] == "1.0.0"
        # 404 for an unknown upload, with the header too
        unknown = await client.head("/v1/tus/0190b0c4-7d2a-7000-8000-000000000000", headers=TUS)
        assert unknown.status_code == 404 and unknown.headers["tus-resumable"] == "1.0.0"
        no_project = await client.post(
            "/v1/tus/",
            headers={**TUS, "Upload-Length": "5", "Upload-Metadata": metadata(filename="a.ok")},
        )
        assert no_project.status_code == 400
        assert no_project.json()["error"]["code"] == "project_required"


async def test_bodies_cut_anywhere_make_the_file_and_publish_it(
    tmp_path: Path, database_url: str
) -> None:
    data = b"first line\n" + os.urandom(17 * MiB + 12345)
    settings = settings_for(tmp_path, database_url)
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        made = await create(client, len(data), filetype="application/x-test", phase="design")
        assert made.status_code == 201, made.text
        location = made.headers["location"]
        assert location.startswith("/v1/tus/")
        assert made.headers["upload-offset"] == "0"
        expires = dt.datetime.strptime(made.headers["upload-expires"], "%a, %d %b %Y %H:%M:%S GMT")
        assert expires > dt.datetime.now() + dt.timedelta(hours=1)
        # pieces shorter than a part, across part boundaries, several parts at once, one byte
        cuts = [0, 3 * MiB, 3 * MiB + 1, 4 * MiB, 11 * MiB + 7, 16 * MiB, len(data) - 1, len(data)]
        for start, end in itertools.pairwise(cuts):
            head = await client.head(location, headers=TUS)
            assert head.status_code == 200
            assert head.headers["upload-offset"] == str(start)
            assert head.headers["upload-length"] == str(len(data))
            assert head.headers["cache-control"] == "no-store"
            sent = await patch(client, location, start, data[start:end])
            assert sent.status_code == 204, sent.text
            assert sent.headers["upload-offset"] == str(end)
            assert sent.headers["tus-resumable"] == "1.0.0"
        file_id = sent.headers["aecflow-file-id"]
        record = await poll(client, file_id, lambda b: b["status"] == "processed")
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["size"] == len(data) and record["project"] == "tower-a"
        assert record["filename"] == "model.ok" and record["metadata"] == {"phase": "design"}
        assert record["content_type"] == "application/x-test"
        assert (await client.get(f"/v1/files/{file_id}/content")).content == data
        # a HEAD after completion still answers the full offset (a resuming client is done)
        done = await client.head(location, headers=TUS)
        assert done.status_code == 200 and done.headers["upload-offset"] == str(len(data))
        assert done.headers["aecflow-file-id"] == file_id
        # the tail pieces are gone with the parts: only the published object is left
        assert [p.name for p in leftovers(tmp_path)] == [file_id]
        async with app.state.flow.engine.connect() as conn:
            actions = (await conn.execute(sa.select(audit_log.c.action))).scalars().all()
            assert await conn.scalar(sa.select(sa.func.count()).select_from(upload_parts)) == 0
        assert "upload.open" in actions and "upload.complete" in actions
        assert actions.count("upload.append") == len(cuts) - 1


async def test_status_codes_of_patch(tmp_path: Path, database_url: str) -> None:
    data = os.urandom(7 * MiB)
    settings = settings_for(tmp_path, database_url)
    async with (
        live_host(settings, plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        location = (await create(client, len(data))).headers["location"]
        ok = await patch(client, location, 0, data[: 2 * MiB])
        assert ok.status_code == 204
        # 409: the offset is not the upload's
        wrong = await patch(client, location, 0, data[:MiB])
        assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "offset_mismatch"
        assert wrong.headers["upload-offset"] == str(2 * MiB)
        # 413: past Upload-Length
        over = await patch(client, location, 2 * MiB, data[2 * MiB :] + b"x")
        assert over.status_code == 413
        # 415: not application/offset+octet-stream
        typed = await client.patch(
            location, content=b"x", headers={**TUS, "Upload-Offset": str(2 * MiB)}
        )
        assert typed.status_code == 415
        # 460: the body is not what Upload-Checksum says; nothing of it is kept, across a
        # part boundary too
        body = data[2 * MiB : 6 * MiB]
        bad = base64.b64encode(hashlib.sha256(body + b"!").digest()).decode()
        mismatch = await patch(
            client, location, 2 * MiB, body, **{"Upload-Checksum": f"sha256 {bad}"}
        )
        assert mismatch.status_code == 460, mismatch.text
        assert (await client.head(location, headers=TUS)).headers["upload-offset"] == str(2 * MiB)
        # 400: an algorithm the server does not speak
        md5 = await patch(client, location, 2 * MiB, body, **{"Upload-Checksum": "md5 AAAA"})
        assert md5.status_code == 400
        # the right checksums (sha256, then sha1) are accepted
        good = base64.b64encode(hashlib.sha256(body).digest()).decode()
        accepted = await patch(
            client, location, 2 * MiB, body, **{"Upload-Checksum": f"sha256 {good}"}
        )
        assert accepted.status_code == 204 and accepted.headers["upload-offset"] == str(6 * MiB)
        rest = data[6 * MiB :]
        sha1 = base64.b64encode(hashlib.sha1(rest).digest()).decode()
        last = await patch(client, location, 6 * MiB, rest, **{"Upload-Checksum": f"sha1 {sha1}"})
        assert last.status_code == 204
        record = await poll(
            client, last.headers["aecflow-file-id"], lambda b: b["status"] != "stored"
        )
        assert record["sha256"] == hashlib.sha256(data).hexdigest()


async def test_termination_and_expiry(tmp_path: Path, database_url: str) -> None:
    settings = settings_for(tmp_path, database_url, uploads={"session_ttl_s": 2})
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        location = (await create(client, 3 * MiB)).headers["location"]
        assert (await patch(client, location, 0, os.urandom(MiB))).status_code == 204
        gone = await client.delete(location, headers=TUS)
        assert gone.status_code == 204 and gone.headers["tus-resumable"] == "1.0.0"
        assert (await client.head(location, headers=TUS)).status_code == 404
        assert (await patch(client, location, MiB, b"x")).status_code == 404
        await app.state.flow.uploads.sweep()
        assert leftovers(tmp_path) == []  # the tail piece went with the session

        expiring = (await create(client, 3 * MiB)).headers["location"]
        assert (await patch(client, expiring, 0, b"x" * 1000)).status_code == 204
        app.state.flow.runtime.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
        assert (await client.head(expiring, headers=TUS)).status_code == 410
        assert (await patch(client, expiring, 1000, b"x")).status_code == 410


async def test_creation_with_upload_and_method_override(tmp_path: Path, database_url: str) -> None:
    data = os.urandom(6 * MiB + 5)
    settings = settings_for(tmp_path, database_url)
    async with (
        live_host(settings, plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        made = await client.post(
            "/v1/tus/",
            content=data[: 5 * MiB + 1],
            headers={
                **OCTETS,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": metadata(project="tower-a", name="scan.ok"),
            },
        )
        assert made.status_code == 201, made.text
        assert made.headers["upload-offset"] == str(5 * MiB + 1)
        finished = await client.post(
            made.headers["location"],
            content=data[5 * MiB + 1 :],
            headers={
                **OCTETS,
                "Upload-Offset": str(5 * MiB + 1),
                "X-HTTP-Method-Override": "PATCH",
            },
        )
        assert finished.status_code == 204, finished.text
        record = await poll(client, finished.headers["aecflow-file-id"], lambda b: True)
        assert record["filename"] == "scan.ok" and record["size"] == len(data)


async def test_cors_preflight_and_exposed_headers(tmp_path: Path, database_url: str) -> None:
    origin = "https://app.example.com"
    settings = settings_for(
        tmp_path, database_url, server={"cors_origins": [origin], "cors_max_age_s": 321}
    )
    async with (
        live_host(settings, plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        preflight = await client.options(
            "/v1/tus/",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": (
                    "authorization,tus-resumable,upload-length,upload-metadata"
                ),
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "PATCH" in preflight.headers["access-control-allow-methods"]
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "upload-metadata" in allowed
        assert preflight.headers["access-control-max-age"] == "321"
        made = await client.post(
            "/v1/tus/",
            headers={
                **TUS,
                "Origin": origin,
                "Upload-Length": "5",
                "Upload-Metadata": metadata(project="tower-a", filename="a.ok"),
            },
        )
        assert made.status_code == 201
        exposed = made.headers["access-control-expose-headers"].lower()
        assert {"location", "upload-offset", "tus-resumable"} <= set(
            exposed.replace(" ", "").split(",")
        )
        stranger = await client.options(
            "/v1/tus/",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert stranger.status_code == 400
        assert "access-control-allow-origin" not in stranger.headers


async def test_without_cors_origins_no_cors_headers(tmp_path: Path, database_url: str) -> None:
    async with (
        live_host(settings_for(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        answer = await client.options(
            "/v1/tus/",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in answer.headers


async def test_bearer_tokens_and_project_scope(tmp_path: Path, database_url: str) -> None:
    settings = settings_for(tmp_path, database_url, auth={"mode": "token"})
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        flow = app.state.flow
        _, writer = await flow.create_token(name="w", role=Role.WRITER, projects=["tower-a"])
        _, reader = await flow.create_token(name="r", role=Role.READER, projects=["tower-a"])
        missing = await create(client, 5)
        assert missing.status_code == 401 and missing.headers["tus-resumable"] == "1.0.0"
        auth = {"Authorization": f"Bearer {writer}"}
        client.headers.update(auth)
        other = await create(client, 5, project="tower-b")
        assert other.status_code == 404, other.text
        made = await create(client, 5)
        assert made.status_code == 201
        client.headers["Authorization"] = f"Bearer {reader}"
        refused = await patch(client, made.headers["location"], 0, b"12345")
        assert refused.status_code == 403
        client.headers.update(auth)
        sent = await patch(client, made.headers["location"], 0, b"12345")
        assert sent.status_code == 204


@pytest.mark.parametrize("length", [1, PART, PART + 1])
async def test_sizes_at_part_edges(tmp_path: Path, database_url: str, length: int) -> None:
    data = os.urandom(length)
    async with (
        live_host(settings_for(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        location = (await create(client, length)).headers["location"]
        sent = await patch(client, location, 0, data)
        assert sent.status_code == 204 and sent.headers["upload-offset"] == str(length)
        record = await poll(client, sent.headers["aecflow-file-id"], lambda b: True)
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
