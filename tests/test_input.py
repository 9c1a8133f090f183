"""Strings no response can encode: rows an older version stored with lone surrogates, and
processor errors holding NUL. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aecflow.client import AsyncClient
from aecflow.errors import InvalidInput
from aecflow.flow import Flow
from aecflow.jobs.worker import Worker
from aecflow.store.schema import jobs, outbox
from aecflow.streams import aiter_bytes

from . import engine_plugin
from .conftest import make_settings
from .live import live_host
from .test_cli import aecflow
from .test_host import PLUGINS, host_settings

#: The JSON text an older version wrote for metadata holding "\udc00" (``ensure_ascii``).
STORED_META = '{"phase": "x\\udc00"}'
#: SQLite's ``char(0xDC00)``: the bytes an older version's row could hold for "\udc00".
STORED_NAME = "'a' || char(56320) || '.ifc'"


async def test_rows_an_older_version_stored_with_lone_surrogates_can_be_read(
    tmp_path: Path, database_url: str
) -> None:
    """Such rows exist only on SQLite, whose text and JSON take them; PostgreSQL refuses them
    at write time (checked here), so there its half of the test is that refusal."""
    settings = host_settings(tmp_path, database_url, worker={"embedded": False})
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        record = (await client.post("/v1/projects/p1/files?filename=a.ifc", content=b"data")).json()
        session = (
            await client.post("/v1/projects/p1/uploads", json={"filename": "b.ifc", "size": 4})
        ).json()
        engine = app.state.flow.engine
        if engine.dialect.name == "postgresql":
            for sql in (
                "UPDATE files SET meta = CAST(:m AS jsonb)",
                "UPDATE uploads SET filename = 'a' || chr(56320)",
            ):
                with pytest.raises(sa.exc.DBAPIError):
                    async with engine.begin() as conn:
                        await conn.execute(sa.text(sql), {"m": STORED_META})
            return
        async with engine.begin() as conn:
            for table in ("files", "uploads"):
                await conn.execute(
                    sa.text(f"UPDATE {table} SET meta = :m, filename = {STORED_NAME}"),
                    {"m": STORED_META},
                )

        shown = {"phase": "x\ufffd"}
        sessions = await client.get("/v1/projects/p1/uploads")
        assert sessions.status_code == 200, sessions.text
        [item] = sessions.json()["items"]
        assert item["id"] == session["id"]
        assert item["filename"] == "a\ufffd.ifc" and item["metadata"] == shown
        one = await client.get(f"/v1/uploads/{session['id']}")
        assert one.status_code == 200, one.text
        listed = await client.get("/v1/projects/p1/files")
        assert listed.status_code == 200, listed.text
        assert listed.json()["items"][0]["filename"] == "a\ufffd.ifc"
        assert listed.json()["items"][0]["metadata"] == shown
        got = await client.get(f"/v1/files/{record['id']}")
        assert got.status_code == 200, got.text
        assert got.json()["filename"] == "a\ufffd.ifc" and got.json()["metadata"] == shown
        deleted = await client.delete(f"/v1/files/{record['id']}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["deleted_at"]
        audit = await client.get("/v1/audit")
        assert audit.status_code == 200, audit.text


async def test_a_processor_error_with_nul_and_surrogates_fails_the_file_readably(
    tmp_path: Path, database_url: str
) -> None:
    """PostgreSQL refuses NUL in text and JSON (and asyncpg cannot encode a lone surrogate):
    recording such an error as is left the file ``processing`` for ever."""
    settings = make_settings(
        tmp_path,
        database_url,
        processing={"max_attempts": 1},
        worker={"embedded": False},
        notifiers=[{"backend": "log"}],
    )
    async with Flow.open(settings, plugins=[("engine_plugin", engine_plugin)]) as flow:
        record = await flow.ingest("p1", "model.nul", aiter_bytes(b"data"))
        await Worker(flow.runtime).run_until_idle()
        done = await flow.get(record.id)
        async with flow.engine.connect() as conn:
            last_error = await conn.scalar(sa.select(jobs.c.last_error))
            payloads = (await conn.execute(sa.select(outbox.c.payload))).scalars().all()
    readable = "header names schema IFC\ufffd2X3 in file caf\ufffd.ifc"
    assert done.status == "failed", done.processing
    assert (done.processing["outcome"], done.processing["error"]) == ("invalid_input", readable)
    assert last_error == readable
    assert any(readable in json.dumps(payload, ensure_ascii=False) for payload in payloads)


class Recording(httpx.AsyncHTTPTransport):
    """A real transport that notes each request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return await super().handle_async_request(request)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"filename": "a\udc00.ifc"}, "invalid_filename"),
        ({"metadata": {"phase": "x\udc00"}}, "invalid_metadata"),
    ],
)
@pytest.mark.parametrize("size", [4, 3 * 1024 * 1024], ids=["streamed", "session"])
async def test_the_client_refuses_lone_surrogates_before_sending(
    tmp_path: Path, database_url: str, kwargs: dict, code: str, size: int
) -> None:
    path = tmp_path / "model.ifc"
    path.write_bytes(b"x" * size)
    transport = Recording()
    settings = host_settings(tmp_path, database_url, worker={"embedded": False})
    async with (
        live_host(settings, plugins=PLUGINS) as (url, _app),
        AsyncClient(url, stream_threshold=1024 * 1024, transport=transport) as client,
    ):
        with pytest.raises(InvalidInput) as refused:
            await client.upload(path, "p1", **kwargs)
        assert refused.value.code == code
        assert "not valid Unicode" in refused.value.message
    assert transport.sent == []


def test_the_cli_refuses_names_and_metadata_that_are_not_utf8(tmp_path: Path) -> None:
    """A name in bytes that are not UTF-8 reaches Python as a lone surrogate; nothing listens on
    the server given, so getting past the check would be exit 69, not 2."""
    name = os.fsdecode(b"caf\xff.ifc")
    (tmp_path / name).write_bytes(b"data")
    (tmp_path / "ok.ifc").write_bytes(b"data")
    server = ("--server", "http://127.0.0.1:9")
    for args in (
        ("upload", name, "--project", "demo", *server),
        ("upload", "ok.ifc", "--project", "demo", "--meta", "phase=" + name, *server),
        ("ingest", name, "--project", "demo", "--no-wait"),
        ("ingest", "ok.ifc", "--project", "demo", "--meta", "phase=" + name, "--no-wait"),
    ):
        result = aecflow(tmp_path, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "not valid Unicode" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
