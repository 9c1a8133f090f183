"""The storage contract: what a backend must do so the core can keep bytes durably.

A backend streams: ``put`` consumes an async iterator of chunks and ``open`` yields chunks, so
no file is ever held in memory. Keys are chosen by the core (``{project}/{file_id}``), never
by a user's filename.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
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


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One part of a multipart upload as the backend holds it."""

    number: int
    size: int
    #: Hex SHA-256 of the part's bytes when the backend knows it (always, for ``put_part``).
    sha256: str | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class PartTarget:
    """Where a client sends one part itself: a presigned request straight to the backend."""

    url: str
    method: str = "PUT"
    #: Headers the client must send exactly (they are part of the signature).
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AssembledObject:
    """What ``complete_multipart`` published."""

    key: str
    size: int
    #: Hex SHA-256 of the whole object, or ``None`` when the backend never saw the bytes
    #: (parts sent straight to it by the client).
    sha256: str | None
    etag: str | None = None
    version: str | None = None


#: Where the default multipart implementation stages parts (never a project: those cannot
#: start with a dot).
STAGING_PREFIX = ".uploads"


def staging_key(upload_id: str, number: int, attempt: str | None = None) -> str:
    """Where one attempt at part ``number`` is staged (``attempt`` is the part's etag; parts
    staged before attempts existed have none)."""
    base = f"{STAGING_PREFIX}/{upload_id}/{number:05d}"
    return f"{base}.{attempt}" if attempt else base


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
    #: Clients send upload parts straight to the backend (``part_url``), not through the host.
    direct_upload: bool = False

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

    async def sweep_temp(self, older_than_s: float) -> int:
        """Remove temporary files older than ``older_than_s`` that a killed process left
        behind; returns how many went. Workers call it every ``[worker] temp_sweep_interval_s``."""
        return 0

    async def start(self) -> None:
        """Called once when a flow opens, before any other call: open clients, verify settings
        against the real service (bucket exists, region matches). Raise to refuse to start."""

    async def check(self) -> None:
        """Raise a storage error when the backend is not usable (used by readiness checks)."""

    async def close(self) -> None:
        """Release clients and connections."""

    # -- multipart uploads (resumable upload sessions) ------------------------------------
    #
    # The defaults work on any backend: each part is staged as an object of its own and the
    # parts are joined into ``key`` on completion, which writes every byte twice. Backends
    # with a native multipart upload override all of them (S3 also sets ``direct_upload`` and
    # answers ``part_url`` so that the bytes never pass through the host).

    async def create_multipart(
        self,
        key: str,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        part_checksums: bool = False,
    ) -> str:
        """Begin a multipart upload of ``key``; returns the backend's handle for it.

        ``part_checksums``: every part will come with its SHA-256, which the backend should
        verify (S3: ``x-amz-checksum-sha256``).
        """
        return uuid.uuid4().hex

    async def put_part(
        self, key: str, upload_id: str, number: int, chunks: AsyncIterable[bytes], *, offset: int
    ) -> PartInfo:
        """Store one attempt at part ``number`` (its first byte is at ``offset`` in the file)
        and return its size, SHA-256 (computed while writing) and an ``etag`` naming this
        attempt. If ``chunks`` raises, the part counts as not received.

        Every call writes a copy of its own, never into another attempt's bytes or into a file
        ``complete_multipart`` may publish: two attempts at one part can run at once, and one
        can still be running after the session completed. The core records one attempt per
        part (the last to finish) and passes its etag to ``complete_multipart``; attempts it
        did not record are handed to ``discard_part``.
        """
        attempt = uuid.uuid4().hex
        stored = await self.put(staging_key(upload_id, number, attempt), chunks)
        return PartInfo(number, stored.size, stored.sha256, attempt)

    async def discard_part(self, key: str, upload_id: str, part: PartInfo) -> None:
        """Remove one attempt that ``put_part`` stored and the core did not (or no longer)
        record; removing it twice is fine."""
        await self.delete(staging_key(upload_id, part.number, part.etag))

    async def part_url(
        self,
        key: str,
        upload_id: str,
        number: int,
        *,
        expires: dt.timedelta,
        sha256: str | None = None,
    ) -> PartTarget | None:
        """A request the client can send part ``number`` with, or ``None`` (send it to the
        host). ``sha256`` (hex), when given, must be enforced by the backend."""
        return None

    async def list_parts(self, key: str, upload_id: str) -> builtins.list[PartInfo]:
        """The parts the backend holds, by number. Sizes and etags only: the core keeps the
        checksums of parts it received itself."""
        parts: dict[int, PartInfo] = {}
        async for info in self.list(f"{STAGING_PREFIX}/{upload_id}/"):
            number, _, attempt = info.key.rsplit("/", 1)[1].partition(".")
            parts[int(number)] = PartInfo(int(number), info.size, etag=attempt or None)
        return sorted(parts.values(), key=lambda part: part.number)

    async def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[PartInfo],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> AssembledObject:
        """Publish ``parts`` (all of them, in order, each the attempt its etag names) as
        ``key`` atomically."""

        async def joined() -> AsyncIterator[bytes]:
            for part in parts:
                async for chunk in self.open(staging_key(upload_id, part.number, part.etag)):
                    yield chunk

        total = sum(part.size for part in parts)
        stored = await self.put(
            key, joined(), size=total, content_type=content_type, metadata=metadata
        )
        await self.abort_multipart(key, upload_id)
        return AssembledObject(key, stored.size, stored.sha256, stored.etag, stored.version)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Remove every part of the upload; aborting twice (or after completion) is fine."""
        async for info in self.list(f"{STAGING_PREFIX}/{upload_id}/"):
            await self.delete(info.key)
