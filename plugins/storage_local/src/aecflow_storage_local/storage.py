"""``LocalStorage``: the async face of the local backend.

This module decides *when* work happens (re-chunking, pipelining, cleanup on failure) and
hands every syscall to :mod:`aecflow_storage_local.fileio` in a worker thread, so the event
loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from aecflow.errors import StorageInvalid, StorageUnavailable
from aecflow.storage import AssembledObject, ObjectInfo, PartInfo, Storage, StoredObject
from aecflow_storage_local import fileio, signing
from aecflow_storage_local.config import LocalStorageConfig
from aecflow_storage_local.keys import key_segments, object_path, prefix_start

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Temp files untouched for this long belong to a crashed process and are removed at start.
STALE_TEMP_AGE_S = 24 * 60 * 60
#: Bytes read per step when hashing a completed upload session's file.
HASH_BLOCK = 8 * 1024 * 1024
#: Tolerated clock difference between the host that signed a URL and the one verifying it.
CLOCK_SKEW_S = 60


class LocalStorage(Storage):
    """Objects as files under ``<root>/objects/<key>``, written atomically and fsynced.

    Writes stream through ``<root>/tmp/`` and are renamed into place, so readers see a whole
    object or none. Download URLs are HMAC-signed by this class and verified by the host with
    :meth:`verify_download`.
    """

    def __init__(self, config: LocalStorageConfig | None = None) -> None:
        self.config = config or LocalStorageConfig()
        # Resolved once, at start-up: a later chdir must not move the data.
        self.root = Path(os.path.abspath(self.config.root.expanduser()))
        self.objects_dir = self.root / "objects"
        self.tmp_dir = self.root / "tmp"
        #: Files of open upload sessions (removed by the core's sweep, not by age).
        self.uploads_dir = self.root / "uploads"
        self.signing_key_path = self.root / ".signing-key"
        self._chunk_size = self.config.chunk_size
        fileio.make_dirs(self.objects_dir, self.tmp_dir, self.uploads_dir)
        self._real_objects_dir = os.path.realpath(self.objects_dir)
        removed = fileio.remove_stale_temp(self.tmp_dir, STALE_TEMP_AGE_S, time.time())
        if removed:
            log.info("removed %d stale temporary files from %s", removed, self.tmp_dir)
        self._secret = self._load_secret()
        # Our own pool, not the loop's default one: its futures tell us when a thread has
        # really finished, which cleanup after a cancellation has to wait for.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            thread_name_prefix="aecflow-storage-local"
        )

    def _load_secret(self) -> bytes:
        if self.config.signing_secret is not None:
            return self.config.signing_secret.get_secret_value().encode()
        with fileio.os_errors("", reading=False):
            return signing.load_or_create_key(self.signing_key_path, self.tmp_dir)

    # -- threads -----------------------------------------------------------------------

    def _submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        try:
            return self._executor.submit(fn, *args)
        except RuntimeError as exc:  # shut down
            raise StorageUnavailable("local storage is closed") from exc

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._submit(fn, *args))

    # -- writing -----------------------------------------------------------------------

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        size: int | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Stream ``chunks`` to disk and publish them atomically as ``key``.

        ``content_type`` and ``metadata`` are not stored: the core keeps them in its database.
        """
        writer = self._writer(key)
        try:
            await self._run(writer.open, size)
            await self._stream(writer, chunks)
            written, sha256 = await self._run(writer.commit)
        except BaseException:
            await self._abort(writer)
            raise
        return StoredObject(key=key, size=written, sha256=sha256)

    def _writer(self, key: str) -> fileio.AtomicWriter:
        """A writer that publishes ``key`` atomically (temp file, fsync, rename)."""
        return fileio.AtomicWriter(
            key=key,
            final_path=object_path(self.objects_dir, key),
            objects_dir=self.objects_dir,
            real_objects_dir=self._real_objects_dir,
            tmp_dir=self.tmp_dir,
            fsync=self.config.fsync,
        )

    async def _stream(
        self, writer: fileio.AtomicWriter | fileio.PartWriter, chunks: AsyncIterable[bytes]
    ) -> None:
        """Re-chunk to about ``chunk_size`` and keep one write in flight while receiving more.

        Memory stays bounded: the block being written, the block being filled, and the
        caller's current chunk. Chunks already at least ``chunk_size`` are written as they are.
        """
        pending: concurrent.futures.Future[None] | None = None
        buffer = bytearray()
        limit = self._chunk_size

        async def submit(block: bytes | bytearray) -> None:
            nonlocal pending
            if pending is not None:
                await asyncio.wrap_future(pending)
            pending = self._submit(writer.write, block)

        async for chunk in chunks:
            if not chunk:
                continue
            if not isinstance(chunk, bytes):
                chunk = bytes(chunk)  # the caller may reuse a mutable buffer
            if buffer:
                buffer += chunk
                if len(buffer) >= limit:
                    block, buffer = buffer, bytearray()
                    await submit(block)
            elif len(chunk) >= limit:
                await submit(chunk)
            else:
                buffer += chunk
        if buffer:
            await submit(buffer)
        if pending is not None:
            await asyncio.wrap_future(pending)

    async def _abort(self, writer: fileio.AtomicWriter) -> None:
        """Remove what a failed put wrote, even when we are being cancelled.

        The abort runs in a thread and waits there for any write still in flight; it is
        shielded, so a second cancellation stops our waiting but never the cleanup itself.
        """
        try:
            future = self._submit(writer.abort)
        except StorageUnavailable:
            future = None
        try:
            if future is None:
                writer.abort()
            else:
                await asyncio.shield(asyncio.wrap_future(future))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not remove the partial object of a failed put")

    # -- upload sessions: parts written in place -----------------------------------------
    #
    # One file per session under ``uploads/``; each part is written at its offset, and
    # completing hashes the file once and renames it into place: no byte is copied.

    def _session_file(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise StorageInvalid(f"invalid upload id {upload_id!r}")
        return self.uploads_dir / f"{upload_id}.upload"

    async def put_part(
        self, key: str, upload_id: str, number: int, chunks: AsyncIterable[bytes], *, offset: int
    ) -> PartInfo:
        key_segments(key)
        writer = fileio.PartWriter(self._session_file(upload_id), offset, key)
        try:
            await self._run(writer.open)
            await self._stream(writer, chunks)
        finally:
            await asyncio.shield(self._run(writer.close))
        return PartInfo(number, writer.size, writer.hash.hexdigest())

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """Parts are not individually visible in the session file: the core keeps the record."""
        return []

    async def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[PartInfo],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> AssembledObject:
        writer = self._writer(key)
        path = self._session_file(upload_id)
        try:
            await self._run(writer.adopt, path, HASH_BLOCK)
            size, sha256 = await self._run(writer.commit)
        except BaseException:
            await self._abort(writer)
            raise
        return AssembledObject(key=key, size=size, sha256=sha256)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await self._run(self._session_file(upload_id).unlink, True)

    # -- reading -----------------------------------------------------------------------

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``key`` from ``start`` to ``end`` (exclusive, clamped to the size).

        The key and range are checked here; a missing object is reported on first iteration.
        """
        path = object_path(self.objects_dir, key)
        if start < 0 or (end is not None and end < start):
            raise StorageInvalid(f"invalid byte range start={start} end={end} for {key!r}")
        return self._read(key, path, start, end)

    async def _read(
        self, key: str, path: Path, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        reader = fileio.Reader(key, path, self._real_objects_dir)
        pending: concurrent.futures.Future[Any] = self._submit(reader.open)
        try:
            size: int = await asyncio.wrap_future(pending)
            if start > size:
                raise StorageInvalid(
                    f"range start {start} is beyond the end of {key!r} ({size} bytes)"
                )
            stop = size if end is None else min(end, size)
            position = start
            while position < stop:
                length = min(self._chunk_size, stop - position)
                pending = self._submit(reader.read, length, position)
                data: bytes = await asyncio.wrap_future(pending)
                if not data:
                    break
                position += len(data)
                yield data
        finally:
            # Close only once the last thread using the descriptor is done (at once if it is).
            pending.add_done_callback(lambda _future: reader.close())

    async def stat(self, key: str) -> ObjectInfo:
        path = object_path(self.objects_dir, key)
        return await self._run(fileio.stat_object, key, path, self._real_objects_dir)

    async def local_path(self, key: str) -> Path:
        """The object's file, for processors that read it in place; ``ObjectNotFound`` if none."""
        path = object_path(self.objects_dir, key)
        return await self._run(fileio.existing_object, key, path, self._real_objects_dir)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order, one directory at a time."""
        directory, name_prefix = prefix_start(self.objects_dir, prefix)
        relative = directory.relative_to(self.objects_dir).as_posix()
        key_prefix = "" if relative == "." else relative + "/"
        async for info in self._walk(directory, key_prefix, name_prefix, prefix):
            yield info

    async def _walk(
        self, directory: Path, key_prefix: str, name_prefix: str, prefix: str
    ) -> AsyncIterator[ObjectInfo]:
        entries = await self._run(
            fileio.scan_dir, directory, name_prefix, prefix, self._real_objects_dir
        )
        for entry in entries:
            key = key_prefix + entry.name
            if entry.is_dir:
                async for info in self._walk(directory / entry.name, key + "/", "", prefix):
                    yield info
            else:
                yield entry.info(key)

    # -- deleting ----------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        path = object_path(self.objects_dir, key)
        await self._run(
            fileio.delete_object,
            key,
            path,
            self.objects_dir,
            self._real_objects_dir,
            self.config.fsync,
        )

    # -- signed URLs -------------------------------------------------------------------

    async def download_url(
        self, key: str, *, expires: dt.timedelta, filename: str | None = None
    ) -> str:
        """``{public_base_url}/{key}?expires=…&filename=…&signature=…``, served by the host.

        The lifetime is clamped to ``max_url_expiry_s``. ``filename`` is signed too, so the
        name a browser saves cannot be swapped.
        """
        key_segments(key)
        seconds = expires.total_seconds()
        if seconds <= 0:
            raise StorageInvalid(f"download URL expiry must be positive, got {expires}")
        expires_at = int(time.time() + min(seconds, self.config.max_url_expiry_s))
        query = {"expires": str(expires_at)}
        if filename is not None:
            query["filename"] = filename
        query["signature"] = signing.sign(self._secret, key, expires_at, filename)
        base = self.config.public_base_url
        return f"{base}/{quote(key, safe='/')}?{urlencode(query, quote_via=quote)}"

    def verify_download(
        self,
        key: str,
        expires: int | str,
        filename: str | None,
        signature: str,
        now: float | None = None,
    ) -> bool:
        """Whether a download URL's parameters are authentic and unexpired.

        ``expires`` may be the raw query string value; ``now`` is a Unix time (default: now).
        A URL living longer than ``max_url_expiry_s`` allows is refused even if its signature
        is right, so lowering the limit also shortens URLs already handed out.
        """
        try:
            key_segments(key)
        except StorageInvalid:
            return False
        if isinstance(expires, str):
            # a Unix time has 10 digits; beyond 4,300 int() itself refuses
            if not (expires.isascii() and expires.isdigit()) or len(expires) > 20:
                return False
            expires = int(expires)
        if isinstance(expires, bool) or not isinstance(expires, int):
            return False
        current = time.time() if now is None else now
        if current > expires:
            return False
        if expires - current > self.config.max_url_expiry_s + CLOCK_SKEW_S:
            return False
        return signing.signature_matches(self._secret, key, expires, filename, signature)

    # -- health ------------------------------------------------------------------------

    async def check(self) -> None:
        """Raise unless a put could succeed right now (directories exist and are writable)."""
        await self._run(fileio.probe_writable, self.objects_dir, self.tmp_dir)

    async def close(self) -> None:
        """Stop taking work; operations already submitted still finish (and clean up)."""
        self._executor.shutdown(wait=False)
