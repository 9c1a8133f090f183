"""tus vs. upload session: MB/s of one 50 MB file into local storage.

An aecflow host (local storage, SQLite, no worker, no auth) runs under uvicorn on loopback in
this process (``aecflow.testing.live_host``), and the same file is uploaded to it four ways, in
alternating order, over httpx:

- ``session``: ``POST /v1/projects/{p}/uploads``, the parts (16 MiB, ``[uploads] part_size``)
  sent one after the other with ``PUT .../parts/{n}``, then ``POST .../complete``;
- ``tus 1 PATCH``: ``POST /v1/tus/`` then the whole file in one PATCH;
- ``tus 16 MiB``, ``tus 3 MiB``: PATCHes of that size one after the other (3 MiB bodies do not
  line up with the 16 MiB parts: each part is made of a staged tail piece and the next body).

Each time runs from the first request to the answer that published the file (the host joins
the parts and hashes the file then). Bodies stream from the file in 1 MiB chunks. The client
shares the process (and the machine's cores) with the host: compare the rows, not the
absolute figures. The load average is printed. Prints figures; asserts nothing.

    .venv/bin/python bench/tus.py               # 50 MB, 3 rounds
    .venv/bin/python bench/tus.py --mb 200 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx

from aecflow.config import Settings
from aecflow.testing.live import live_host

MIB = 1024 * 1024
PART = 16 * MIB
TUS = {"Tus-Resumable": "1.0.0"}


async def read(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        source.seek(start)
        while length > 0:
            chunk = await asyncio.to_thread(source.read, min(MIB, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


async def session(client: httpx.AsyncClient, path: Path, size: int) -> str:
    opened = await client.post(
        "/v1/projects/bench/uploads", json={"filename": "f.bin", "size": size, "part_size": PART}
    )
    view = opened.raise_for_status().json()
    for part in view["parts"]:
        start = (part["number"] - 1) * PART
        sent = await client.put(
            part["url"],
            content=read(path, start, part["size"]),
            headers={"Content-Length": str(part["size"])},
        )
        sent.raise_for_status()
    done = await client.post(f"/v1/uploads/{view['id']}/complete")
    return done.raise_for_status().json()["sha256"]


def tus(chunk: int | None) -> Callable[[httpx.AsyncClient, Path, int], Awaitable[str]]:
    async def upload(client: httpx.AsyncClient, path: Path, size: int) -> str:
        meta = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}"
            for k, v in {"project": "bench", "filename": "f.bin"}.items()
        )
        made = await client.post(
            "/v1/tus/", headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": meta}
        )
        location = made.raise_for_status().headers["location"]
        offset, step = 0, chunk or size
        while offset < size:
            length = min(step, size - offset)
            sent = await client.patch(
                location,
                content=read(path, offset, length),
                headers={
                    **TUS,
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(offset),
                    "Content-Length": str(length),
                },
            )
            sent.raise_for_status()
            offset = int(sent.headers["upload-offset"])
        file_id = sent.headers["aecflow-file-id"]
        return (await client.get(f"/v1/files/{file_id}")).raise_for_status().json()["sha256"]

    return upload


WAYS = {
    "session (16 MiB parts)": session,
    "tus 1 PATCH": tus(None),
    "tus 16 MiB PATCHes": tus(16 * MIB),
    "tus 3 MiB PATCHes": tus(3 * MIB),
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=50, help="file size in MB (10^6 bytes)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.mb * 1000 * 1000
    with tempfile.TemporaryDirectory(prefix="aecflow-bench-tus-") as tmp:
        root = Path(tmp)
        path = root / "source.bin"
        with path.open("wb") as out:
            for _ in range(0, size, MIB):
                out.write(os.urandom(min(MIB, size - out.tell())))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        settings = Settings.model_validate(
            {
                "data_dir": str(root / "data"),
                "database": {"url": f"sqlite+aiosqlite:///{root / 'aecflow.db'}"},
                "storage": {"backend": "local", "root": str(root / "objects")},
                "uploads": {"part_size": PART},
                "auth": {"mode": "none"},
                "notifiers": [],
            }
        )
        times: dict[str, list[float]] = {name: [] for name in WAYS}
        async with (
            live_host(settings, worker=False) as (url, _),
            httpx.AsyncClient(base_url=url, timeout=300) as client,
        ):
            for _ in range(args.rounds):
                for name, way in WAYS.items():
                    started = time.perf_counter()
                    got = await way(client, path, size)
                    times[name].append(time.perf_counter() - started)
                    assert got == digest, (name, got)
        load = os.getloadavg()
        print(f"{args.mb} MB file, local storage, {args.rounds} rounds; load {load[0]:.2f}")
        print(f"{'way':<24} {'best MB/s':>10} {'median MB/s':>12}")
        for name, seconds in times.items():
            best, median = min(seconds), statistics.median(seconds)
            print(f"{name:<24} {args.mb / best:>10.1f} {args.mb / median:>12.1f}")


if __name__ == "__main__":
    asyncio.run(main())
