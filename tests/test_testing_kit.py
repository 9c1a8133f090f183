"""The plugin authors' kit, aecflow.testing, on real flows (SQLite in tmp_path, the worker's
isolated child, the outbox dispatcher): what a plugin's own tests will rely on."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

import aecflow
from aecflow.errors import ObjectNotFound
from aecflow.flow import Flow
from aecflow.notify import DeliveryOutcome, DeliveryStatus, Event, Notifier
from aecflow.testing import (
    LiveHost,
    MemoryStorage,
    open_test_flow,
    recording_notifier,
    run_until_settled,
)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read(storage: MemoryStorage, key: str, **kwargs: int | None) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key, **kwargs)])


# -- MemoryStorage: the storage contract in a dict -------------------------------------------


async def test_memory_storage_round_trips_and_reads_ranges() -> None:
    storage = MemoryStorage()
    data = bytes(range(256)) * 1000  # several of open's chunks
    stored = await storage.put("p/a", chunks(data[:7], b"", data[7:]), content_type="x/y")
    assert (stored.size, await read(storage, "p/a")) == (len(data), data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await read(storage, "p/a", start=100, end=70_000) == data[100:70_000]
    assert await read(storage, "p/a", start=len(data) - 3) == data[-3:]
    info = await storage.stat("p/a")
    assert (info.size, info.content_type) == (len(data), "x/y")


async def test_memory_storage_failed_put_leaves_nothing() -> None:
    storage = MemoryStorage()

    async def broken() -> AsyncIterator[bytes]:
        yield b"half"
        raise ConnectionError("client gone")

    with pytest.raises(ConnectionError):
        await storage.put("p/a", broken())
    with pytest.raises(ObjectNotFound):
        await storage.stat("p/a")
    assert [info async for info in storage.list()] == []


async def test_memory_storage_lists_deletes_and_has_no_urls() -> None:
    storage = MemoryStorage()
    for key in ("p/b", "p/a", "q/c"):
        await storage.put(key, chunks(key.encode()))
    assert [info.key async for info in storage.list("p/")] == ["p/a", "p/b"]
    await storage.delete("p/a")
    await storage.delete("p/a")  # idempotent
    assert [info.key async for info in storage.list()] == ["p/b", "q/c"]
    with pytest.raises(ObjectNotFound):
        await read(storage, "p/a")
    assert await storage.download_url("p/b", expires=dt.timedelta(minutes=5)) is None


async def test_memory_storage_multipart_uses_the_contract_defaults() -> None:
    storage = MemoryStorage()
    upload = await storage.create_multipart("p/big")
    second = await storage.put_part("p/big", upload, 2, chunks(b"world"), offset=6)
    first = await storage.put_part("p/big", upload, 1, chunks(b"hello "), offset=0)
    assert [part.number for part in await storage.list_parts("p/big", upload)] == [1, 2]
    done = await storage.complete_multipart("p/big", upload, [first, second])
    assert (done.size, await read(storage, "p/big")) == (11, b"hello world")
    assert [info.key async for info in storage.list()] == ["p/big"]  # staging removed


# -- flows -----------------------------------------------------------------------------------


async def test_a_file_is_stored_processed_and_notified(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("two words\nand three more\n")
    async with open_test_flow(tmp_path) as flow:
        record = await flow.ingest_file("demo", source)
        assert isinstance(flow.storage, MemoryStorage)
        assert await read(flow.storage, record.storage_key) == source.read_bytes()
        await run_until_settled(flow)
        done = await flow.get(record.id)
        assert done.status == "processed", done.processing
        assert done.processing["processor"] == "textstats"
        assert done.processing["result"]["words"] == 5
        assert recording_notifier(flow).types() == [
            "file.stored",
            "file.step_succeeded",
            "file.processed",
        ]
        assert {event.file_id for event in recording_notifier(flow).events} == {record.id}


async def test_a_recorder_told_to_fail_records_nothing_and_is_retried(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("x\n")
    settings = {"notifiers": [{"backend": "recording", "fail_times": 1}]}
    async with open_test_flow(tmp_path, **settings) as flow:
        record = await flow.ingest_file("demo", source)
        await run_until_settled(flow)
        recorder = recording_notifier(flow)
        assert (recorder.calls, recorder.events) == (1, [])
        assert await flow.undelivered(record.id) == []  # RETRY: kept for later, not dead


class Collect(Notifier):
    """A notifier that a test registers through ``plugins=`` without packaging it."""

    seen: list[str] = []

    async def deliver(self, events: Sequence[Event]) -> Mapping[str, DeliveryOutcome]:
        Collect.seen.extend(event.type for event in events)
        return {event.id: DeliveryOutcome(DeliveryStatus.DELIVERED) for event in events}


class CollectPlugin:
    @aecflow.hookimpl
    def register_notifiers(self, registry: aecflow.registry.NotifierRegistry) -> None:
        registry.add("collect", Collect)


async def test_extra_plugins_are_registered(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("x\n")
    Collect.seen = []
    notifiers = [{"backend": "collect"}]
    async with open_test_flow(
        tmp_path, [("collect", CollectPlugin())], notifiers=notifiers
    ) as flow:
        assert list(flow.notifiers) == ["collect"]
        await flow.ingest_file("demo", source)
        await run_until_settled(flow)
    assert Collect.seen == ["file.stored", "file.step_succeeded", "file.processed"]


# -- the pytest plugin's fixtures (loaded by the pytest11 entry point, not a conftest) ----------


PLUGIN_TEST = """
import pytest
from aecflow.testing import MemoryStorage, recording_notifier, run_until_settled


@pytest.fixture
def aecflow_settings():
    return {"notifiers": [{"backend": "recording", "events": ["file.stored"]}]}


async def test_flow(flow, tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("x")
    await flow.ingest_file("demo", source)
    await run_until_settled(flow)
    assert isinstance(flow.storage, MemoryStorage)
    assert recording_notifier(flow).types() == ["file.stored"]
"""


def test_the_fixtures_load_by_entry_point_without_a_conftest(tmp_path: Path) -> None:
    """A plugin's test directory with no conftest, in pytest-asyncio's strict mode: the
    ``flow`` fixture comes from the ``pytest11`` entry point and honours ``aecflow_settings``."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = strict\n")
    (tmp_path / "test_plugin.py").write_text(
        PLUGIN_TEST.replace("async def test_flow", "@pytest.mark.asyncio\nasync def test_flow")
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


async def test_live_host_serves_http(live_host: LiveHost) -> None:
    async with httpx.AsyncClient(base_url=live_host.url) as client:
        answer = await client.get("/health")
    assert answer.status_code == 200
    assert isinstance(live_host.flow, Flow)
    assert isinstance(live_host.flow.storage, MemoryStorage)


ROOT = Path(__file__).resolve().parent.parent


def first_python_block(text: str) -> str:
    return text.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(
    ("document", "after"),
    [("docs/testing-plugins.md", "# Testing plugins"), ("README.md", "### Testing plugins")],
)
def test_the_documented_snippet_passes(tmp_path: Path, document: str, after: str) -> None:
    """The docs' plugin test, run as a plugin author would: pytest in a bare directory."""
    text = (ROOT / document).read_text(encoding="utf-8").split(after, 1)[1]
    (tmp_path / "test_snippet.py").write_text(first_python_block(text))
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
