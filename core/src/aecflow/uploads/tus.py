"""Byte offsets over upload sessions: what tus 1.0 (and any client that appends at an offset)
needs from the part-based sessions.

A tus client sends a file as a series of PATCH bodies of any length, each at the offset the
server reported; a session takes numbered parts of a fixed size. This module cuts each body at
the session's part boundaries: whole parts stream straight into ``put_part`` (a body carrying
the end of a part that an earlier body started is joined to that beginning while streaming),
and what is left of a part when the body ends is kept as a *tail piece*: a staged object,
recorded as a part numbered 0, -1, -2, ... (:func:`is_piece`) in the order the bytes came,
until a later body completes the part (its pieces, then that body, stream into ``put_part``).
Memory stays one chunk per request whatever the sizes, and no byte is copied twice.

The offset is never kept as a number: it is the length of the contiguous full parts from part
1, plus the tail pieces. Every recording re-reads it under the session's row lock, so two
requests racing at the same offset cannot both be recorded (the loser gets 409 and its bytes
are removed).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from aecflow import actor as actors
from aecflow.actor import Role
from aecflow.breaker import admitted
from aecflow.errors import AecflowError, Conflict, InvalidInput, TooLarge
from aecflow.loading.runtime import Runtime
from aecflow.storage import STAGING_PREFIX, PartInfo
from aecflow.store import uploads as store
from aecflow.store.records import FileRecord
from aecflow.store.statuses import UploadStatus
from aecflow.store.uploads import UploadRow
from aecflow.uploads import sweeper
from aecflow.uploads.parts import ExactStream
from aecflow.uploads.service import UploadSessions

log = logging.getLogger(__name__)

#: Tail pieces are recorded as parts numbered 0, -1, -2, ... (real parts start at 1).
is_piece = sweeper.is_piece
#: Checksum algorithms of the tus checksum extension that are accepted.
CHECKSUMS = ("sha256", "sha1")
#: Metadata keys that are not user metadata: what the clients send about the file itself.
FILE_KEYS = frozenset(
    {"filename", "name", "filetype", "type", "content_type", "project", "sha256", "relativepath"}
)


class OffsetMismatch(Conflict):
    """The request's offset is not the upload's (tus: 409)."""

    code = "offset_mismatch"


class ChecksumMismatch(AecflowError):
    """The body's checksum is not the one the client declared (tus: 460); nothing was kept."""

    code = "checksum_mismatch"
    http_status = 460
    exit_code = 2


