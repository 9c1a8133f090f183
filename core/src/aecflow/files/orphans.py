"""The orphan sweep: stored objects that no file row owns.

Ingest stores the bytes first and commits the row after (the row must name an object that
exists). If the process dies between the two, nothing is left to remove the object: the
``except`` that would is gone with the process. Workers therefore look, every ``[worker]
orphan_sweep_interval_s``, for objects under the files' key space (``{project}/{file_id}``)
older than ``orphan_max_age_s`` whose id neither a file row nor an upload session claims,
and delete them. The age keeps the sweep off ingests still in flight; the ids are looked up
by primary key in batches, so the cost is one storage listing plus a few indexed queries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from contextlib import suppress

from aecflow.ids import looks_like_id
from aecflow.loading.runtime import Runtime
from aecflow.storage import STAGING_PREFIX
from aecflow.store import files as file_rows

log = logging.getLogger(__name__)

BATCH = 500


def file_id_of(key: str) -> str | None:
    """The file id in a key of the form ``{project}/{file_id}``, else ``None`` (staging,
    temp files and anything else the core did not name that way are never swept)."""
    project, sep, rest = key.partition("/")
    if not sep or not project or project.startswith(".") or key.startswith(STAGING_PREFIX):
        return None
    return rest if looks_like_id(rest) else None


async def sweep_orphans(runtime: Runtime, older_than_s: float) -> int:
    """Delete objects older than ``older_than_s`` that no row owns; returns how many went."""
    cutoff = runtime.clock() - dt.timedelta(seconds=older_than_s)
    removed = 0
    batch: dict[str, str] = {}

    async def settle() -> int:
        async with runtime.engine.connect() as conn:
            owned = await file_rows.claimed_ids(conn, list(batch))
        gone = 0
        for file_id, key in batch.items():
            if file_id in owned:
                continue
            await runtime.storage.delete(key)
            log.warning("removed orphaned object %s (no file row owns it)", key)
            gone += 1
        batch.clear()
        return gone

    async for info in runtime.storage.list(""):
        file_id = file_id_of(info.key)
        if file_id is None or info.last_modified is None or info.last_modified > cutoff:
            continue
        batch[file_id] = info.key
        if len(batch) >= BATCH:
            removed += await settle()
    if batch:
        removed += await settle()
    return removed


async def run_sweeper(runtime: Runtime, stop: asyncio.Event) -> None:
    """Sweep every ``[worker] orphan_sweep_interval_s`` until ``stop`` is set."""
    settings = runtime.settings.worker
    if not settings.orphan_sweep_interval_s:
        return
    while True:
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.orphan_sweep_interval_s)
        if stop.is_set():
            return
        try:
            await sweep_orphans(runtime, settings.orphan_max_age_s)
        except Exception as exc:
            log.warning("orphan sweep failed (%s: %s); retrying", type(exc).__name__, exc)
