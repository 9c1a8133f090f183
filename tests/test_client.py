"""aecflow.client and `aecflow upload` / `aecflow status`: against the real host over HTTP
(SQLite and PostgreSQL), plus a scripted fake for what the local host cannot show (parts sent
straight to S3 on another origin, retries, expired presigned URLs)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina

from aecflow.actor import Role
from aecflow.client import AsyncClient, ChecksumMismatch, Client, ClientError, Progress
from aecflow.parts import choose_part_size, part_ranges

from . import engine_plugin
from .conftest import make_settings
from .live import live_host

MiB = 1024 * 1024
PART = 5 * MiB
PLUGINS = [("engine_plugin", engine_plugin)]


def host_settings(tmp_path: Path, database_url: str, auth: str = "none"):
    return make_settings(
        tmp_path,
        database_url,
        worker={"embedded": True, "poll_interval_s": 0.05},
        auth={"mode": auth},
    )


class Counting(httpx.AsyncBaseTransport):
    """A real transport that remembers every request (method, path) it carried."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def part_numbers(self) -> list[int]:
        return sorted(int(p.rsplit("/", 1)[1]) for m, p in self.seen if m == "PUT")


def write(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def open_session(
    http: httpx.AsyncClient, data: bytes, filename: str, part_size: int, **metadata: str
):
    opening = {"filename": filename, "size": len(data), "sha256": sha(data), "metadata": metadata}
    response = await http.post("/v1/projects/demo/uploads", json=opening | {"part_size": part_size})
    assert response.status_code == 201, response.text
    return response.json()


async def put_part(http: httpx.AsyncClient, session: dict, data: bytes, number: int) -> None:
    size = session["part_size"]
    body = data[(number - 1) * size : number * size]
    response = await http.put(f"/v1/uploads/{session['id']}/parts/{number}", content=body)
    assert response.status_code == 200, response.text


# -- against the real host -----------------------------------------------------------------


async def test_a_small_file_goes_in_one_streamed_request(tmp_path: Path, database_url: str):
    data = write(tmp_path / "notes.ok", 300_000)
    transport = Counting()
    seen: list[Progress] = []
    async with (
        live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        AsyncClient(url, transport=transport) as client,
    ):
        record = await client.upload(
            tmp_path / "notes.ok", "demo", {"phase": "design 100%"}, progress=seen.append
        )
        assert transport.seen == [("POST", "/v1/projects/demo/files")]
        assert record["sha256"] == sha(data) and record["size"] == len(data)
        assert record["metadata"] == {"phase": "design 100%"}
        done = await client.wait(record["id"], timeout=30, poll=0.05)
        assert done["status"] == "processed"
        assert done["processing"]["result"]["bytes"] == len(data)
        assert (await client.status(record["id"]))["id"] == record["id"]
        with pytest.raises(ClientError) as missing:
            await client.status("0" * 32)
        assert missing.value.status == 404 and missing.value.code == "file_not_found"
    assert seen[-1] == Progress("notes.ok", len(data), len(data), "done", len(data))
    assert next(p.phase for p in seen) == "hashing"


async def test_a_large_file_goes_in_parts_and_arrives_intact(tmp_path: Path, database_url: str):
    data = write(tmp_path / "model.ok", 12 * MiB + 123)
    transport = Counting()
    seen: list[Progress] = []
    async with (
        live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        AsyncClient(url, part_size=PART, stream_threshold=PART, transport=transport) as client,
    ):
        record = await client.upload(
            tmp_path / "model.ok",
            "demo",
            {"phase": "design"},
            content_type="application/x-test",
            filename="tower.ok",
            progress=seen.append,
        )
        assert transport.part_numbers() == [1, 2, 3]
        assert ("POST", "/v1/projects/demo/uploads") in transport.seen
        assert record["sha256"] == sha(data) and record["filename"] == "tower.ok"
        assert record["metadata"] == {"phase": "design"}
        assert record["content_type"] == "application/x-test"
        async with httpx.AsyncClient(base_url=url) as http:
            content = await http.get(f"/v1/files/{record['id']}/content")
        assert content.content == data
        done = await client.wait(record["id"], timeout=30, poll=0.05)
        assert done["processing"]["result"]["bytes"] == len(data)
    phases = [p.phase for p in seen]
    assert phases[0] == "hashing" and phases[-2:] == ["completing", "done"]
    assert seen[-1].sent == seen[-1].total == len(data)
    sent = [p.sent for p in seen if p.phase == "uploading"]
    assert sent == sorted(sent) and sent[0] == 0 and sent[-1] == len(data)
    assert max(p.hashed for p in seen) == len(data)


async def test_resume_sends_only_the_missing_parts(tmp_path: Path, database_url: str):
    data = write(tmp_path / "model.ok", 3 * PART - 1000)
    async with (
        live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as http,
    ):
        session = await open_session(http, data, "model.ok", PART)
        await put_part(http, session, data, 1)
        await put_part(http, session, data, 3)
        transport = Counting()
        seen: list[Progress] = []
        async with AsyncClient(
            url, part_size=PART, stream_threshold=PART, transport=transport
        ) as client:
            record = await client.upload(tmp_path / "model.ok", "demo", progress=seen.append)
        assert transport.part_numbers() == [2]
        assert ("POST", "/v1/projects/demo/uploads") not in transport.seen
        uploading = [p.sent for p in seen if p.phase == "uploading"]
        assert uploading == [len(data) - PART, len(data)]  # starts at what the server had
        assert {(p.resumed_parts, p.parts) for p in seen if p.phase == "uploading"} == {(2, 3)}
        finished = (await http.get(f"/v1/uploads/{session['id']}")).json()
        assert finished["status"] == "completed" and finished["file_id"] == record["id"]
        assert (await http.get(f"/v1/files/{record['id']}/content")).content == data

        # --no-resume: a new session, every part, even when an open one exists
        other = await open_session(http, data, "model.ok", PART)
        await put_part(http, other, data, 1)
        transport = Counting()
        async with AsyncClient(
            url, part_size=PART, stream_threshold=PART, transport=transport
        ) as client:
            again = await client.upload(tmp_path / "model.ok", "demo", resume=False)
        assert transport.part_numbers() == [1, 2, 3]
        assert ("GET", "/v1/projects/demo/uploads") not in transport.seen
        assert again["id"] != record["id"] and again["sha256"] == sha(data)

        # other metadata: another upload, not the continuation of that session
        transport = Counting()
        async with AsyncClient(
            url, part_size=PART, stream_threshold=PART, transport=transport
        ) as client:
            third = await client.upload(tmp_path / "model.ok", "demo", {"phase": "built"})
        assert transport.part_numbers() == [1, 2, 3] and third["metadata"] == {"phase": "built"}
        still = (await http.get(f"/v1/uploads/{other['id']}")).json()
        assert still["status"] == "open" and still["parts_received"] == 1


CHILD = """
import os, signal, sys
from aecflow.client import Client

def progress(p):
    if p.phase == "uploading" and p.sent >= {part}:
        os.kill(os.getpid(), signal.SIGKILL)  # mid-upload: another part is on the wire

with Client(sys.argv[1], part_size={part}, stream_threshold={part}, part_concurrency=2) as c:
    c.upload(sys.argv[2], "demo", progress=progress)
print("not killed")
"""


async def test_a_killed_client_resumes_where_it_stopped(tmp_path: Path, database_url: str):
    data = write(tmp_path / "model.ok", 4 * PART - 4321)
    async with (
        live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as http,
    ):
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD.format(part=PART),
            url,
            str(tmp_path / "model.ok"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(child.communicate(), 120)
        assert child.returncode == -signal.SIGKILL, (out, err)

        found = (await http.get("/v1/projects/demo/uploads", params={"sha256": sha(data)})).json()
        [summary] = found["items"]
        state = (await http.get(f"/v1/uploads/{summary['id']}")).json()
        missing = [p["number"] for p in state["parts"] if not p["received"]]
        assert 0 < len(missing) < 4, state
        assert state["bytes_received"] == len(data) - sum(
            p["size"] for p in state["parts"] if not p["received"]
        )

        transport = Counting()
        seen: list[Progress] = []
        async with AsyncClient(
            url, part_size=PART, stream_threshold=PART, transport=transport
        ) as client:
            record = await client.upload(tmp_path / "model.ok", "demo", progress=seen.append)
        # Only missing parts go over the wire. A part whose bytes had all arrived when the
        # client was killed may still be recorded after ``state`` was read, so the resume can
        # find one part fewer missing than ``state`` did, never one more.
        sent = transport.part_numbers()
        assert sent and set(sent) <= set(missing), (sent, missing)
        kept = sum(p["size"] for p in state["parts"] if p["number"] not in sent)
        assert next(p.sent for p in seen if p.phase == "uploading") == kept
        assert record["sha256"] == sha(data)
        assert (await http.get(f"/v1/files/{record['id']}/content")).content == data
        assert (await http.get(f"/v1/uploads/{summary['id']}")).json()["file_id"] == record["id"]


async def test_the_sync_client(tmp_path: Path, database_url: str):
    small = write(tmp_path / "small.ok", 1000)
    large = write(tmp_path / "large.ok", 2 * PART + 1)

    def use(url: str) -> tuple[dict, dict, set[int]]:
        threads: set[int] = set()
        with Client(url, part_size=PART, stream_threshold=PART) as client:
            one = client.upload(tmp_path / "small.ok", "demo")
            two = client.upload(
                tmp_path / "large.ok", "demo", progress=lambda p: threads.add(threading.get_ident())
            )
            assert client.status(one["id"])["sha256"] == sha(small)
            return client.wait(one["id"], timeout=30, poll=0.05), two, threads

    async with live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _):
        one, two, threads = await asyncio.to_thread(use, url)
    assert one["status"] == "processed"
    assert two["sha256"] == sha(large) and two["size"] == len(large)
    assert len(threads) == 1 and threading.get_ident() not in threads  # the caller's thread


# -- the command line -------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


async def aecflow(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """`python -m aecflow ARGS` without blocking the loop the live host runs in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AECFLOW_")} | env
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aecflow",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def last_bars(stderr: str) -> dict[str, str]:
    """The last rendered state of every tqdm bar, by its label."""
    last: dict[str, str] = {}
    for segment in re.split(r"[\r\n]", ANSI.sub("", stderr)):
        label, sep, rest = segment.partition(":")
        if sep and "%|" in rest:
            last[label.strip()] = segment
    return last


async def test_cli_upload_shows_every_file_reaching_100_percent(tmp_path: Path, database_url: str):
    small = write(tmp_path / "small.ok", 200_000)
    large = write(tmp_path / "large.ok", 64 * MiB + 5)  # over the streaming threshold: 5 parts
    async with (
        live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _),
        httpx.AsyncClient(base_url=url) as http,
    ):
        session = await open_session(http, large, "large.ok", 16 * MiB, phase="design")
        await put_part(http, session, large, 1)
        await put_part(http, session, large, 2)

        code, out, err = await aecflow(
            tmp_path,
            "upload",
            "small.ok",
            "large.ok",
            "-p",
            "demo",
            "--server",
            url,
            "--meta",
            "phase=design",
            "--parallel",
            "3",
        )
        assert code == 0, err
        bars = last_bars(err)
        assert set(bars) == {"small.ok", "large.ok"}, err
        assert all("100%" in bar for bar in bars.values()), bars
        assert "67.1M/67.1M" in bars["large.ok"], bars  # MB like the summary's MB/s, not MiB
        assert "large.ok: resuming, 2 of 5 parts already on the server" in err
        assert "small.ok: resuming" not in err
        lines = out.splitlines()
        assert lines[-1] == "2 uploaded, 0 failed"
        by_name = {line.split()[-1]: line.split() for line in lines[:-1]}
        assert by_name["small.ok"][3] == sha(small)[:12]
        assert by_name["large.ok"][2] == str(len(large))
        assert by_name["large.ok"][5] == "MB/s"
        resumed = (await http.get(f"/v1/uploads/{session['id']}")).json()
        assert resumed["file_id"] == by_name["large.ok"][0]
        content = await http.get(f"/v1/files/{resumed['file_id']}/content")
        assert content.content == large

        code, out, err = await aecflow(
            tmp_path, "status", by_name["small.ok"][0], "--server", url, "--wait", "--timeout", "60"
        )
        assert code == 0, err
        assert re.search(r"^status\s+processed$", out, re.M) and "succeeded" in out


async def test_cli_upload_json_wait_and_status_of_a_failure(tmp_path: Path, database_url: str):
    write(tmp_path / "plain.xyz", 10)  # no processor for .xyz: skipped
    (tmp_path / "broken.bad").write_bytes(b"not a model\n")  # refused by its processor
    async with live_host(host_settings(tmp_path, database_url), plugins=PLUGINS) as (url, _):
        code, out, err = await aecflow(
            tmp_path, "upload", "plain.xyz", "broken.bad", "-p", "demo", "--server", url,
            "--json", "--wait",
        )  # fmt: skip
        assert code == 1, err  # --wait: a processing failure is a failure
        result = json.loads(out)
        assert result["failed"] == []
        outcomes = {r["filename"]: r["processing"]["outcome"] for r in result["uploaded"]}
        assert outcomes == {"plain.xyz": "skipped", "broken.bad": "invalid_input"}
        ids = {r["filename"]: r["id"] for r in result["uploaded"]}

        code, out, err = await aecflow(
            tmp_path, "upload", "plain.xyz", "broken.bad", "-p", "demo", "--server", url, "--wait"
        )
        assert code == 1, err
        assert out.splitlines()[-1] == "2 uploaded, 0 failed, 1 failed processing"
        assert re.search(r"^error: broken\.bad: processing invalid_input: \S", err, re.M), err
        assert "error: plain.xyz" not in err

        code, out, err = await aecflow(tmp_path, "status", ids["plain.xyz"], "--server", url)
        assert code == 0 and "skipped" in out, err
        code, out, err = await aecflow(
            tmp_path, "status", ids["broken.bad"], "--server", url, "--json"
        )
        assert code == 1 and json.loads(out)["processing"]["outcome"] == "invalid_input"
        code, out, err = await aecflow(tmp_path, "status", "0" * 32, "--server", url)
        assert code == 3 and "error:" in err


async def test_tokens_go_to_the_host_only_and_from_the_environment(
    tmp_path: Path, database_url: str
):
    data = write(tmp_path / "model.ok", 2 * PART + 1)
    async with live_host(host_settings(tmp_path, database_url, auth="token"), plugins=PLUGINS) as (
        url,
        app,
    ):
        _, writer = await app.state.flow.create_token(name="w", role=Role.WRITER, projects=["demo"])
        _, reader = await app.state.flow.create_token(name="r", role=Role.READER, projects=["demo"])
        options = {"part_size": PART, "stream_threshold": PART}
        async with AsyncClient(url, writer, **options) as client:  # parts on the host: bearer
            record = await client.upload(tmp_path / "model.ok", "demo")
        assert record["sha256"] == sha(data)
        for token in (None, reader):
            async with AsyncClient(url, token, **options) as client:
                with pytest.raises(ClientError) as refused:
                    await client.upload(tmp_path / "model.ok", "demo")
            assert refused.value.status == (403 if token else 401)

        code, out, err = await aecflow(
            tmp_path, "upload", "model.ok", "-p", "demo", AECFLOW_SERVER=url, AECFLOW_TOKEN=writer
        )
        assert code == 0 and out.splitlines()[-1] == "1 uploaded, 0 failed", err
        code, out, err = await aecflow(
            tmp_path, "upload", "model.ok", "-p", "demo", AECFLOW_SERVER=url, AECFLOW_TOKEN=reader
        )
        assert code == 77 and "writer role" in err, (out, err)


async def test_cli_errors(tmp_path: Path):
    write(tmp_path / "a.ok", 10)
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = f"http://127.0.0.1:{port}"
    code, out, err = await aecflow(
        tmp_path, "upload", "a.ok", "a.ok", "-p", "demo", "--server", server
    )
    assert code == 69, err
    assert f"cannot reach aecflow at {server}: Connection refused" in err
    assert "not attempted" in err and out.splitlines()[-1] == "0 uploaded, 2 failed"

    code, _, err = await aecflow(tmp_path, "upload", "missing.ok", "-p", "demo")
    assert code == 2 and "does not exist" in err
    code, _, err = await aecflow(tmp_path, "upload", "a.ok", "-p", "demo", "--meta", "nokey")
    assert code == 2 and "key=value" in err


# -- what the local host cannot show: S3 on another origin, retries, expiry -------------------


class FakeDirect:
    """A scripted aecflow API whose session sends parts straight to 'S3' on another origin."""

    API = "http://aecflow.test"

    def __init__(self, data: bytes, part_size: int) -> None:
        self.data, self.part_size = data, part_size
        self.ranges = part_ranges(len(data), part_size)
        self.stored: dict[int, bytes] = {}
        self.requests: list[httpx.Request] = []
        self.failures: dict[int, list[int | type[Exception]]] = {}
        self.signature = "one"
        self.expire_on_open = False
        self.record_sha256 = sha(data)

    def session(self) -> dict[str, Any]:
        parts = []
        for number, (_, length) in enumerate(self.ranges, 1):
            part: dict[str, Any] = {"number": number, "size": length}
            part["received"] = number in self.stored
            if not part["received"]:
                checksum = hashlib.sha256(self._part(number)).digest()
                part.update(
                    method="PUT",
                    url=f"https://bucket.s3.test/demo/f1?partNumber={number}&sig={self.signature}",
                    headers={"x-amz-checksum-sha256": base64.b64encode(checksum).decode()},
                )
            parts.append(part)
        return {
            "id": "u1",
            "status": "open",
            "transport": "direct",
            "part_size": self.part_size,
            "part_count": len(self.ranges),
            "parts": parts,
        }

    def _part(self, number: int) -> bytes:
        offset, length = self.ranges[number - 1]
        return self.data[offset : offset + length]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.url.host == "bucket.s3.test":
            number = int(request.url.params["partNumber"])
            script = self.failures.get(number)
            if script:
                failure = script.pop(0)
                if isinstance(failure, type):
                    raise failure("link down", request=request)
                return httpx.Response(failure, text="<Error>scripted</Error>")
            if request.url.params["sig"] != self.signature:
                return httpx.Response(403, text="<Error>Request has expired</Error>")
            assert request.content == self._part(number)
            self.stored[number] = request.content
            return httpx.Response(200, headers={"ETag": f'"{number}"'})
        if path == "/v1/projects/demo/uploads" and request.method == "GET":
            return httpx.Response(200, json={"items": []})
        if path == "/v1/projects/demo/uploads":
            opening = json.loads(request.content)
            numbers = range(1, len(self.ranges) + 1)
            assert opening["part_sha256"] == [sha(self._part(n)) for n in numbers]
            session = self.session()
            if self.expire_on_open:  # the URLs just handed out stop working
                self.signature = "two"
            return httpx.Response(201, json=session)
        if path == "/v1/uploads/u1":
            return httpx.Response(200, json=self.session())
        if path == "/v1/uploads/u1/complete":
            assert len(self.stored) == len(self.ranges)
            return httpx.Response(201, json={"id": "f1", "sha256": self.record_sha256})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})


def fake_client(fake: FakeDirect) -> AsyncClient:
    return AsyncClient(
        FakeDirect.API,
        "secret",
        part_size=PART,
        stream_threshold=PART,
        transport=httpx.MockTransport(fake),
    )


@pytest.fixture
def no_backoff():
    with stamina.set_testing(True, attempts=5):
        yield


async def test_direct_parts_never_carry_the_token(tmp_path: Path):
    data = write(tmp_path / "m.ok", 2 * PART + 7)
    fake = FakeDirect(data, PART)
    async with fake_client(fake) as client:
        record = await client.upload(tmp_path / "m.ok", "demo")
    assert record["id"] == "f1" and fake.stored == {1: data[:PART], 2: data[PART:-7], 3: data[-7:]}
    for request in fake.requests:
        if request.url.host == "bucket.s3.test":
            assert "authorization" not in request.headers
            assert "content-sha256" not in request.headers  # exactly the signed headers
            assert request.headers["content-length"] == str(
                len(fake.stored[int(request.url.params["partNumber"])])
            )
            assert "x-amz-checksum-sha256" in request.headers
        else:
            assert request.headers["authorization"] == "Bearer secret"


async def test_failing_parts_are_retried(tmp_path: Path, no_backoff: None):
    data = write(tmp_path / "m.ok", 2 * PART + 7)
    fake = FakeDirect(data, PART)
    fake.failures = {2: [503, httpx.ReadError, 429], 3: [500]}
    async with fake_client(fake) as client:
        record = await client.upload(tmp_path / "m.ok", "demo")
    assert record["sha256"] == sha(data) and len(fake.stored) == 3
    puts = [r.url.params["partNumber"] for r in fake.requests if r.method == "PUT"]
    assert sorted(puts) == ["1", "2", "2", "2", "2", "3", "3"]

    fake = FakeDirect(data, PART)
    fake.failures = {1: [503] * 5}
    async with fake_client(fake) as client:
        with pytest.raises(ClientError) as failed:
            await client.upload(tmp_path / "m.ok", "demo")
    assert failed.value.status == 503 and failed.value.code == "http_503"

    fake = FakeDirect(data, PART)
    fake.failures = {1: [400]}  # a client error is not retried
    async with fake_client(fake) as client:
        with pytest.raises(ClientError) as refused:
            await client.upload(tmp_path / "m.ok", "demo")
    assert refused.value.status == 400


async def test_an_expired_presigned_url_is_asked_for_again(tmp_path: Path):
    data = write(tmp_path / "m.ok", 2 * PART + 7)
    fake = FakeDirect(data, PART)
    fake.expire_on_open = True
    async with fake_client(fake) as client:
        record = await client.upload(tmp_path / "m.ok", "demo")
    assert record["id"] == "f1" and len(fake.stored) == 3
    refused = [r for r in fake.requests if r.method == "PUT" and r.url.params["sig"] == "one"]
    assert len(refused) == 3  # each part once with its old URL, then with a fresh one
    assert sum(r.url.path == "/v1/uploads/u1" for r in fake.requests) == 3


async def test_a_record_with_other_bytes_is_a_checksum_mismatch(tmp_path: Path):
    data = write(tmp_path / "m.ok", 2 * PART + 7)
    fake = FakeDirect(data, PART)
    fake.record_sha256 = "0" * 64
    async with fake_client(fake) as client:
        with pytest.raises(ChecksumMismatch):
            await client.upload(tmp_path / "m.ok", "demo")


def test_part_sizes() -> None:
    assert choose_part_size(5 * 1024 * MiB) == 16 * MiB
    assert choose_part_size(200 * 1024 * MiB) == 32 * MiB  # 12,800 parts of 16 MiB is too many
    assert choose_part_size(10_000 * 16 * MiB + 1) == 32 * MiB
    assert choose_part_size(100 * MiB, 5 * MiB) == 5 * MiB
    with pytest.raises(ValueError):
        choose_part_size(100 * MiB, 4 * MiB)
    assert part_ranges(11, 5) == [(0, 5), (5, 5), (10, 1)]
    assert part_ranges(10, 5) == [(0, 5), (5, 5)]
