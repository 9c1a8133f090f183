"""In-memory backends for tests: a storage that keeps bytes in a dict, a notifier that records.

Both are registered by this module's hooks (``memory`` storage, ``recording`` notifier) when
it is passed as a plugin, which :func:`aecflow.testing.open_test_flow` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence

import pydantic

from aecflow import hookimpl
from aecflow.errors import ObjectNotFound
from aecflow.notify import DeliveryOutcome, DeliveryStatus, Event, Notifier
from aecflow.registry import NotifierRegistry, StorageRegistry
from aecflow.storage import ObjectInfo, Storage, StoredObject

#: How many bytes ``MemoryStorage.open`` yields at a time, so readers see several chunks.
CHUNK = 64 * 1024


class MemoryStorage(Storage):
    """Keeps every object in a dict; ``put`` publishes only when its chunks ran out cleanly.

    Multipart uploads use the contract's defaults (parts staged as objects, joined on
    completion); ``download_url`` and ``local_path`` answer ``None``, so the worker copies
    objects to a temporary file as it does for remote backends.
    """

    def __init__(self, config: pydantic.BaseModel | None = None) -> None:
        self.objects: dict[str, tuple[bytes, ObjectInfo]] = {}

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        size: int | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        digest = hashlib.sha256()
        parts: list[bytes] = []
        async for chunk in chunks:  # an exception here leaves nothing behind
            digest.update(chunk)
            parts.append(bytes(chunk))
        data = b"".join(parts)
        info = ObjectInfo(
            key,
            len(data),
            dt.datetime.now(dt.UTC),
            digest.hexdigest(),
            content_type,
            dict(metadata or {}),
        )
        self.objects[key] = (data, info)
        return StoredObject(key, len(data), digest.hexdigest(), etag=digest.hexdigest())

    async def open(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        if key not in self.objects:
            raise ObjectNotFound(f"no object {key!r}")
        data = self.objects[key][0]
        stop = len(data) if end is None else min(end, len(data))
        for offset in range(start, stop, CHUNK):
            yield data[offset : min(offset + CHUNK, stop)]

    async def stat(self, key: str) -> ObjectInfo:
        if key not in self.objects:
            raise ObjectNotFound(f"no object {key!r}")
        return self.objects[key][1]

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield self.objects[key][1]


class RecordingNotifierConfig(pydantic.BaseModel):
    """Settings of a ``recording`` destination."""

    model_config = pydantic.ConfigDict(extra="forbid")
    #: Answer RETRY to this many ``deliver`` calls before delivering (a flaky destination).
    fail_times: int = 0
    #: Only these event types are wanted; empty means all.
    events: list[str] = []


class RecordingNotifier(Notifier):
    """Records every event it delivered, in order; can be told to fail its first calls."""

    def __init__(self, config: RecordingNotifierConfig | None = None) -> None:
        self.config = config or RecordingNotifierConfig()
        self.fail_times = self.config.fail_times
        self.calls = 0
        self.events: list[Event] = []

    def wants(self, event_type: str) -> bool:
        return not self.config.events or event_type in self.config.events

    async def deliver(self, events: Sequence[Event]) -> Mapping[str, DeliveryOutcome]:
        self.calls += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            failed = DeliveryOutcome(DeliveryStatus.RETRY, error="told to fail")
            return {event.id: failed for event in events}
        self.events.extend(events)
        return {event.id: DeliveryOutcome(DeliveryStatus.DELIVERED) for event in events}

    def types(self) -> list[str]:
        """The delivered events' types, in delivery order."""
        return [event.type for event in self.events]


@hookimpl
def register_storage(registry: StorageRegistry) -> None:
    registry.add("memory", MemoryStorage)


@hookimpl
def register_notifiers(registry: NotifierRegistry) -> None:
    registry.add("recording", RecordingNotifier, config=RecordingNotifierConfig)
