"""Streaming uploads: the core's chunks in, one S3 object (or nothing) out.

How bytes flow: the caller's task reads the core's chunks, joins them into blocks of at least
1 MiB, hashes them (SHA-256, 8 MiB at a time in a worker thread, so the loop stays free) and
hands each block over a small bounded channel to obstore, which reads the channel as an async
iterator and uploads parts of ``part_size`` with at most ``max_concurrency`` in flight. Memory
per upload is therefore about ``(max_concurrency + 1) x part_size`` plus a few blocks, whatever
the file size.
An object that fits in one part is sent with a single PUT instead.

How failure is cleaned up: obstore aborts its multipart upload when the iterator it reads
raises, so on any failure of ours (the chunks raised, the caller was cancelled) the channel is
aborted and obstore's reader raises. obstore's own task is never cancelled (cancelling it would
drop the upload without aborting it); it is awaited, shielded, until it has aborted. When
obstore failed by itself, its abort may not have happened (or failed), so the key's leftover
multipart uploads are swept with the control-plane client in the background.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import math
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import obstore

from aecflow.errors import StorageError
from aecflow_storage_s3.errors import map_error, translated

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: Blocks handed to obstore are at least this big: per-call overhead stays negligible.
BLOCK_SIZE = 1 * MIB
#: Bytes waiting in the channel; bounds the memory between the caller and obstore.
CHANNEL_BYTES = 2 * MIB
#: Bytes hashed per trip to a worker thread (hashlib releases the GIL while it hashes).
HASH_BATCH = 8 * MIB
#: S3 allows at most this many parts in one multipart upload.
MAX_PARTS = 10_000


@dataclass(frozen=True, slots=True)
class Written:
    """What landed: size and SHA-256 of the bytes sent, and S3's etag and version."""

    size: int
    sha256: str
    etag: str | None
    version: str | None


class _Aborted(Exception):
    """Raised into obstore's reader so that it aborts the multipart upload."""


class _ReaderGone(Exception):
    """obstore stopped reading (its upload failed): the caller must not wait for it."""


_END = object()


class _Channel:
    """A bounded hand-off of blocks from the caller's task to obstore's reader.

    At most ``capacity`` bytes wait in it. Each read takes everything waiting (joined into one
    buffer), so when the reader falls behind it catches up in one trip instead of one per
    block: every trip into Python from obstore's threads costs a thread switch.

    Either end can give up: ``abort`` makes the reader raise ``_Aborted`` (obstore then aborts
    the upload), ``reader_gone`` makes a waiting ``send`` raise ``_ReaderGone``.
    """

    def __init__(self, capacity: int) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._queued = 0
        self._capacity = capacity
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._aborted = False
        self._gone = False

    async def send(self, block: bytes) -> None:
        while self._queued >= self._capacity and not self._gone:
            self._not_full.clear()
            await self._not_full.wait()
        if self._gone:
            raise _ReaderGone
        self._items.append(block)
        self._queued += len(block)
        self._not_empty.set()

    def close(self) -> None:
        """No more blocks: the reader ends after the ones queued."""
        self._items.append(_END)
        self._not_empty.set()

    def abort(self) -> None:
        self._aborted = True
        self._items.clear()
        self._not_empty.set()

    def reader_gone(self) -> None:
        self._gone = True
        self._items.clear()
        self._not_full.set()

    # The reader side: obstore calls __anext__ whenever it wants more bytes.

    def __aiter__(self) -> _Channel:
        return self

    async def __anext__(self) -> bytes:
        while not self._items and not self._aborted:
            self._not_empty.clear()
            await self._not_empty.wait()
        if self._aborted:
            raise _Aborted("the upload was abandoned")
        if self._items[0] is _END:
            raise StopAsyncIteration
        blocks: list[bytes] = []
        while self._items and self._items[0] is not _END:
            blocks.append(self._items.popleft())
        self._queued = 0
        self._not_full.set()
        return blocks[0] if len(blocks) == 1 else b"".join(blocks)


