"""Direct sessions whose client never says how large the file is (Uppy's S3 plugin).

Uppy asks for a multipart upload with a filename and a type only, cuts the file into parts of
``max(5 MiB, size / 10,000)`` bytes and sends them straight to storage. Such a session opens
with a provisional size (the largest file Uppy's 5 MiB parts can make within the host's
limit) and learns its real size from the parts the backend holds, just before it completes:
every part but the last must be whole, as for any session, and the file's SHA-256 is
computed by reading the joined file back (nobody declared one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aecflow import actor as actors
from aecflow.actor import Role
from aecflow.breaker import admitted
from aecflow.errors import Conflict, InvalidInput
from aecflow.parts import MAX_PARTS, MIN_PART_SIZE
from aecflow.store import uploads as store
from aecflow.store.records import FileRecord
from aecflow.store.statuses import UploadStatus
from aecflow.uploads.service import UploadSessions

#: Uppy's part size for any file up to 5 MiB x 10,000 parts (about 48.8 GiB).
PART_SIZE = MIN_PART_SIZE


async def open_unsized(
    sessions: UploadSessions,
    project: str,
    filename: str,
    *,
    content_type: str | None,
    metadata: Mapping[str, Any],
    sha256: str | None = None,
) -> dict[str, Any]:
    """Open a direct session of provisional size for a client that sends 5 MiB parts."""
    size = min(sessions.runtime.settings.uploads.max_size, PART_SIZE * MAX_PARTS)
    return await sessions.open(
        project,
        filename,
        size,
        sha256=sha256,
        part_size=PART_SIZE,
        content_type=content_type,
        metadata=metadata,
        transport="direct",
    )


async def complete_unsized(sessions: UploadSessions, upload_id: str) -> tuple[FileRecord, bool]:
    """Size the session by the parts the backend holds, then complete it."""
    runtime = sessions.runtime
    row = await sessions.session_row(upload_id)
    actors.current().require(Role.WRITER, "uploading")
    if row.status == UploadStatus.OPEN:
        sessions.require_open(row)
        with admitted(runtime.breakers["storage"]):
            held = await runtime.storage.list_parts(row.storage_key, row.storage_upload_id)
        numbers = [part.number for part in held]
        if not held or numbers != list(range(1, len(held) + 1)):
            raise Conflict(
                f"the parts held are {numbers[:20]}: parts 1 to n are needed",
                code="upload_incomplete",
            )
        size = sum(part.size for part in held)
        if size > row.size:
            raise InvalidInput(
                f"the parts add up to {size} bytes, more than the limit of {row.size}",
                code="too_large",
            )
        async with runtime.engine.begin() as conn:
            await store.resize(conn, upload_id, size, len(held), runtime.clock())
    return await sessions.complete(upload_id)