@dataclass(frozen=True, slots=True)
class Progress:
    """Where an upload stands: its offset, the full parts before it, and its tail pieces
    (in the order of their bytes)."""

    offset: int
    full: int
    tail: tuple[PartInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class FileFields:
    """What a client's metadata says about the file, and the user metadata left over."""

    project: str | None
    filename: str | None
    content_type: str | None
    sha256: str | None
    metadata: dict[str, str]


def file_fields(values: Mapping[str, str | None]) -> FileFields:
    """Split client metadata (tus ``Upload-Metadata``, Uppy's ``metadata``) into the file's
    own fields and aecflow user metadata (every other key with a value)."""
    lowered = {key.lower(): value for key, value in values.items() if key}

    def first(*names: str) -> str | None:
        return next((lowered[name] for name in names if lowered.get(name)), None)

    meta = {
        key: value
        for key, value in values.items()
        if key.lower() not in FILE_KEYS and value is not None and value != ""
    }
    return FileFields(
        project=first("project"),
        filename=first("filename", "name"),
        content_type=first("filetype", "type", "content_type"),
        sha256=first("sha256"),
        metadata=meta,
    )


def parse_tus_metadata(header: str | None) -> dict[str, str | None]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value optional)."""
    found: dict[str, str | None] = {}
    for item in (header or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, encoded = item.partition(" ")
        encoded = encoded.strip()
        try:
            value = base64.b64decode(encoded, validate=True).decode() if encoded else None
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(
                f"Upload-Metadata value of {key[:64]!r} is not base64 of UTF-8 text",
                code="invalid_metadata",
            ) from None
        found[key] = value
    return found


def parse_checksum(header: str | None) -> tuple[str, bytes] | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUMS:
        raise InvalidInput(
            f"checksum algorithm {algorithm[:20]!r} is not supported (use sha256 or sha1)",
            code="unsupported_checksum",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise InvalidInput("Upload-Checksum is not base64", code="invalid_checksum") from None
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise InvalidInput(
            f"Upload-Checksum has the wrong length for {algorithm}", code="invalid_checksum"
        )
    return algorithm, digest


class Cursor:
    """Takes consecutive slices of one byte stream, splitting chunks at the boundaries."""

    def __init__(self, chunks: AsyncIterable[bytes], hasher: Any = None) -> None:
        self._chunks = aiter(chunks)
        self._left = b""
        self._hasher = hasher
        self.taken = 0

    async def take(self, count: int) -> AsyncIterator[bytes]:
        """Up to ``count`` bytes (fewer if the stream ends first)."""
        while count > 0:
            if not self._left:
                try:
                    self._left = bytes(await anext(self._chunks))
                except StopAsyncIteration:
                    return
                continue
            chunk, self._left = self._left[:count], self._left[count:]
            count -= len(chunk)
            self.taken += len(chunk)
            if self._hasher is not None:
                await asyncio.to_thread(self._hasher.update, chunk)
            yield chunk


async def _chain(*sources: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    for source in sources:
        async for chunk in source:
            yield chunk


class OffsetUploads:
    """Appending at byte offsets to the host sessions of one flow (see the module doc)."""

    def __init__(self, sessions: UploadSessions) -> None:
        self.sessions = sessions
        self.runtime: Runtime = sessions.runtime

    async def row(self, upload_id: str) -> UploadRow:
        """The session, if the actor may see it."""
        return await self.sessions.session_row(upload_id)

    async def progress(self, row: UploadRow) -> Progress:
        if row.status == UploadStatus.COMPLETED:
            return Progress(row.size, row.part_count)
        async with self.runtime.engine.connect() as conn:
            return _progress(row, await store.parts(conn, row.id))

    async def append(
        self,
        upload_id: str,
        offset: int,
        length: int,
        chunks: AsyncIterable[bytes],
        *,
        checksum: tuple[str, bytes] | None = None,
    ) -> tuple[int, FileRecord | None]:
        """Write ``length`` bytes of ``chunks`` at ``offset``; returns the new offset and, when
        that completes the file, the file it published."""
        runtime = self.runtime
        async with runtime.audit.operation("upload.append", read_only=False) as op:
            row = await self.row(upload_id)
            op.note(project=row.project, file_id=row.file_id, details={"upload_id": upload_id})
            actors.current().require(Role.WRITER, "uploading")
            self.sessions.require_open(row)
            if row.transport != "host":
                raise Conflict(
                    "parts of this session go straight to storage, not through the host",
                    code="direct_upload",
                )
            now = await self.progress(row)
            if offset != now.offset:
                raise OffsetMismatch(
                    f"the upload is at offset {now.offset}, the request says {offset}"
                )
            if offset + length > row.size:
                raise TooLarge(
                    f"{length} bytes at offset {offset} pass the upload's length of {row.size}"
                )
            hasher = hashlib.new(checksum[0]) if checksum else None
            position = await self._write(row, now, Cursor(chunks, hasher), length, checksum)
            op.note(bytes_in=position - offset)
        record = None
        if position == row.size:
            record, _ = await self.sessions.complete(upload_id)
        return position, record

    async def finish(self, row: UploadRow) -> FileRecord | None:
        """Publish an upload whose bytes are all there but whose completion did not run (or
        failed transiently); ``None`` while bytes are missing."""
        if row.status == UploadStatus.COMPLETED:
            return (await self.sessions.complete(row.id))[0]
        if row.status != UploadStatus.OPEN or (await self.progress(row)).offset != row.size:
            return None
        return (await self.sessions.complete(row.id))[0]

    async def _write(
        self,
        row: UploadRow,
        start: Progress,
        cursor: Cursor,
        length: int,
        checksum: tuple[str, bytes] | None,
    ) -> int:
        """Store the body; without a checksum each full part is recorded as soon as it is
        stored (a dropped connection keeps them), with one everything is recorded at the end
        or not at all."""
        storage = self.runtime.storage
        position, number = start.offset, start.full + 1
        pieces = list(start.tail)  # the tail pieces of part ``number`` the rows hold
        recorded_at = position  # the offset the rows say, for the next recording's check
        pending: list[PartInfo] = []  # stored, not recorded yet
        new_piece: PartInfo | None = None
        cleared = False  # the recorded pieces are consumed: drop them when recording
        try:
            while position < start.offset + length:
                part_start = (number - 1) * row.part_size
                part_end = part_start + row.part_length(number)
                left = start.offset + length - position
                if left >= part_end - position:
                    old = [storage.open(piece.etag or "") for piece in pieces]
                    body = cursor.take(part_end - position)
                    stream = ExactStream(_chain(*old, body), row.part_length(number), number)
                    with admitted(
                        self.runtime.breakers["storage"],
                        caller_failed=lambda s=stream: s.source_failed,  # type: ignore[misc]
                    ):
                        stored = await storage.put_part(
                            row.storage_key,
                            row.storage_upload_id,
                            number,
                            stream,
                            offset=part_start,
                        )
                    pending.append(stored)
                    position, number = part_end, number + 1
                    cleared, pieces = cleared or bool(pieces), []
                else:
                    key = f"{STAGING_PREFIX}/tus/{row.id}/{uuid.uuid4().hex}"
                    with admitted(self.runtime.breakers["storage"]):
                        piece = await storage.put(key, cursor.take(left), size=left)
                    new_piece = PartInfo(-len(pieces), piece.size, piece.sha256 or "", key)
                    if piece.size != left:  # the body ended early: keep nothing of it
                        raise InvalidInput(
                            f"the body ended after {cursor.taken} of {length} bytes",
                            code="body_incomplete",
                        )
                    position += left
                if checksum is None:
                    stale = await self._record(row, recorded_at, pending, new_piece, cleared)
                    if new_piece is not None:
                        pieces.append(new_piece)
                    recorded_at, pending, new_piece, cleared = position, [], None, False
                    await self._drop(stale)
            if cursor.taken != length:
                raise InvalidInput(
                    f"the body ended after {cursor.taken} of {length} bytes",
                    code="body_incomplete",
                )
            if checksum is not None:
                assert cursor._hasher is not None
                if cursor._hasher.digest() != checksum[1]:
                    raise ChecksumMismatch(
                        f"the body's {checksum[0]} is not the Upload-Checksum; nothing was kept"
                    )
                stale = await self._record(row, recorded_at, pending, new_piece, cleared)
                pending, new_piece = [], None
                await self._drop(stale)
        except BaseException:
            await asyncio.shield(self._discard(row, pending, new_piece))
            raise
        return position

    async def _record(
        self,
        row: UploadRow,
        expected: int,
        parts: list[PartInfo],
        piece: PartInfo | None,
        cleared: bool,
    ) -> list[PartInfo]:
        """Record ``parts`` and a new tail piece (after dropping the recorded pieces when
        ``cleared``: a part consumed them), if the upload is still at ``expected``; returns
        the pieces no longer recorded, whose objects may go."""
        async with self.runtime.engine.begin() as conn:
            if not await store.touch_open(conn, row.id, self.runtime.clock()):
                self.sessions.require_open(await self.sessions.session_row(row.id))
                raise Conflict(f"upload session {row.id} is not open")
            rows = await store.parts(conn, row.id)
            now = _progress(row, rows)
            if now.offset != expected:
                raise OffsetMismatch(
                    f"another request moved the upload to offset {now.offset} meanwhile"
                )
            stale = []
            if cleared:
                for old in rows:
                    if is_piece(old.number):
                        await store.delete_part(conn, row.id, old.number)
                        stale.append(old.info())
            for part in [*parts, *([piece] if piece else [])]:
                await store.delete_part(conn, row.id, part.number)
                await store.insert_part(conn, row.id, part, self.runtime.clock())
        return stale

    async def _discard(self, row: UploadRow, parts: list[PartInfo], piece: PartInfo | None) -> None:
        storage = self.runtime.storage
        for part in parts:
            try:
                await storage.discard_part(row.storage_key, row.storage_upload_id, part)
            except Exception as exc:
                log.warning("could not remove part %d of %s (%s)", part.number, row.id, exc)
        if piece is not None:
            await self._drop([piece])

    async def _drop(self, pieces: list[PartInfo]) -> None:
        for piece in pieces:
            try:
                await self.runtime.storage.delete(piece.etag or "")
            except Exception as exc:
                log.warning("could not remove tail piece %s (%s)", piece.etag, exc)


def _progress(row: UploadRow, rows: list[store.PartRow]) -> Progress:
    by_number = {part.number: part.info() for part in rows}
    full = 0
    while full < row.part_count:
        part = by_number.get(full + 1)
        if part is None or part.size != row.part_length(full + 1):
            break
        full += 1
    offset = min(full * row.part_size, row.size)
    tail: tuple[PartInfo, ...] = ()
    if full < row.part_count:
        tail = tuple(sorted((p for n, p in by_number.items() if is_piece(n)), key=_order))
        offset += sum(piece.size for piece in tail)
    return Progress(offset, full, tail)


def _order(piece: PartInfo) -> int:
    return -piece.number
