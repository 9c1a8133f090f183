"""The storage contract: what a backend must do so the core can keep bytes durably.

A backend streams: ``put`` consumes an async iterator of chunks and ``open`` yields chunks, so
no file is ever held in memory. Keys are chosen by the core (``{project}/{file_id}``), never
by a user's filename.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What ``put`` wrote: the size and SHA-256 of the bytes that really landed."""

    key: str
    size: int
    sha256: str
    etag: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """Metadata of an object as the backend reports it."""

    key: str
    size: int
    last_modified: dt.datetime | None = None
    etag: str | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class Storage(ABC):
    """A place to keep objects.

    Contract for implementers:

    - ``put`` computes the SHA-256 of what it writes while streaming and publishes atomically:
      readers see the whole object or nothing. If ``chunks`` raises (size limit, client gone,
      cancellation), ``put`` removes whatever it wrote and re-raises.
    - ``delete`` is idempotent: deleting a missing key is not an error.
    - Failures are mapped to :mod:`aecflow.errors` storage errors (``ObjectNotFound``,
      ``StorageAccessDenied``, ``StorageUnavailable``, ``StorageInvalid``).
    """

    #: The registered backend name, set by the registry when the factory builds the instance.
    name: str = ""

    @abstractmethod
    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        size: int | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Stream ``chunks`` into ``key``; ``size`` is a hint when the caller knows it."""

    @abstractmethod
    def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield the bytes of ``key`` from ``start`` up to ``end`` (exclusive), in chunks."""

    @abstractmethod
    async def stat(self, key: str) -> ObjectInfo:
        """Describe ``key``; raises ``ObjectNotFound`` when it does not exist."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; missing keys are fine."""

    @abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield every object whose key starts with ``prefix``."""

    async def download_url(
        self, key: str, *, expires: dt.timedelta, filename: str | None = None
    ) -> str | None:
        """An expiring URL that serves ``key`` (as ``filename``), or ``None`` if impossible."""
        return None

    async def local_path(self, key: str) -> Path | None:
        """A path on this machine where ``key`` can be read directly, or ``None``.

        Processors need a file path; backends that already keep files locally return it and
        spare the core a copy to a temporary file.
        """
        return None

    async def start(self) -> None:
        """Called once when a flow opens, before any other call: open clients, verify settings
        against the real service (bucket exists, region matches). Raise to refuse to start."""

    async def check(self) -> None:
        """Raise a storage error when the backend is not usable (used by readiness checks)."""

    async def close(self) -> None:
        """Release clients and connections."""
