"""Small async-stream helpers for the ingest path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from aecflow.errors import TooLarge

CHUNK = 1024 * 1024
HEAD_BYTES = 4096


async def read_head(chunks: AsyncIterator[bytes], want: int = HEAD_BYTES) -> list[bytes]:
    """Pull chunks until at least ``want`` bytes (or the end) so processors can sniff them."""
    head: list[bytes] = []
    total = 0
    while total < want:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            break
        if chunk:
            head.append(bytes(chunk))
            total += len(chunk)
    return head


class LimitedStream:
    """``head`` then ``rest``, raising ``TooLarge`` as soon as ``max_size`` is passed.

    ``source_failed`` tells the storage breaker that a failure came from the sender (a client
    that went away, a size limit), not from the storage backend.
    """

    def __init__(self, head: list[bytes], rest: AsyncIterator[bytes], max_size: int) -> None:
        self._head = list(head)
        self._rest = rest
        self._max = max_size
        self.seen = 0
        self.source_failed = False

    def __aiter__(self) -> LimitedStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            if self._head:
                chunk = self._head.pop(0)
            else:
                chunk = b""
                while not chunk:  # skip empty chunks some senders produce
                    chunk = bytes(await anext(self._rest))
            self.seen += len(chunk)
            if self.seen > self._max:
                raise self.too_large()
            return chunk
        except StopAsyncIteration:
            raise
        except BaseException:
            self.source_failed = True
            raise

    def too_large(self) -> Exception:
        """The error for a stream that passed ``max_size``."""
        return TooLarge(f"the file is larger than the limit of {self._max} bytes")


async def file_chunks(path: Path, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
    """Read a local file in ``chunk_size`` pieces without blocking the event loop."""
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, chunk_size):
            yield chunk


async def aiter_bytes(data: bytes, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]
