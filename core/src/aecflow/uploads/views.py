"""The JSON views of an upload session and its parts (:class:`aecflow.schemas.UploadSession`).

A session is shown as the client needs it to resume: which parts are received and, while it is
open, where to send the others. Direct parts get the backend's presigned URLs here; host parts
get this host's URL from the HTTP layer, which knows the path it is mounted at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from aecflow import schemas
from aecflow.storage import PartInfo, Storage
from aecflow.store.statuses import UploadStatus
from aecflow.store.uploads import UploadRow


def live(row: UploadRow, now: dt.datetime) -> bool:
    """Whether parts may still be sent: open and not expired."""
    return row.status == UploadStatus.OPEN and row.expires_at > now


def shown_status(row: UploadRow, now: dt.datetime) -> UploadStatus:
    """The status, with an overdue session the sweeper has not reached shown as expired."""
    if row.status in (UploadStatus.OPEN, UploadStatus.COMPLETING) and row.expires_at <= now:
        return UploadStatus.EXPIRED
    return row.status


def summary(
    row: UploadRow, received: Mapping[int, PartInfo] | None, now: dt.datetime
) -> dict[str, Any]:
    """The session; with ``received`` (the parts held, by number), every part and the
    progress, as only an open session shows them."""
    status = shown_status(row, now)
    view: dict[str, Any] = {
        "id": row.id,
        "project": row.project,
        "filename": row.filename,
        "size": row.size,
        "sha256": row.sha256,
        "content_type": row.content_type,
        "metadata": row.meta,
        "part_size": row.part_size,
        "part_count": row.part_count,
        "transport": row.transport,
        "status": status,
        "file_id": row.file_id if status == UploadStatus.COMPLETED else None,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }
    if received is None:
        return schemas.UploadSession.model_validate(view).view()
    parts = []
    for number in range(1, row.part_count + 1):
        part = received.get(number)
        parts.append(
            {
                "number": number,
                "size": row.part_length(number),
                "received": bool(part and part.size == row.part_length(number)),
            }
        )
    view["parts_received"] = sum(1 for part in parts if part["received"])
    view["bytes_received"] = sum(part["size"] for part in parts if part["received"])
    view["parts"] = parts
    return schemas.UploadSession.model_validate(view).view()


async def view(
    storage: Storage,
    row: UploadRow,
    received: Mapping[int, PartInfo] | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """The session as ``GET /v1/uploads/{id}`` shows it; ``received`` is given while it is
    :func:`live`, and a direct session's missing parts then carry their presigned targets."""
    shown = summary(row, received, now)
    if received is None or row.transport != "direct":
        return shown
    expires = row.expires_at - now
    for part in shown["parts"]:
        if part["received"]:
            continue
        target = await storage.part_url(
            row.storage_key,
            row.storage_upload_id,
            part["number"],
            expires=expires,
            sha256=row.declared_part(part["number"]),
        )
        if target is not None:
            part.update(method=target.method, url=target.url, headers=dict(target.headers))
    return shown
