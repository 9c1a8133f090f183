"""Host resource protection over real HTTP (issue 13): access before the body, body and header
deadlines, per-token caps, session quotas, the free-space reserve and forwarded addresses.

Slow clients are raw asyncio sockets against a live uvicorn host: few of them, each bounded by
``BOUND_S`` (a guard against hanging on a regression, not a timing assertion).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aecflow.actor import Role

from . import engine_plugin
from .conftest import make_settings
from .live import live_host, live_served

PLUGINS = [("engine_plugin", engine_plugin)]
BOUND_S = 20.0
MiB = 1024 * 1024


def limit_settings(tmp_path: Path, database_url: str, **overrides: object):
    return make_settings(
        tmp_path,
        database_url,
        notifiers=[{"backend": "log"}],
        worker={"embedded": False},
        **overrides,
    )


class Raw:
    """One HTTP/1.1 connection driven byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str) -> Raw:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of the next response (bounded wait)."""
        return await asyncio.wait_for(self._response(), BOUND_S)

    async def _response(self) -> tuple[int, dict[str, str], bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    async def closed(self) -> bool:
        """Whether the server closed the connection (EOF or reset; bounded wait)."""
        try:
            return await asyncio.wait_for(self.reader.read(1), BOUND_S) == b""
        except ConnectionError:
            return True

    def close(self) -> None:
        self.writer.transport.abort()


@contextlib.asynccontextmanager
async def raw_connections(url: str, count: int) -> AsyncIterator[list[Raw]]:
    links = [await Raw.connect(url) for _ in range(count)]
    try:
        yield links
    finally:
        for link in links:
            link.close()


def head(method: str, path: str, token: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", f"Authorization: Bearer {token}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def tokens(flow, **wanted: tuple[Role, list[str]]) -> dict[str, str]:
    return {
        name: (await flow.create_token(name=name, role=role, projects=projects))[1]
        for name, (role, projects) in wanted.items()
    }


async def wait_for_slots(app, active: int) -> None:
    """Until ``active`` uploads hold a slot (a condition, polled; bounded)."""
    async with asyncio.timeout(BOUND_S):
        while app.state.upload_slots.active != active:  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.01)


# -- 8: access before the body, body idle timeout, per-token cap ------------------------------


async def test_refused_uploads_are_answered_before_their_body_and_hold_no_slot(
    tmp_path: Path, database_url: str
) -> None:
    settings = limit_settings(tmp_path, database_url, uploads={"max_concurrent": 2})
    async with live_host(settings, plugins=PLUGINS) as (url, app):
        issued = await tokens(
            app.state.flow,
            writer=(Role.WRITER, ["a"]),
            other=(Role.READER, ["b"]),
            reader=(Role.READER, ["a"]),
        )
        boundary = "xyz"
        preamble = f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhal'
        async with raw_connections(url, 4) as links:
            for i, link in enumerate(links):  # the multipart preamble never ends
                token = issued["other" if i % 2 else "reader"]
                await link.send(
                    head(
                        "POST",
                        "/v1/projects/a/files",
                        token,
                        content_type=f"multipart/form-data; boundary={boundary}",
                        content_length="100000",
                    )
                    + preamble.encode()
                )
            answers = [await link.response() for link in links]
            assert [status for status, _, _ in answers] == [403, 404, 403, 404]
            assert json.loads(answers[1][2])["error"]["code"] == "project_not_found"
            assert app.state.upload_slots.active == 0
            async with httpx.AsyncClient(base_url=url) as client:
                ok = await client.post(
                    "/v1/projects/a/files?filename=real.bin",
                    content=b"real bytes",
                    headers={"Authorization": f"Bearer {issued['writer']}"},
                )
            assert ok.status_code == 201, ok.text
        denied = await app.state.flow.audit.search(action="file.upload", outcome="denied")
        assert len(denied["items"]) == 4


async def test_refused_parts_are_answered_before_their_body(
    tmp_path: Path, database_url: str
) -> None:
    settings = limit_settings(tmp_path, database_url, uploads={"max_concurrent": 1})
    async with live_host(settings, plugins=PLUGINS) as (url, app):
        issued = await tokens(
            app.state.flow, writer=(Role.WRITER, ["a"]), reader=(Role.READER, ["a"])
        )
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {issued['writer']}"}
        ) as client:
            opened = await client.post(
                "/v1/projects/a/uploads", json={"filename": "m.bin", "size": 10}
            )
            assert opened.status_code == 201, opened.text
            path = f"/v1/uploads/{opened.json()['id']}/parts/1"
            async with raw_connections(url, 2) as (writing, refused):
                # the writer's part holds the only slot; the reader is still told 403, not 503
                await writing.send(head("PUT", path, issued["writer"], content_length="10") + b"0")
                await wait_for_slots(app, 1)
                await refused.send(head("PUT", path, issued["reader"], content_length="10") + b"a")
                status, _, body = await refused.response()
                assert status == 403, body
                assert json.loads(body)["error"]["code"] == "forbidden"
                await writing.send(b"123456789")
                status, _, body = await writing.response()
                assert status == 200, body
            assert app.state.upload_slots.active == 0
        denied = await app.state.flow.audit.search(action="upload.part", outcome="denied")
        assert len(denied["items"]) == 1


async def test_a_stalled_body_gets_408_closes_and_frees_its_slot(
    tmp_path: Path, database_url: str
) -> None:
    settings = limit_settings(
        tmp_path, database_url, uploads={"max_concurrent": 1, "body_idle_timeout_s": 0.5}
    )
    async with live_host(settings, plugins=PLUGINS) as (url, app):
        issued = await tokens(app.state.flow, writer=(Role.WRITER, ["a"]))
        async with raw_connections(url, 1) as (link,):
            await link.send(
                head(
                    "POST",
                    "/v1/projects/a/files?filename=s.bin",
                    issued["writer"],
                    content_length="1000",
                )
                + b"x" * 10
            )
            status, headers, body = await link.response()
            assert status == 408
            assert json.loads(body)["error"]["code"] == "body_timeout"
            assert headers["connection"] == "close"
            assert await link.closed()
        assert app.state.upload_slots.active == 0
        async with httpx.AsyncClient(base_url=url) as client:
            ok = await client.post(
                "/v1/projects/a/files?filename=ok.bin",
                content=b"bytes",
                headers={"Authorization": f"Bearer {issued['writer']}"},
            )
        assert ok.status_code == 201
        kept = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
        assert len([p for p in kept if p.name != ".signing-key"]) == 1  # ok.bin, not s.bin


async def test_one_token_cannot_hold_every_upload_slot(tmp_path: Path, database_url: str) -> None:
    settings = limit_settings(
        tmp_path, database_url, uploads={"max_concurrent": 4, "max_concurrent_per_token": 1}
    )
    async with live_host(settings, plugins=PLUGINS) as (url, app):
        issued = await tokens(
            app.state.flow, greedy=(Role.WRITER, ["a"]), other=(Role.WRITER, ["a"])
        )
        async with raw_connections(url, 1) as (link,), httpx.AsyncClient(base_url=url) as client:
            await link.send(
                head(
                    "POST",
                    "/v1/projects/a/files?filename=slow.bin",
                    issued["greedy"],
                    content_length="10",
                )
                + b"01234"
            )
            await wait_for_slots(app, 1)

            def post(token: str, name: str):
                return client.post(
                    f"/v1/projects/a/files?filename={name}",
                    content=b"bytes",
                    headers={"Authorization": f"Bearer {issued[token]}"},
                )

            second = await post("greedy", "second.bin")
            assert second.status_code == 429 and second.headers["retry-after"]
            assert second.json()["error"]["code"] == "too_many_uploads_for_token"
            assert (await post("other", "other.bin")).status_code == 201
            await link.send(b"56789")
            status, _, body = await link.response()
            assert status == 201, body
            await wait_for_slots(app, 0)
            assert (await post("greedy", "third.bin")).status_code == 201


# -- 11: forwarded addresses and the failure limiter ------------------------------------------


@pytest.mark.parametrize("trusted", [False, True])
async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    tmp_path: Path, database_url: str, trusted: bool
) -> None:
    server = {"forwarded_allow_ips": ["127.0.0.1"]} if trusted else {}
    settings = limit_settings(
        tmp_path, database_url, auth={"failures_per_minute": 2}, server=server
    )
    async with live_served(settings, plugins=PLUGINS) as (url, app):
        async with httpx.AsyncClient(base_url=url) as client:
            codes = [
                (
                    await client.get(
                        "/ready",
                        headers={"Authorization": "Bearer wrong", "X-Forwarded-For": forged},
                    )
                ).status_code
                for forged in ("203.0.113.1", "203.0.113.2", "203.0.113.3")
            ]
        page = await app.state.flow.audit.search(action="auth.failed")
    sources = sorted(row["source_ip"] for row in page["items"])
    if trusted:  # each forwarded client is its own source
        assert codes == [401, 401, 401]
        assert sources == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    else:  # rotating the header neither hides the peer nor escapes the limiter
        assert codes == [401, 401, 429]
        assert sources == ["127.0.0.1", "127.0.0.1"]


async def test_a_limited_address_still_lets_a_valid_token_through(
    tmp_path: Path, database_url: str
) -> None:
    settings = limit_settings(tmp_path, database_url, auth={"failures_per_minute": 2})
    async with live_host(settings, plugins=PLUGINS) as (url, app):
        issued = await tokens(app.state.flow, reader=(Role.READER, ["a"]))
        async with httpx.AsyncClient(base_url=url) as client:

            async def ready(token: str | None) -> int:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return (await client.get("/ready", headers=headers)).status_code

            assert [await ready("wrong") for _ in range(3)] == [401, 401, 429]
            assert await ready(issued["reader"]) == 200
            assert await ready(None) == 429
            assert await ready("aecf_" + "x" * 43) == 429
            assert await ready(issued["reader"]) == 200
        page = await app.state.flow.audit.search(action="auth.failed")
    assert len(page["items"]) == 2  # refusals while limited are not written again


# -- 9: header size cap, header and keep-alive timeouts --------------------------------------


async def test_an_oversized_request_head_gets_431_and_costs_nothing_more(
    tmp_path: Path, database_url: str
) -> None:
    settings = limit_settings(tmp_path, database_url, server={"max_header_bytes": 8192})
    async with (
        live_served(settings, plugins=PLUGINS) as (url, _app),
        raw_connections(url, 3) as (big, fitting, reused),
    ):
        await big.send(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: ")
        with contextlib.suppress(ConnectionError):  # the server may close mid-send
            for _ in range(16):  # 1 MiB that the parser is never given
                await big.send(b"a" * (64 * 1024))
        status, headers, body = await big.response()
        assert status == 431
        assert json.loads(body)["error"]["code"] == "headers_too_large"
        assert headers["connection"] == "close"
        assert re.fullmatch("[0-9a-f]{32}", headers["x-request-id"])  # as the document says
        assert await big.closed()
        await fitting.send(
            b"GET /health HTTP/1.1\r\nHost: t\r\nX-Fits: " + b"a" * 4096 + b"\r\n\r\n"
        )
        assert (await fitting.response())[0] == 200
        for _ in range(3):  # keep-alive requests each get their own budget
            await reused.send(
                b"GET /health HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"b" * 6000 + b"\r\n\r\n"
            )
            assert (await reused.response())[0] == 200


async def test_a_slow_or_silent_connection_is_closed_at_the_header_timeout(
    tmp_path: Path, database_url: str
) -> None:
    settings = limit_settings(tmp_path, database_url, server={"header_timeout_s": 0.5})
    async with (
        live_served(settings, plugins=PLUGINS) as (url, _app),
        raw_connections(url, 3) as (slow, silent, served),
    ):
        await served.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (await served.response())[0] == 200
        await slow.send(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Drip: a")
        status, headers, body = await slow.response()
        assert status == 408 and headers["x-request-id"]
        assert json.loads(body)["error"]["code"] == "header_timeout"
        assert await slow.closed()
        assert await silent.closed()  # connected, never sent a byte
        assert await served.closed()  # then idle: closed again (keep-alive or header timer)


def test_serve_configures_uvicorn_from_the_server_settings(tmp_path: Path) -> None:
    from aecflow.host.server import GuardedHttpToolsProtocol, uvicorn_config

    settings = make_settings(
        tmp_path,
        "sqlite+aiosqlite://",
        server={"keep_alive_timeout_s": 2, "max_header_bytes": 4096, "header_timeout_s": 3},
    )
    config = uvicorn_config(object(), settings, host="127.0.0.1", port=0)
    assert config.timeout_keep_alive == 2
    assert config.h11_max_incomplete_event_size == 4096
    assert issubclass(config.http, GuardedHttpToolsProtocol)
    assert (config.http.max_header_bytes, config.http.header_timeout_s) == (4096, 3)
    assert config.proxy_headers is False


# -- 10: caps on open upload sessions, free-space reserve -------------------------------------


async def test_open_sessions_and_declared_bytes_are_capped_per_token_and_project(
    tmp_path: Path, database_url: str
) -> None:
    uploads = {
        "max_open_sessions_per_token": 2,
        "max_open_sessions_per_project": 3,
        "max_open_bytes_per_token": 100,
    }
    settings = limit_settings(tmp_path, database_url, uploads=uploads)
    async with live_host(settings, plugins=PLUGINS) as (url, app):
        issued = await tokens(
            app.state.flow, one=(Role.WRITER, ["a"]), two=(Role.WRITER, ["a", "b"])
        )
        async with httpx.AsyncClient(base_url=url) as client:

            async def open_one(token: str, size: int = 10, project: str = "a") -> httpx.Response:
                return await client.post(
                    f"/v1/projects/{project}/uploads",
                    json={"filename": "m.bin", "size": size},
                    headers={"Authorization": f"Bearer {issued[token]}"},
                )

            first = await open_one("one", 60)
            assert first.status_code == 201
            too_big = await open_one("one", 50)  # 110 bytes declared by this token
            assert too_big.status_code == 429
            assert too_big.json()["error"]["code"] == "upload_quota_exceeded"
            assert (await open_one("one")).status_code == 201
            third = await open_one("one")  # a third session of this token
            assert third.status_code == 429 and "this token" in third.json()["error"]["message"]
            assert (await open_one("two")).status_code == 201
            full = await open_one("two")  # the project's fourth
            assert full.status_code == 429 and "project 'a'" in full.json()["error"]["message"]
            assert (await open_one("two", project="b")).status_code == 201
            aborted = await client.delete(
                f"/v1/uploads/{first.json()['id']}",
                headers={"Authorization": f"Bearer {issued['one']}"},
            )
            assert aborted.status_code == 204
            assert (await open_one("one")).status_code == 201
        async with app.state.flow.engine.connect() as conn:
            import sqlalchemy as sa

            from aecflow.store.schema import uploads as table

            rows = await conn.scalar(sa.select(sa.func.count()).select_from(table))
    assert rows == 5  # refused sessions left nothing behind


async def test_local_storage_keeps_its_free_space_reserve(
    tmp_path: Path, database_url: str
) -> None:
    huge = 1 << 60  # more than any disk has free: every write would break the reserve
    storage = {"backend": "local", "root": str(tmp_path / "objects"), "min_free_bytes": huge}
    settings = limit_settings(tmp_path, database_url, storage=storage)
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        issued = await tokens(app.state.flow, writer=(Role.WRITER, ["a"]))
        client.headers["Authorization"] = f"Bearer {issued['writer']}"
        streamed = await client.post("/v1/projects/a/files?filename=f.bin", content=b"x" * 1000)
        assert streamed.status_code == 507, streamed.text
        assert streamed.json()["error"]["code"] == "insufficient_storage"

        async def unsized():  # no Content-Length: refused at the first block instead
            yield b"y" * 1000

        chunked = await client.post("/v1/projects/a/files?filename=g.bin", content=unsized())
        assert chunked.status_code == 507
        opened = await client.post("/v1/projects/a/uploads", json={"filename": "m", "size": 10})
        part = await client.put(f"/v1/uploads/{opened.json()['id']}/parts/1", content=b"0" * 10)
        assert part.status_code == 507
        assert part.json()["error"]["code"] == "insufficient_storage"
        breaker = (await client.get("/ready")).json()["breakers"]
        assert {b["name"]: b["state"] for b in breaker}["storage"] == "closed"
    stored = [p for p in (tmp_path / "objects" / "objects").rglob("*") if p.is_file()]
    assert stored == []
