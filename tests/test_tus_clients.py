"""Real tus clients nobody here wrote, on loopback: tuspy (Python) and tus-js-client (Node)
each upload a 50 MB file in chunks that do not line up with the session's parts, are killed
(SIGKILL) once the server holds about 20 MB, resume from a new process, and the file is
recorded and processed with the right SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aecflow.actor import Role
from aecflow.store.schema import files, uploads
from aecflow.uploads.tus import OffsetUploads

from .live import live_host
from .test_host import PLUGINS, host_settings, poll

MiB = 1024 * 1024
SIZE = 50 * 1000 * 1000
KILL_AT = 20 * 1000 * 1000
HERE = Path(__file__).resolve().parent
JS = HERE / "js"


def node_client() -> list[str]:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "tus-js-client").is_dir():
        pytest.fail("tus-js-client is not installed: run `make js` (node and npm needed)")
    return [node, str(JS / "tus_upload.mjs")]


CLIENTS = {
    "tuspy": lambda: [sys.executable, str(HERE / "tuspy_upload.py")],
    "tus-js-client": node_client,
}


async def server_offset(flow) -> int:
    """How many bytes the server holds of the one open upload (0 before it exists)."""
    tus = OffsetUploads(flow.uploads)
    found = await flow.uploads.find("tower-a")
    if not found:
        return 0
    return (await tus.progress(await tus.row(found[0]["id"]))).offset


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_killed_mid_way_then_resumed(tmp_path: Path, database_url: str, name: str) -> None:
    command = CLIENTS[name]()
    data = os.urandom(SIZE)
    source = tmp_path / "model.ok"
    source.write_bytes(data)
    settings = host_settings(
        tmp_path, database_url, auth={"mode": "token"}, uploads={"part_size": 5 * MiB}
    )
    async with live_host(settings, plugins=PLUGINS) as (url, app):
        flow = app.state.flow
        _, token = await flow.create_token(name=name, role=Role.WRITER, projects=["tower-a"])
        args = [f"{url}/v1/tus/", token, str(source), str(tmp_path / "urls.json"), str(3 * MiB)]

        first = await asyncio.create_subprocess_exec(
            *command, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        held = 0
        while held < KILL_AT:
            assert first.returncode is None, "the client finished before it was killed"
            await asyncio.sleep(0.02)
            held = await server_offset(flow)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        assert first.returncode == -signal.SIGKILL
        killed_at = await server_offset(flow)
        assert KILL_AT <= killed_at < SIZE

        second = await asyncio.create_subprocess_exec(
            *command, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await asyncio.wait_for(second.communicate(), 300)
        text = output.decode()
        assert second.returncode == 0, text
        assert "done" in text, text
        # it resumed the same upload where the server was, not from 0
        if name == "tuspy":  # (a PATCH the server had whole may still be recorded after the kill)
            started = re.search(r"starting at (\d+) of", text)
            assert started and killed_at <= int(started[1]) < SIZE, text
        else:
            assert "resuming http" in text, text
        async with flow.engine.connect() as conn:
            ids = (await conn.execute(sa.select(files.c.id))).scalars().all()
            opened = await conn.scalar(sa.select(sa.func.count()).select_from(uploads))
        assert len(ids) == 1 and opened == 1, (ids, opened)
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            record = await poll(client, ids[0], lambda b: b["status"] == "processed", 120)
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["size"] == SIZE and record["filename"] == "model.ok"
        assert record["metadata"] == {"phase": "python" if name == "tuspy" else "node"}


async def test_the_tuspy_snippet_of_docs_clients_md_runs(tmp_path: Path, database_url: str) -> None:
    page = (HERE.parent / "docs" / "clients.md").read_text()
    snippet = page.split("### tuspy", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    data = b"ISO-10303-21;\n" + os.urandom(3 * MiB)
    (tmp_path / "Tower A.ifc").write_bytes(data)
    settings = host_settings(tmp_path, database_url, auth={"mode": "token"})
    async with live_host(settings, plugins=PLUGINS) as (url, app):
        _, token = await app.state.flow.create_token(
            name="docs", role=Role.WRITER, projects=["tower-a"]
        )
        script = f"TOKEN = {token!r}\n" + snippet.replace("http://127.0.0.1:8000", url)
        run = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(run.communicate(), 120)
        assert run.returncode == 0, output.decode()
        async with app.state.flow.engine.connect() as conn:
            sha256 = (await conn.execute(sa.select(files.c.sha256))).scalar_one()
        assert sha256 == hashlib.sha256(data).hexdigest()