class _Digest:
    """Size and SHA-256 of the blocks, in order, hashed in a worker thread in batches.

    Hashing on the event loop would stall it (about 1 ms per MiB); a thread hop per 1 MiB
    block costs more than it saves when CPUs are busy. So blocks are hashed a batch of
    ``HASH_BATCH`` bytes at a time, one batch in flight, which keeps both costs small.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._pending: asyncio.Future[None] | None = None
        self.size = 0

    def _update_all(self, blocks: list[bytes]) -> None:
        for block in blocks:
            self._hash.update(block)

    async def _flush(self) -> None:
        """Hand the batch to a worker thread once the previous batch is done (order matters)."""
        if self._pending is not None:
            await self._pending
            self._pending = None
        if self._batch:
            batch, self._batch, self._batch_size = self._batch, [], 0
            loop = asyncio.get_running_loop()
            self._pending = loop.run_in_executor(None, self._update_all, batch)

    async def update(self, block: bytes) -> None:
        self.size += len(block)
        self._batch.append(block)
        self._batch_size += len(block)
        if self._batch_size >= HASH_BATCH:
            await self._flush()

    async def hexdigest(self) -> str:
        await self._flush()
        if self._pending is not None:
            await self._pending
            self._pending = None
        return self._hash.hexdigest()


async def blocks_of(chunks: AsyncIterable[bytes], size: int = BLOCK_SIZE) -> AsyncIterator[bytes]:
    """Re-chunk to blocks of at least ``size`` bytes (the last may be shorter).

    Chunks already that big pass through without a copy; ``bytearray`` and ``memoryview``
    chunks are copied, because the caller may reuse their buffer.
    """
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in chunks:
        if not chunk:
            continue
        data = chunk if type(chunk) is bytes else bytes(chunk)
        if not pending and len(data) >= size:
            yield data
            continue
        pending.append(data)
        pending_size += len(data)
        if pending_size >= size:
            block = b"".join(pending)
            pending, pending_size = [], 0
            yield block
    if pending:
        yield b"".join(pending)


def part_size_for(part_size: int, size_hint: int | None) -> int:
    """``part_size``, raised (to whole MiB) when ``size_hint`` would need over 10,000 parts."""
    if size_hint and math.ceil(size_hint / part_size) > MAX_PARTS:
        return math.ceil(size_hint / MAX_PARTS / MIB) * MIB
    return part_size


class Uploader:
    """Writes one object per :meth:`put` into an obstore ``store``.

    ``sweep(path)`` aborts leftover multipart uploads of ``path`` and ``remove(path)`` deletes
    an object; both are used only to clean up after failures. Cleanup that outlives a ``put``
    is tracked and awaited by :meth:`drain`.
    """

    def __init__(
        self,
        store: Any,
        *,
        part_size: int,
        max_concurrency: int,
        sweep: Callable[[str], Awaitable[None]],
        remove: Callable[[str], Awaitable[None]],
    ) -> None:
        self._store = store
        self._part_size = part_size
        self._max_concurrency = max_concurrency
        self._sweep = sweep
        self._remove = remove
        self._background: set[asyncio.Task[None]] = set()

    async def put(
        self,
        path: str,
        chunks: AsyncIterable[bytes],
        *,
        attributes: dict[str, str],
        size_hint: int | None = None,
    ) -> Written:
        part_size = part_size_for(self._part_size, size_hint)
        digest = _Digest()
        async with contextlib.aclosing(blocks_of(chunks)) as blocks:
            head: list[bytes] = []
            head_size = 0
            async for block in blocks:
                await digest.update(block)
                head.append(block)
                head_size += len(block)
                if head_size > part_size:
                    return await self._multipart(path, head, blocks, digest, attributes, part_size)
            sha256 = await digest.hexdigest()
            result = await self._single(path, head, attributes)
        return Written(digest.size, sha256, result.get("e_tag"), result.get("version"))

    # -- one PUT -------------------------------------------------------------------------

    async def _single(
        self, path: str, blocks: list[bytes], attributes: dict[str, str]
    ) -> dict[str, Any]:
        """One PUT of an object smaller than a part (atomic: it lands whole or not at all)."""
        with translated(f"put {path!r}", missing_is_down=True):
            task = asyncio.ensure_future(
                obstore.put_async(
                    self._store, path, blocks, attributes=attributes, use_multipart=False
                )
            )
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The PUT may still land; if it does, the caller never learns of it: remove it.
            await self._settle(task, path, multipart=False)
            raise
        except Exception as exc:
            raise map_error(exc, f"put {path!r}", missing_is_down=True) from exc

    # -- multipart -----------------------------------------------------------------------

    async def _multipart(
        self,
        path: str,
        head: list[bytes],
        blocks: AsyncIterator[bytes],
        digest: _Digest,
        attributes: dict[str, str],
        part_size: int,
    ) -> Written:
        channel = _Channel(CHANNEL_BYTES)
        with translated(f"put {path!r}", missing_is_down=True):
            task = asyncio.ensure_future(
                obstore.put_async(
                    self._store,
                    path,
                    channel,
                    attributes=attributes,
                    use_multipart=True,
                    chunk_size=part_size,
                    max_concurrency=self._max_concurrency,
                )
            )
        task.add_done_callback(lambda _task: channel.reader_gone())
        try:
            while head:
                await channel.send(head.pop(0))
            async for block in blocks:
                await digest.update(block)
                await channel.send(block)
            sha256 = await digest.hexdigest()
            channel.close()
        except BaseException as exc:
            # Our side failed (the chunks raised, the caller was cancelled) or obstore's did.
            channel.abort()
            await self._settle(task, path, multipart=True)
            if isinstance(exc, _ReaderGone):
                raise self._failure(task, path) from None
            raise
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            channel.abort()
            await self._settle(task, path, multipart=True)
            raise
        except Exception as exc:
            await self._settle(task, path, multipart=True)
            raise map_error(exc, f"put {path!r}", missing_is_down=True) from exc
        return Written(digest.size, sha256, result.get("e_tag"), result.get("version"))

    def _failure(self, task: asyncio.Future[Any], path: str) -> StorageError:
        """The storage error for an obstore task that ended before it was given all blocks."""
        exc = task.exception() if task.done() and not task.cancelled() else None
        return map_error(
            exc or RuntimeError("the upload stopped"), f"put {path!r}", missing_is_down=True
        )

    # -- cleanup -------------------------------------------------------------------------

    async def _settle(self, task: asyncio.Future[Any], path: str, *, multipart: bool) -> None:
        """Wait (shielded) until obstore's task has finished; clean up what it left."""
        cleanup = asyncio.ensure_future(self._cleanup(task, path, multipart=multipart))
        self._background.add(cleanup)
        cleanup.add_done_callback(self._background.discard)
        await asyncio.shield(cleanup)

    async def _cleanup(self, task: asyncio.Future[Any], path: str, *, multipart: bool) -> None:
        try:
            await task
        except _Aborted:
            return  # obstore aborted the multipart upload: nothing left behind
        except Exception as exc:
            if multipart:  # obstore failed by itself: its abort may not have happened
                log.warning("upload of %s failed (%s); sweeping its multipart uploads", path, exc)
                self._spawn(self._sweep(path))
            return
        # It completed although the caller gave up (cancelled after the last block).
        self._spawn(self._remove(path))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("cleanup after a failed upload did not finish")

        task = asyncio.ensure_future(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for cleanup still running after failed uploads."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
