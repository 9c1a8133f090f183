"""The parts of a session: their sizes, the parts it holds, and the attempts left behind.

S3's part limits (:mod:`aecflow.parts`) hold for every backend, so that sessions move between
backends; a part must have exactly the length its number gives it
(:meth:`~aecflow.store.uploads.UploadRow.part_length`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterable

from aecflow.breaker import admitted
from aecflow.errors import InvalidInput
from aecflow.loading.runtime import Runtime
from aecflow.parts import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE
from aecflow.storage import PartInfo, Storage
from aecflow.store import uploads as store
from aecflow.store.uploads import UploadRow
from aecflow.streams import LimitedStream

log = logging.getLogger(__name__)


def choose_part_size(size: int, requested: int | None, default: int) -> int:
    """The client's part size when valid, else ``default`` grown (by doubling) to fit the file
    in ``MAX_PARTS``."""
    if requested is not None:
        if not MIN_PART_SIZE <= requested <= MAX_PART_SIZE:
            raise InvalidInput(
                f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes, "
                f"got {requested}",
                code="invalid_part_size",
            )
        if math.ceil(size / requested) > MAX_PARTS:
            raise InvalidInput(
                f"part_size {requested} cuts a file of {size} bytes into more than "
                f"{MAX_PARTS} parts",
                code="invalid_part_size",
            )
        return requested
    part_size = max(default, MIN_PART_SIZE)
    while math.ceil(size / part_size) > MAX_PARTS:
        part_size *= 2
    return part_size


class ExactStream(LimitedStream):
    """Passes ``chunks`` through, refusing (``part_size_mismatch``) a part that is longer or
    shorter than ``expected`` before a byte too many reaches storage."""

    def __init__(self, chunks: AsyncIterable[bytes], expected: int, number: int) -> None:
        super().__init__([], aiter(chunks), expected)
        self._number = number

    async def __anext__(self) -> bytes:
        try:
            return await super().__anext__()
        except StopAsyncIteration:
            if self.seen != self._max:
                self.source_failed = True
                raise self.too_large() from None
            raise

    def too_large(self) -> InvalidInput:
        got = f"{self.seen} bytes" if self.seen <= self._max else "more"
        return InvalidInput(
            f"part {self._number} must be {self._max} bytes; received {got}",
            code="part_size_mismatch",
        )


async def held(runtime: Runtime, row: UploadRow) -> dict[int, PartInfo]:
    """Parts the session holds, by number: our records, or the backend's for direct ones."""
    if row.transport == "direct":
        with admitted(runtime.breakers["storage"]):
            listed = await runtime.storage.list_parts(row.storage_key, row.storage_upload_id)
        return {part.number: part for part in listed}
    async with runtime.engine.connect() as conn:
        return {part.number: part.info() for part in await store.parts(conn, row.id)}


async def discard(storage: Storage, row: UploadRow, part: PartInfo) -> None:
    """Best effort: an attempt left behind is removed with the session anyway."""
    try:
        await storage.discard_part(row.storage_key, row.storage_upload_id, part)
    except Exception as exc:
        log.warning(
            "could not remove attempt %s of part %d of upload session %s (%s)",
            part.etag,
            part.number,
            row.id,
            exc,
        )
