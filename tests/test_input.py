"""Odd input on every entry point: refused with a 4xx JSON error, never a 500 or a stored row
that later breaks reads. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from aecflow.client import AsyncClient
from aecflow.db.schema import jobs, outbox, uploads
from aecflow.errors import InvalidInput
from aecflow.flow import Flow
from aecflow.records import MAX_ERROR_CHARS
from aecflow.streams import aiter_bytes
from aecflow.worker import Worker

from .conftest import SAMPLES, make_settings
from .live import live_host
from .test_cli import aecflow
from .test_host import PLUGINS, file_rows, host_settings, leftovers

#: What a JSON body carries for a lone surrogate; ``json.loads`` turns it into ``"\udc00"``.
SURROGATE_JSON = "\\udc00"


def settings_for(tmp_path: Path, database_url: str, **overrides: object):
    return host_settings(tmp_path, database_url, worker={"embedded": False}, **overrides)


async def one_chunk():
    yield b"data"


async def session_rows(flow: Flow) -> int:
    async with flow.engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(uploads))


# -- 4. lone surrogates in filenames and metadata -----------------------------------------------


@pytest.mark.parametrize(
    ("filename", "metadata", "code"),
    [
        ("a\udc00.ifc", None, "invalid_filename"),
        ("a.ifc", {"phase": "x\udc00"}, "invalid_metadata"),
    ],
)
async def test_the_python_api_refuses_lone_surrogates(
    flow: Flow, filename: str, metadata: dict | None, code: str
) -> None:
    with pytest.raises(InvalidInput) as ingest:
        await flow.ingest("p1", filename, one_chunk(), metadata=metadata)
    assert ingest.value.code == code
    with pytest.raises(InvalidInput) as session:
        await flow.uploads.open("p1", filename, 4, metadata=metadata)
    assert session.value.code == code
    assert await file_rows(flow) == 0 and await session_rows(flow) == 0


async def test_sessions_with_lone_surrogates_get_400_and_are_not_stored(
    tmp_path: Path, database_url: str
) -> None:
    bodies = [
        (f'{{"filename": "a{SURROGATE_JSON}.ifc", "size": 4}}', "invalid_filename"),
        (
            f'{{"filename": "a.ifc", "size": 4, "metadata": {{"k": "{SURROGATE_JSON}"}}}}',
            "invalid_metadata",
        ),
        (f'{{"filename": "a.ifc", "size": 4, "x{SURROGATE_JSON}": 1}}', "invalid_json"),
    ]
    async with (
        live_host(settings_for(tmp_path, database_url), plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        for body, code in bodies:
            response = await client.post(
                "/v1/projects/p1/uploads",
                content=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 400, (body, response.text)
            assert response.json()["error"]["code"] == code
        listed = await client.get("/v1/projects/p1/uploads")
        assert listed.status_code == 200 and listed.json() == {"items": []}
        assert await session_rows(app.state.flow) == 0


async def test_the_client_refuses_lone_surrogates_before_sending(
    tmp_path: Path, database_url: str
) -> None:
    path = tmp_path / "model.ifc"
    path.write_bytes(b"data")
    async with (
        live_host(settings_for(tmp_path, database_url), plugins=PLUGINS) as (url, app),
        AsyncClient(url) as client,
    ):
        with pytest.raises(InvalidInput) as name:
            await client.upload(path, "p1", filename="a\udc00.ifc")
        assert name.value.code == "invalid_filename"
        with pytest.raises(InvalidInput) as meta:
            await client.upload(path, "p1", {"phase": "\udc00"})
        assert meta.value.code == "invalid_metadata"
        assert await file_rows(app.state.flow) == 0


def test_the_cli_refuses_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xff.ifc")  # undecodable bytes arrive as a lone surrogate
    (tmp_path / name).write_bytes(b"data")
    result = aecflow(tmp_path, "ingest", name, "--project", "demo", "--no-wait")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "not valid Unicode" in result.stderr and "Traceback" not in result.stderr
    upload = aecflow(tmp_path, "upload", name, "--project", "demo")
    assert upload.returncode == 2, (upload.stdout, upload.stderr)
    assert "not valid Unicode" in upload.stderr and "Traceback" not in upload.stderr


async def test_rows_an_older_version_stored_with_lone_surrogates_can_be_read(
    tmp_path: Path, database_url: str
) -> None:
    """Such rows exist only on SQLite, whose JSON is text: PostgreSQL's JSONB refuses them."""
    stored_meta = f'{{"phase": "x{SURROGATE_JSON}"}}'
    async with (
        live_host(settings_for(tmp_path, database_url), plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        record = (await client.post("/v1/projects/p1/files?filename=a.ifc", content=b"data")).json()
        session = (
            await client.post("/v1/projects/p1/uploads", json={"filename": "b.ifc", "size": 4})
        ).json()
        engine = app.state.flow.engine
        if engine.dialect.name == "postgresql":
            with pytest.raises(sa.exc.DBAPIError, match="invalid input syntax for type json"):
                async with engine.begin() as conn:
                    await conn.execute(
                        sa.text("UPDATE files SET meta = CAST(:m AS jsonb)"), {"m": stored_meta}
                    )
            return
        async with engine.begin() as conn:  # as the JSON text an older version wrote
            await conn.execute(sa.text("UPDATE files SET meta = :m"), {"m": stored_meta})
            await conn.execute(sa.text("UPDATE uploads SET meta = :m"), {"m": stored_meta})

        shown = {"phase": "x\ufffd"}
        listed = await client.get("/v1/projects/p1/files")
        assert listed.status_code == 200 and listed.json()["items"][0]["metadata"] == shown
        got = await client.get(f"/v1/files/{record['id']}")
        assert got.status_code == 200 and got.json()["metadata"] == shown
        sessions = await client.get("/v1/projects/p1/uploads")
        assert sessions.status_code == 200, sessions.text
        assert [item["id"] for item in sessions.json()["items"]] == [session["id"]]
        assert (await client.get(f"/v1/uploads/{session['id']}")).status_code == 200
        deleted = await client.delete(f"/v1/files/{record['id']}")
        assert deleted.status_code == 200 and deleted.json()["metadata"] == shown
        assert (await client.get("/v1/audit")).status_code == 200
        assert json.loads((await client.get(f"/v1/files/{record['id']}")).text)["deleted_at"]


def multipart(filename: bytes, field: bytes = b"design") -> tuple[bytes, dict[str, str]]:
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="meta.phase"\r\n\r\n' + field + b"\r\n"
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"\r\ndata\r\n--xyz--\r\n"
    )
    return body, {"Content-Type": "multipart/form-data; boundary=xyz"}


NOT_UTF8 = [
    pytest.param("?filename=caf%FF.ifc", {}, b"data", "invalid_filename", id="?filename="),
    pytest.param(
        "?filename=a.ifc&meta.phase=%ED%B3%80", {}, b"data", "invalid_metadata", id="?meta."
    ),
    pytest.param(
        "",
        {"Content-Disposition": b'attachment; filename="caf\xff.ifc"'},
        b"data",
        "invalid_filename",
        id="filename= bytes",
    ),
    pytest.param(
        "",
        {"Content-Disposition": "attachment; filename*=UTF-8''caf%FF.ifc"},
        b"data",
        "invalid_filename",
        id="filename* bytes",
    ),
    pytest.param(
        "",
        {"Content-Disposition": "attachment; filename=a.ifc", "X-Aecflow-Meta-Phase": "%ED%B3%80"},
        b"data",
        "invalid_metadata",
        id="meta header",
    ),
    pytest.param(
        "",
        multipart(b"caf\xff.ifc")[1],
        multipart(b"caf\xff.ifc")[0],
        "invalid_filename",
        id="form filename",
    ),
    pytest.param(
        "",
        multipart(b"a.ifc", b"\xff")[1],
        multipart(b"a.ifc", b"\xff")[0],
        "invalid_metadata",
        id="form field",
    ),
]


@pytest.mark.parametrize(("query", "headers", "body", "code"), NOT_UTF8)
async def test_names_and_metadata_that_are_not_utf8_are_refused(
    tmp_path: Path, database_url: str, query: str, headers: dict, body: bytes, code: str
) -> None:
    async with (
        live_host(settings_for(tmp_path, database_url), plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.post(f"/v1/projects/p1/files{query}", content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == code
        assert await file_rows(app.state.flow) == 0
    assert leftovers(tmp_path) == []


# -- 5. the remaining 500s: each is a 4xx JSON error ----------------------------------------------

HUGE = "9" * 5000


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    async with (
        live_host(settings_for(tmp_path, database_url), plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield client, app


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


DATA = b"0123456789"


async def stored(client: httpx.AsyncClient) -> tuple[str, str]:
    """A stored file's id and its storage_local signed URL."""
    record = (await client.post("/v1/projects/p1/files?filename=a.bin", content=DATA)).json()
    download = await client.get(f"/v1/files/{record['id']}/download", follow_redirects=False)
    return record["id"], download.headers["location"]


async def test_signed_urls_with_odd_expires_are_403(tmp_path: Path, database_url: str) -> None:
    async with serving(tmp_path, database_url) as (client, _):
        _, location = await stored(client)
        assert (await client.get(location)).content == DATA
        for expires in ("\u00b2", HUGE, ""):
            fetched = await client.get(httpx.URL(location).copy_set_param("expires", expires))
            refused(fetched, 403, "invalid_signature")


RANGES = [
    pytest.param(f"bytes=0-{HUGE}", 206, DATA, id="last beyond any size"),
    pytest.param(f"bytes=-{HUGE}", 206, DATA, id="suffix beyond any size"),
    pytest.param(f"bytes=3-{'0' * 5000}7", 206, DATA[3:8], id="leading zeros"),
    pytest.param(f"bytes={HUGE}-", 416, None, id="first beyond any size"),
    pytest.param("bytes=5-3", 200, DATA, id="last before first: invalid, ignored"),
    pytest.param("bytes=10-", 416, None, id="first at the end: unsatisfiable"),
    pytest.param("bytes=\u00b2-".encode("latin-1"), 200, DATA, id="superscript digit"),
]


@pytest.mark.parametrize(("header", "status", "body"), RANGES)
async def test_ranges_with_huge_or_odd_numbers(
    tmp_path: Path, database_url: str, header: str | bytes, status: int, body: bytes | None
) -> None:
    async with serving(tmp_path, database_url) as (client, _):
        file_id, location = await stored(client)
        for url in (f"/v1/files/{file_id}/content", location):
            response = await client.get(url, headers={"Range": header})
            assert response.status_code == status, (url, response.text)
            if body is not None:
                assert response.content == body


async def test_part_numbers_that_are_no_small_whole_number_get_400(
    tmp_path: Path, database_url: str
) -> None:
    async with serving(tmp_path, database_url) as (client, _):
        opened = await client.post("/v1/projects/p1/uploads", json={"filename": "b", "size": 4})
        parts = f"/v1/uploads/{opened.json()['id']}/parts"
        for number in (HUGE, "0", "\u00b2", "x"):
            refused(
                await client.put(f"{parts}/{number}", content=b"data"), 400, "invalid_part_number"
            )
        assert (await client.put(f"{parts}/1", content=b"data")).status_code == 200


async def test_json_nested_too_deep_gets_400(tmp_path: Path, database_url: str) -> None:
    deep = b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    async with serving(tmp_path, database_url) as (client, app):
        refused(await client.post("/v1/projects/p1/uploads", content=deep), 400, "invalid_json")
        assert await session_rows(app.state.flow) == 0


async def test_a_multipart_boundary_over_256_characters_gets_400(
    tmp_path: Path, database_url: str
) -> None:
    boundary = "b" * 300
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\n'
        f"data\r\n--{boundary}--\r\n"
    ).encode()
    async with serving(tmp_path, database_url) as (client, app):
        posted = await client.post(
            "/v1/projects/p1/files",
            content=form,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        refused(posted, 400, "invalid_multipart")
        assert await file_rows(app.state.flow) == 0


async def test_cursors_that_decode_to_no_id_get_400(tmp_path: Path, database_url: str) -> None:
    nul = base64.urlsafe_b64encode(b"\0" * 36).decode()  # PostgreSQL refuses NULs in text
    async with serving(tmp_path, database_url) as (client, _):
        for path in ("/v1/projects/p1/files", "/v1/audit", "/v1/events/dead"):
            refused(await client.get(path, params={"cursor": nul}), 400, "invalid_cursor")


# -- 6. Content-Disposition filename* (RFC 6266) --------------------------------------------------


@pytest.mark.parametrize(
    "disposition",
    [
        "attachment; filename*=UTF-8''caf%C3%A9.ifc",
        "attachment; filename=\"cafe.ifc\"; filename*=UTF-8''caf%C3%A9.ifc",
        "attachment; filename*=utf-8''caf%C3%A9.ifc; filename=\"cafe.ifc\"",
        "attachment; FILENAME*=ISO-8859-1'fr'caf%E9.ifc",
    ],
)
async def test_content_disposition_filename_star_wins(
    tmp_path: Path, database_url: str, disposition: str
) -> None:
    async with serving(tmp_path, database_url) as (client, _):
        response = await client.post(
            "/v1/projects/p1/files", content=b"data", headers={"Content-Disposition": disposition}
        )
        assert response.status_code == 201, response.text
        assert response.json()["filename"] == "caf\u00e9.ifc"
        content = await client.get(f"/v1/files/{response.json()['id']}/content")
        assert "filename*=UTF-8''caf%C3%A9.ifc" in content.headers["content-disposition"]


# -- 7. a processor's error text is capped ---------------------------------------------------------


@pytest.mark.skipif(not SAMPLES.exists(), reason=f"no samples at {SAMPLES}")
async def test_a_900_kb_processor_error_is_cut_to_a_few_kb(tmp_path: Path, database_url: str):
    """A real model whose FILE_SCHEMA names a 900 KB schema: the IFC processor quotes it."""
    model = (SAMPLES / "IfcOpenHouse_IFC4.ifc").read_bytes()
    schema = b"IFC4" + b"X" * 900_000 + b"\0\xed\xb3\x80"  # with a NUL and a lone surrogate
    model = model.replace(b"FILE_SCHEMA(('IFC4'));", b"FILE_SCHEMA(('" + schema + b"'));", 1)
    async with Flow.open(make_settings(tmp_path, database_url)) as flow:
        record = await flow.ingest("p1", "house.ifc", aiter_bytes(model))
        await Worker(flow).run_until_idle(include_retries=True)
        done = await flow.get(record.id)
        async with flow.engine.connect() as conn:
            payloads = (await conn.execute(sa.select(outbox.c.payload))).scalars().all()
            last_error = await conn.scalar(sa.select(jobs.c.last_error))
    error = done.processing["error"]
    assert (done.status, done.processing["outcome"]) == ("failed", "invalid_input")
    assert error.startswith("IFC4XXX") and len(error) <= MAX_ERROR_CHARS
    assert error.endswith("characters in all]") and "cut" in error
    assert last_error == error
    assert all(len(json.dumps(payload)) < 3 * MAX_ERROR_CHARS for payload in payloads)
    failed = [p["file"] for p in payloads if p["type"] == "file.processing_failed"]
    assert [file["processing"]["error"] for file in failed] == [error]
