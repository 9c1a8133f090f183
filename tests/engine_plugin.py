"""A test plugin for the engine tests: processors that misbehave by suffix, and a notifier
whose failures the test controls. Registered with ``Flow.open(plugins=[...])``; processors are
module-level so the isolated child can import them by name.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pydantic

import aecflow
from aecflow.notify import DeliveryOutcome, DeliveryStatus, Event, Notifier
from aecflow.processing import InvalidInput, ProcessingContext, ProcessingResult, Processor
from aecflow.storage import Storage
from aecflow_storage_local.config import LocalStorageConfig
from aecflow_storage_local.storage import LocalStorage


class Empty(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class Count(Processor):
    """Succeeds: counts the bytes and lines it read, so results can be checked."""

    suffixes = (".ok",)

    def __init__(self, config: Empty) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        data = path.read_bytes()
        return ProcessingResult(
            {"bytes": len(data), "lines": data.count(b"\n"), "filename": context.filename}
        )


class Refuse(Processor):
    suffixes = (".bad",)

    def __init__(self, config: Empty) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        raise InvalidInput("this is not a model: no ISO-10303-21 header")


class Slow(Processor):
    suffixes = (".slow",)

    def __init__(self, config: Empty) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        time.sleep(120)
        return ProcessingResult({})


class Hog(Processor):
    suffixes = (".hog",)

    def __init__(self, config: Empty) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        blocks = [bytearray(64 * 1024 * 1024) for _ in range(64)]  # 4 GiB
        return ProcessingResult({"blocks": len(blocks)})


class Segfault(Processor):
    suffixes = (".segv",)

    def __init__(self, config: Empty) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        os.kill(os.getpid(), signal.SIGSEGV)
        ctypes.string_at(0)  # in case the signal is blocked
        return ProcessingResult({})


class Unstorable(Processor):
    """Refuses the file with an error PostgreSQL cannot store as is: a NUL, a lone surrogate."""

    suffixes = (".nul",)

    def __init__(self, config: Empty) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        raise InvalidInput("header names schema IFC\x002X3 in file caf\udcff.ifc")


class FlakyConfig(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    #: Fail this many delivery calls before succeeding; -1 fails forever.
    fail_times: int = 0


class Flaky(Notifier):
    """Fails ``fail_times`` calls with a health failure, then delivers; records what it got."""

    max_batch = 10

    def __init__(self, config: FlakyConfig) -> None:
        self.fail_times = config.fail_times
        self.calls = 0
        self.delivered: list[Event] = []

    async def deliver(self, events: Sequence[Event]) -> Mapping[str, DeliveryOutcome]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail_times < 0 or self.calls <= self.fail_times:
            raise ConnectionError("destination unreachable")
        self.delivered.extend(events)
        return {event.id: DeliveryOutcome(DeliveryStatus.DELIVERED) for event in events}


@aecflow.hookimpl
def register_processors(registry):
    registry.add("t-count", Count, config=Empty)
    registry.add("t-refuse", Refuse, config=Empty)
    registry.add("t-slow", Slow, config=Empty)
    registry.add("t-hog", Hog, config=Empty)
    registry.add("t-segv", Segfault, config=Empty)
    registry.add("t-nul", Unstorable, config=Empty)


@aecflow.hookimpl
def register_notifiers(registry):
    registry.add("flaky", Flaky, config=FlakyConfig)


#: Every observation this process has seen, for the monitoring tests.
OBSERVED: list = []


@aecflow.hookimpl
def observe(observation):
    OBSERVED.append(observation)


class StagingStorage(LocalStorage):
    """Local storage with the contract's default multipart upload (each part staged as an
    object, joined on completion): what a third-party backend without its own gets."""

    create_multipart = Storage.create_multipart
    put_part = Storage.put_part
    discard_part = Storage.discard_part
    list_parts = Storage.list_parts
    complete_multipart = Storage.complete_multipart
    abort_multipart = Storage.abort_multipart


class PathlessStorage(LocalStorage):
    """Local storage that hides its paths, like S3: the worker must copy to a temp file."""

    async def local_path(self, key: str) -> None:
        return None


@aecflow.hookimpl
def register_storage(registry):
    registry.add("pathless", PathlessStorage, config=LocalStorageConfig)
    registry.add("staging", StagingStorage, config=LocalStorageConfig)
