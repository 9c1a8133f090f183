"""Parts of large files: S3's part-size limits (which the server's schemas and every backend
hold to), and the client's file plumbing: part sizes, one hashing pass, ranged reads.

Kept apart from the HTTP code so that both stay short. Everything that touches the disk runs in
a worker thread; the event loop only ever holds one chunk per request in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
#: Read size of the hashing pass.
HASH_CHUNK = 8 * MiB
#: Read size of request bodies: what each request in flight holds in memory.
BODY_CHUNK = 1 * MiB
DEFAULT_PART_SIZE = 16 * MiB
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000


def choose_part_size(size: int, requested: int | None = None) -> int:
    """``requested`` (default 16 MiB), doubled until ``size`` needs at most 10,000 parts."""
    part_size = requested or DEFAULT_PART_SIZE
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(f"part_size must be 5 MiB to 5 GiB, got {part_size}")
    while math.ceil(size / part_size) > MAX_PARTS:
        part_size *= 2
    return part_size


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of every part: part ``n`` (from 1) starts at ``(n-1)*part_size``."""
    return [(offset, min(part_size, size - offset)) for offset in range(0, size, part_size)]


@dataclass(frozen=True, slots=True)
class Digests:
    size: int
    sha256: str
    part_sha256: list[str]


def hash_file(
    path: Path, part_size: int | None, on_bytes: Callable[[int], None] | None = None
) -> Digests:
    """One sequential pass: the whole file's SHA-256 and, with ``part_size``, each part's.

    Blocking; run it in a thread. ``on_bytes(n)`` is called after every read.
    """
    whole = hashlib.sha256()
    parts: list[str] = []
    size = 0
    with path.open("rb") as f:
        while True:
            part = hashlib.sha256()
            left = part_size or math.inf
            read_any = False
            while left:
                data = f.read(int(min(HASH_CHUNK, left)))
                if not data:
                    break
                read_any = True
                whole.update(data)
                part.update(data)
                size += len(data)
                left -= len(data)
                if on_bytes:
                    on_bytes(len(data))
            if not read_any:
                break
            parts.append(part.hexdigest())
            if left:  # end of file inside this part
                break
    return Digests(size, whole.hexdigest(), parts if part_size else [])


async def file_chunks(
    path: Path,
    offset: int,
    length: int,
    on_bytes: Callable[[int], None] | None = None,
) -> AsyncIterator[bytes]:
    """``length`` bytes of ``path`` from ``offset``, read in 1 MiB chunks in a thread.

    A request body that never holds more than one chunk; a file that shrank raises ``OSError``.
    """
    f = await asyncio.to_thread(path.open, "rb")
    try:
        await asyncio.to_thread(f.seek, offset)
        left = length
        while left:
            data = await asyncio.to_thread(f.read, min(BODY_CHUNK, left))
            if not data:
                raise OSError(f"{path} shrank while it was being uploaded")
            left -= len(data)
            if on_bytes:
                on_bytes(len(data))
            yield data
    finally:
        f.close()
