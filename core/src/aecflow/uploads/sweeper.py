"""The sweeper: expires overdue sessions and removes the parts of expired and aborted ones.

Every host and worker runs it (:func:`run_sweeper`, with the observed
:meth:`~aecflow.uploads.service.UploadSessions.sweep`); it is safe to run in several at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aecflow.breaker import admitted
from aecflow.loading.runtime import Runtime
from aecflow.store import uploads as store
from aecflow.store.uploads import UploadRow

log = logging.getLogger(__name__)


def is_piece(number: int) -> bool:
    """Whether a part number is a tus upload's tail piece (0, -1, ...: :mod:`.tus`)."""
    return number <= 0


#: Sessions cleaned per sweep round.
SWEEP_BATCH = 100


async def sweep(runtime: Runtime) -> int:
    """Expire overdue sessions and remove the parts of expired and aborted ones; returns
    how many sessions were cleaned."""
    now = runtime.clock()
    async with runtime.engine.begin() as conn:
        await store.expire_overdue(conn, now)
        pending = await store.to_clean(conn, SWEEP_BATCH)
    cleaned = 0
    for row in pending:
        try:
            await clean(runtime, row)
            cleaned += 1
        except Exception as exc:
            log.warning("could not clean upload session %s (%s); will retry", row.id, exc)
    return cleaned


async def clean(runtime: Runtime, row: UploadRow) -> None:
    """Remove the parts, and the file if a failed completion had joined them already."""
    storage = runtime.storage
    async with runtime.engine.connect() as conn:
        pieces = [part.etag for part in await store.parts(conn, row.id) if is_piece(part.number)]
    with admitted(runtime.breakers["storage"]):
        for piece in pieces:  # a tus upload's tail pieces (see aecflow.uploads.tus)
            if piece:
                await storage.delete(piece)
        await storage.abort_multipart(row.storage_key, row.storage_upload_id)
        await storage.delete(row.storage_key)
    async with runtime.engine.begin() as conn:
        await store.mark_cleaned(conn, row.id, runtime.clock())
    log.info("removed the parts of upload session %s (%s)", row.id, row.status)


async def run_sweeper(
    sweep: Callable[[], Awaitable[int]], interval_s: float, stop: asyncio.Event
) -> None:
    """Call ``sweep`` every ``interval_s`` seconds until ``stop`` is set; a failed round is
    logged and the next one tries again."""
    while not stop.is_set():
        try:
            await sweep()
        except Exception as exc:
            log.warning("upload sweep failed (%s: %s); retrying", type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
