"""Resumable upload sessions: one file sent as numbered parts, surviving dropped connections.

The session row is the server's record of what is expected (size, part size, checksums); it is
what a client asks after an interruption to learn which parts to send again. Parts the host
receives are hashed while they stream and recorded in ``upload_parts``; parts a client sends
straight to the storage backend (S3 presigned URLs) are learned from the backend itself.

Completing publishes the file in the same transaction as a streamed upload (file row, job,
events, audit) and marks the session completed inside it, so completing twice returns the same
file and never publishes two.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import logging
import math
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow import actor as actors
from aecflow import schemas, telemetry, validation
from aecflow.access.audit import Operation
from aecflow.actor import Role
from aecflow.breaker import admitted
from aecflow.clock import iso
from aecflow.errors import (
    AecflowError,
    Conflict,
    InvalidInput,
    NotFound,
    ObjectNotFound,
    StorageError,
    StorageInvalid,
    TooLarge,
)
from aecflow.files.ingest import Ingest, Unprocessable, choose_processor
from aecflow.files.reads import Reads
from aecflow.ids import looks_like_id, uuid7
from aecflow.loading.runtime import Runtime
from aecflow.observe import timed
from aecflow.storage import AssembledObject, PartInfo, Storage
from aecflow.store.records import FileRecord
from aecflow.store.schema import upload_parts, uploads
from aecflow.store.statuses import UploadStatus
from aecflow.streams import HEAD_BYTES, LimitedStream

log = logging.getLogger(__name__)
Method = TypeVar("Method", bound=Callable[..., Awaitable[Any]])

MiB = 1024 * 1024
#: S3's limits, which every backend is held to so that sessions move between backends.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
#: How long one ``complete`` call owns a session before another may take over.
COMPLETE_LEASE = dt.timedelta(minutes=15)
#: Sessions cleaned per sweep round.
SWEEP_BATCH = 100


#: Arbitrary constant: the advisory lock that serialises the quota check of opening sessions.
QUOTA_LOCK_ID = 0x61657571


class QuotaExceeded(AecflowError):
    """Too many open sessions, or too many bytes declared by them, for a project or a token."""

    code = "upload_quota_exceeded"
    http_status = 429
    exit_code = 4


class UploadExpired(AecflowError):
    """The session outlived ``[uploads] session_ttl_s``; its parts are gone."""

    code = "upload_expired"
    http_status = 410
    exit_code = 4


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


def part_length(row: Mapping[str, Any], number: int) -> int:
    """How many bytes part ``number`` (from 1) of the session must have."""
    start = (number - 1) * row["part_size"]
    return min(row["part_size"], row["size"] - start)


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


def observed(name: str) -> Callable[[Method], Method]:
    """Time an operation as an observation (monitors, the ``aecflow.operations`` metric) and
    a span, like every other operation of the flow."""

    def wrap(method: Method) -> Method:
        @functools.wraps(method)
        async def run(self: UploadSessions, *args: Any, **kwargs: Any) -> Any:
            with (
                timed(name, self.runtime.plugins.observe),
                telemetry.tracer.start_as_current_span(f"aecflow.{name}"),
            ):
                return await method(self, *args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap


class UploadSessions:
    """Open, fill, complete, abort and sweep upload sessions of one flow."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._ingest = Ingest(runtime)
        self._reads = Reads(runtime)

    @property
    def _storage(self) -> Storage:
        return self.runtime.storage

    # -- opening and reading ---------------------------------------------------------------

    @observed("upload.open")
    async def open(
        self,
        project: str,
        filename: str,
        size: int,
        *,
        sha256: str | None = None,
        part_size: int | None = None,
        part_sha256: Sequence[str] | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Open a session for a file of ``size`` bytes; returns its view (with part targets)."""
        runtime = self.runtime
        async with runtime.audit.operation(
            "upload.open", read_only=False, project=str(project)[:64]
        ) as op:
            project = validation.project_name(project)
            who = actors.current()
            who.require_project(project)
            who.require(Role.WRITER, "uploading")
            filename = validation.filename(filename)
            meta = validation.metadata(metadata)
            content_type = validation.content_type(content_type)
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise InvalidInput("size must be a positive number of bytes", code="invalid_size")
            if size > runtime.settings.uploads.max_size:
                raise TooLarge(
                    f"a file of {size} bytes is larger than the limit of "
                    f"{runtime.settings.uploads.max_size} bytes"
                )
            declared = validation.sha256_hex(sha256) if sha256 else None
            direct = self._storage.direct_upload
            if direct and declared is None:
                raise InvalidInput(
                    "sha256 is required: parts go straight to storage, so the server never "
                    "sees the bytes to compute it",
                    code="sha256_required",
                )
            part_size = choose_part_size(size, part_size, runtime.settings.uploads.part_size)
            part_count = math.ceil(size / part_size)
            parts_declared = None
            if part_sha256 is not None:
                if not isinstance(part_sha256, list | tuple) or len(part_sha256) != part_count:
                    raise InvalidInput(
                        f"part_sha256 must list one SHA-256 per part ({part_count})",
                        code="invalid_checksum",
                    )
                parts_declared = [validation.sha256_hex(value) for value in part_sha256]
            if runtime.settings.processing.refuse_unprocessable and not self._may_process(
                filename, content_type
            ):
                raise Unprocessable(f"no processor accepts {filename!r}")
            upload_id, file_id = uuid7(), uuid7()
            key = f"{project}/{file_id}"
            with admitted(runtime.breakers["storage"]):
                handle = await self._storage.create_multipart(
                    key,
                    content_type=content_type,
                    metadata={"project": project, "file-id": file_id},
                    part_checksums=parts_declared is not None,
                )
            now = self.runtime.clock()
            row = {
                "id": upload_id,
                "project": project,
                "filename": filename,
                "size": size,
                "sha256": declared,
                "part_size": part_size,
                "part_count": part_count,
                "part_sha256": parts_declared,
                "content_type": content_type,
                "meta": meta,
                "transport": "direct" if direct else "host",
                "storage_backend": self._storage.name,
                "storage_key": key,
                "storage_upload_id": handle,
                "file_id": file_id,
                "status": UploadStatus.OPEN,
                "created_at": now,
                "updated_at": now,
                "expires_at": now + dt.timedelta(seconds=runtime.settings.uploads.session_ttl_s),
            }
            op.note(file_id=file_id, storage_key=key, details={"upload_id": upload_id})
            if who.id.startswith("token:"):
                row["opened_by"] = who.id
            try:
                async with runtime.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        await conn.execute(
                            sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": QUOTA_LOCK_ID}
                        )
                    # Inserted first: on SQLite the insert takes the write lock, so the counts
                    # below see every session committed before, and this one.
                    await conn.execute(sa.insert(uploads).values(**row))
                    await self._check_quota(conn, row, now)
                    await op.write(conn)
            except BaseException:
                await asyncio.shield(self._discard(key, handle))
                raise
        return await self._view(row)

    async def _check_quota(
        self, conn: AsyncConnection, row: Mapping[str, Any], now: dt.datetime
    ) -> None:
        """Refuse the session just inserted if it takes its project or its token past the
        caps on open sessions or on the bytes they declare (``[uploads] max_open_*``)."""
        limits = self.runtime.settings.uploads
        scopes = [
            (uploads.c.project, row["project"], f"project {row['project']!r}", "project"),
        ]
        if row.get("opened_by"):
            scopes.append((uploads.c.opened_by, row["opened_by"], "this token", "token"))
        for column, value, who, kind in scopes:
            count, declared = (
                await conn.execute(
                    sa.select(
                        sa.func.count(), sa.func.coalesce(sa.func.sum(uploads.c.size), 0)
                    ).where(
                        column == value,
                        uploads.c.status.in_([UploadStatus.OPEN, UploadStatus.COMPLETING]),
                        uploads.c.expires_at > now,
                    )
                )
            ).one()
            max_sessions = getattr(limits, f"max_open_sessions_per_{kind}")
            max_bytes = getattr(limits, f"max_open_bytes_per_{kind}")
            if count > max_sessions:
                raise QuotaExceeded(
                    f"{who} already has {count - 1} open upload sessions (the limit is "
                    f"{max_sessions}); complete or abort one first"
                )
            if declared > max_bytes:
                raise QuotaExceeded(
                    f"{who}'s open upload sessions would declare {declared} bytes (the limit "
                    f"is {max_bytes}); complete or abort one first"
                )

    def _may_process(self, filename: str, content_type: str | None) -> bool:
        """Whether some processor declares the file's suffix or media type. Checked up front so
        that a refused file is refused before gigabytes are sent; the full check (with the
        first bytes) runs again on completion."""
        suffix = Path(filename).suffix.lower()
        media_type = (content_type or "").split(";")[0]
        return any(
            suffix in binding.processor.suffixes or media_type in binding.processor.media_types
            for binding in self.runtime.processors.values()
        )

    async def describe(self, upload_id: str) -> dict[str, Any]:
        """The session, its parts and where to send those still missing."""
        row = await self._load(upload_id)
        return await self._view(row)

    async def admit_part(self, upload_id: str) -> None:
        """Refuse (and audit) a part the actor may not send, before its body is read: a
        request that will be refused must not hold an upload slot while it streams."""
        op = Operation(self.runtime.audit, "upload.part", False)
        try:
            row = await self._load(upload_id)
            op.note(project=row["project"], file_id=row["file_id"])
            actors.current().require(Role.WRITER, "uploading")
            self._require_open(row)
        except AecflowError as exc:
            outcome = "denied" if exc.code in ("forbidden", "project_not_found") else "error"
            await self.runtime.audit.record(op.row(outcome, exc.code))
            raise

    async def find(
        self,
        project: str,
        *,
        sha256: str | None = None,
        filename: str | None = None,
        size: int | None = None,
    ) -> list[dict[str, Any]]:
        """Open sessions of ``project`` (newest first), narrowed by the file's identity."""
        project = validation.project_name(project)
        actors.current().require_project(project)
        query = sa.select(uploads).where(
            uploads.c.project == project,
            uploads.c.status == UploadStatus.OPEN,
            uploads.c.expires_at > self.runtime.clock(),
        )
        if sha256:
            query = query.where(uploads.c.sha256 == validation.sha256_hex(sha256))
        if filename:
            query = query.where(uploads.c.filename == filename)
        if size is not None:
            query = query.where(uploads.c.size == size)
        async with self.runtime.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(uploads.c.id.desc()).limit(100))).mappings()
            found = [dict(row) for row in rows]
        return [self._summary(row, None) for row in found]

    async def _load(self, upload_id: str, conn: AsyncConnection | None = None) -> dict[str, Any]:
        if not looks_like_id(upload_id):
            raise NotFound(f"upload session {upload_id!r} does not exist", code="upload_not_found")
        query = sa.select(uploads).where(uploads.c.id == upload_id)
        if conn is None:
            async with self.runtime.engine.connect() as own:
                row = (await own.execute(query)).mappings().first()
        else:
            row = (await conn.execute(query)).mappings().first()
        who = actors.current()
        if row is None or not who.sees(row["project"]):
            raise NotFound(f"upload session {upload_id!r} does not exist", code="upload_not_found")
        return dict(row)

    async def _received(self, row: Mapping[str, Any]) -> dict[int, PartInfo]:
        """Parts the session holds, by number: our records, or the backend's for direct ones."""
        if row["transport"] == "direct":
            with admitted(self.runtime.breakers["storage"]):
                listed = await self._storage.list_parts(
                    row["storage_key"], row["storage_upload_id"]
                )
            return {part.number: part for part in listed}
        async with self.runtime.engine.connect() as conn:
            result = await conn.execute(
                sa.select(upload_parts).where(upload_parts.c.upload_id == row["id"])
            )
            return {
                part.number: PartInfo(part.number, part.size, part.sha256, part.etag)
                for part in result
            }

    async def _view(self, row: Mapping[str, Any]) -> dict[str, Any]:
        live = row["status"] == UploadStatus.OPEN and row["expires_at"] > self.runtime.clock()
        received = await self._received(row) if live else None
        view = self._summary(row, received)
        if not live:
            return view
        if row["transport"] == "direct":  # host parts get their URL from the HTTP layer
            expires = row["expires_at"] - self.runtime.clock()
            declared = row["part_sha256"] or []
            for part in view["parts"]:
                if part["received"]:
                    continue
                target = await self._storage.part_url(
                    row["storage_key"],
                    row["storage_upload_id"],
                    part["number"],
                    expires=expires,
                    sha256=declared[part["number"] - 1] if declared else None,
                )
                if target is not None:
                    part.update(method=target.method, url=target.url, headers=dict(target.headers))
        return view

    def _summary(
        self, row: Mapping[str, Any], received: Mapping[int, PartInfo] | None
    ) -> dict[str, Any]:
        status = row["status"]
        if (
            status in (UploadStatus.OPEN, UploadStatus.COMPLETING)
            and row["expires_at"] <= self.runtime.clock()
        ):
            status = UploadStatus.EXPIRED
        view: dict[str, Any] = {
            "id": row["id"],
            "project": row["project"],
            "filename": row["filename"],
            "size": row["size"],
            "sha256": row["sha256"],
            "content_type": row["content_type"],
            "metadata": row["meta"],
            "part_size": row["part_size"],
            "part_count": row["part_count"],
            "transport": row["transport"],
            "status": status,
            "file_id": row["file_id"] if status == UploadStatus.COMPLETED else None,
            "created_at": row["created_at"],
            "expires_at": row["expires_at"],
        }
        if received is None:
            return schemas.UploadSession.model_validate(view).view()
        parts = []
        for number in range(1, row["part_count"] + 1):
            part = received.get(number)
            parts.append(
                {
                    "number": number,
                    "size": part_length(row, number),
                    "received": bool(part and part.size == part_length(row, number)),
                }
            )
        view["parts_received"] = sum(1 for part in parts if part["received"])
        view["bytes_received"] = sum(part["size"] for part in parts if part["received"])
        view["parts"] = parts
        return schemas.UploadSession.model_validate(view).view()

    # -- parts through the host ------------------------------------------------------------

    @observed("upload.part")
    async def receive_part(
        self,
        upload_id: str,
        number: int,
        chunks: AsyncIterable[bytes],
        *,
        sha256: str | None = None,
    ) -> dict[str, Any]:
        """Store part ``number`` of a host session from ``chunks`` (exactly its length)."""
        runtime = self.runtime
        async with runtime.audit.operation("upload.part", read_only=False) as op:
            row = await self._load(upload_id)
            op.note(project=row["project"], file_id=row["file_id"])
            who = actors.current()
            who.require(Role.WRITER, "uploading")
            self._require_open(row)
            if row["transport"] != "host":
                raise Conflict(
                    "parts of this session go straight to storage: use the URLs that "
                    f"GET /v1/uploads/{upload_id} lists",
                    code="direct_upload",
                )
            if not 1 <= number <= row["part_count"]:
                raise InvalidInput(
                    f"part number must be between 1 and {row['part_count']}, got {number}",
                    code="invalid_part_number",
                )
            declared = validation.sha256_hex(sha256) if sha256 else None
            if declared is None and row["part_sha256"]:
                declared = row["part_sha256"][number - 1]
            stream = ExactStream(chunks, part_length(row, number), number)
            # A part being (re)written is not received: a backend that still writes in place
            # may already be overwriting the earlier copy.
            forgotten = await self._forget_part(upload_id, number)
            if forgotten is not None:
                await asyncio.shield(self._discard_part(row, forgotten))
            try:
                with admitted(
                    runtime.breakers["storage"], caller_failed=lambda: stream.source_failed
                ):
                    stored = await self._storage.put_part(
                        row["storage_key"],
                        row["storage_upload_id"],
                        number,
                        stream,
                        offset=(number - 1) * row["part_size"],
                    )
            except StorageError:  # e.g. completion removed the parts under it: say so
                self._require_open(await self._load(upload_id))
                raise
            try:
                digest = stored.sha256
                if digest is None:
                    raise StorageInvalid(
                        f"storage backend {self._storage.name!r} returned no SHA-256"
                    )
                op.note(bytes_in=stored.size, details={"upload_id": upload_id, "part": number})
                if declared is not None and digest != declared:
                    raise InvalidInput(
                        f"SHA-256 mismatch in part {number}: the client said {declared}, the "
                        f"server received {digest}; send it again",
                        code="checksum_mismatch",
                    )
                replaced = await self._record_part(upload_id, stored, op)
            except BaseException:  # not recorded: this attempt's bytes are never published
                await asyncio.shield(self._discard_part(row, stored))
                raise
            if replaced is not None and replaced.etag != stored.etag:
                await asyncio.shield(self._discard_part(row, replaced))
        receipt = schemas.PartReceipt(number=number, size=stored.size, sha256=digest)
        return receipt.model_dump(mode="json")

    async def _record_part(
        self, upload_id: str, stored: PartInfo, op: Operation
    ) -> PartInfo | None:
        """Record ``stored`` as the part, if the session is still open; returns the attempt it
        replaced. The session row is updated first: that locks it, so recordings of one
        session and its ``complete`` claim run one after the other, and the last attempt to
        finish before the claim is the one completion publishes."""
        async with self.runtime.engine.begin() as conn:
            await self._lock_open(conn, upload_id)
            old = await self._delete_part(conn, upload_id, stored.number)
            await conn.execute(
                sa.insert(upload_parts).values(
                    upload_id=upload_id,
                    number=stored.number,
                    size=stored.size,
                    sha256=stored.sha256,
                    etag=stored.etag,
                    received_at=self.runtime.clock(),
                )
            )
            await op.write(conn)
        return old

    async def _delete_part(
        self, conn: AsyncConnection, upload_id: str, number: int
    ) -> PartInfo | None:
        """Remove the record of part ``number``; returns the attempt it named, if any."""
        where = sa.and_(upload_parts.c.upload_id == upload_id, upload_parts.c.number == number)
        old = (await conn.execute(sa.select(upload_parts).where(where))).first()
        await conn.execute(sa.delete(upload_parts).where(where))
        return None if old is None else PartInfo(old.number, old.size, old.sha256, old.etag)

    async def _lock_open(self, conn: AsyncConnection, upload_id: str) -> None:
        """Touch the session row (locking it until ``conn`` commits); raises unless open."""
        still_open = await conn.execute(
            sa.update(uploads)
            .where(uploads.c.id == upload_id, uploads.c.status == UploadStatus.OPEN)
            .values(updated_at=self.runtime.clock())
        )
        if still_open.rowcount != 1:  # aborted or completing while the part streamed
            self._require_open(await self._load(upload_id, conn))
            raise Conflict(f"upload session {upload_id} is not open")

    async def _discard_part(self, row: Mapping[str, Any], part: PartInfo) -> None:
        """Best effort: an attempt left behind is removed with the session anyway."""
        try:
            await self._storage.discard_part(row["storage_key"], row["storage_upload_id"], part)
        except Exception as exc:
            log.warning(
                "could not remove attempt %s of part %d of upload session %s (%s)",
                part.etag,
                part.number,
                row["id"],
                exc,
            )

    async def _forget_part(self, upload_id: str, number: int) -> PartInfo | None:
        """Unrecord part ``number`` while the session is open (never under a completion that
        already listed it); returns the attempt that was recorded."""
        async with self.runtime.engine.begin() as conn:
            await self._lock_open(conn, upload_id)
            return await self._delete_part(conn, upload_id, number)

    def _require_open(self, row: Mapping[str, Any]) -> None:
        status = row["status"]
        if status == UploadStatus.COMPLETED:
            raise Conflict(
                f"upload session {row['id']} is already completed (file {row['file_id']})",
                code="upload_completed",
            )
        if status == UploadStatus.ABORTED:
            raise Conflict(f"upload session {row['id']} was aborted", code="upload_aborted")
        if status == UploadStatus.EXPIRED or row["expires_at"] <= self.runtime.clock():
            raise UploadExpired(
                f"upload session {row['id']} expired at {iso(row['expires_at'])}; start a new one"
            )
        if status == UploadStatus.COMPLETING:
            raise Conflict(
                f"upload session {row['id']} is being completed; ask again shortly",
                code="upload_completing",
            )

    # -- completing ------------------------------------------------------------------------

    @observed("upload.complete")
    async def complete(self, upload_id: str) -> tuple[FileRecord, bool]:
        """Verify and publish; returns the file and whether this call published it."""
        runtime = self.runtime
        async with runtime.audit.operation("upload.complete", read_only=False) as op:
            row = await self._load(upload_id)
            op.note(project=row["project"], file_id=row["file_id"], storage_key=row["storage_key"])
            actors.current().require(Role.WRITER, "uploading")
            if row["status"] == UploadStatus.COMPLETED:
                return await self._reads.get(row["file_id"]), False
            if not await self._claim(upload_id):
                row = await self._load(upload_id)
                if row["status"] == UploadStatus.COMPLETED:  # a concurrent call just finished it
                    return await self._reads.get(row["file_id"]), False
                self._require_open(row)
                raise Conflict(f"upload session {upload_id} cannot be completed now")
            try:
                assembled = await self._assemble(row)
            except BaseException:  # the parts are still there: the client may try again
                await asyncio.shield(self._set_status(upload_id, UploadStatus.OPEN))
                raise
            op.note(bytes_in=assembled.size)
            try:
                record = await self._publish(row, assembled, op)
            except InvalidInput:  # wrong checksum or size, or a refused file: nothing to retry
                await asyncio.shield(self._give_up(row))
                raise
            except BaseException:  # e.g. the database went away: the joined file waits
                await asyncio.shield(self._reopen(upload_id))
                raise
            return record, True

    async def _assemble(self, row: Mapping[str, Any]) -> AssembledObject:
        """Join the verified parts into the file, or find the file an earlier call joined
        before its publication failed."""
        runtime, key = self.runtime, row["storage_key"]
        with admitted(runtime.breakers["storage"]):
            try:
                info = await self._storage.stat(key)
            except ObjectNotFound:
                info = None
        if info is not None:  # the parts are gone (joined); the file is what they made
            direct = row["transport"] == "direct"
            sha256 = row["sha256"] if direct else await self._sha256_of(key)
            return AssembledObject(key, info.size, sha256, info.etag)
        parts = await self._verified_parts(row)
        with admitted(runtime.breakers["storage"]):
            return await self._storage.complete_multipart(
                key,
                row["storage_upload_id"],
                parts,
                content_type=row["content_type"],
                metadata={"project": row["project"], "file-id": row["file_id"]},
            )

    async def _sha256_of(self, key: str) -> str:
        digest = hashlib.sha256()
        async for chunk in self._storage.open(key):
            await asyncio.to_thread(digest.update, chunk)
        return digest.hexdigest()

    async def _reopen(self, upload_id: str) -> None:
        """Best effort: when the database is what failed, the completing lease runs out and
        the next ``complete`` takes over instead."""
        try:
            await self._set_status(upload_id, UploadStatus.OPEN)
        except Exception as exc:
            log.warning("could not reopen upload session %s (%s)", upload_id, exc)

    async def _claim(self, upload_id: str) -> bool:
        now = self.runtime.clock()
        async with self.runtime.engine.begin() as conn:
            result = await conn.execute(
                sa.update(uploads)
                .where(
                    uploads.c.id == upload_id,
                    uploads.c.expires_at > now,
                    sa.or_(
                        uploads.c.status == UploadStatus.OPEN,
                        sa.and_(
                            uploads.c.status == UploadStatus.COMPLETING, uploads.c.lease_until < now
                        ),
                    ),
                )
                .values(
                    status=UploadStatus.COMPLETING, lease_until=now + COMPLETE_LEASE, updated_at=now
                )
            )
        return result.rowcount == 1

    async def _set_status(self, upload_id: str, status: str, **values: Any) -> None:
        async with self.runtime.engine.begin() as conn:
            await conn.execute(
                sa.update(uploads)
                .where(uploads.c.id == upload_id)
                .values(status=status, lease_until=None, updated_at=self.runtime.clock(), **values)
            )

    async def _verified_parts(self, row: Mapping[str, Any]) -> list[PartInfo]:
        """Every part present with its exact size (and declared checksum, when the backend
        reports one); raises what the client must fix, leaving the session open."""
        received = await self._received(row)
        missing = [n for n in range(1, row["part_count"] + 1) if n not in received]
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
            raise Conflict(
                f"{len(missing)} of {row['part_count']} parts are missing: {shown}",
                code="upload_incomplete",
            )
        declared = row["part_sha256"] or []
        parts = []
        for number in range(1, row["part_count"] + 1):
            part = received[number]
            expected = part_length(row, number)
            if part.size != expected:
                raise InvalidInput(
                    f"part {number} has {part.size} bytes, expected {expected}; send it again",
                    code="part_size_mismatch",
                )
            if declared and part.sha256 and part.sha256 != declared[number - 1]:
                raise InvalidInput(
                    f"part {number}'s SHA-256 is {part.sha256}, the client declared "
                    f"{declared[number - 1]}; send it again",
                    code="checksum_mismatch",
                )
            if declared and part.sha256 is None:  # S3 lists checksums; moto does not
                part = dataclasses.replace(part, sha256=declared[number - 1])
            parts.append(part)
        return parts

    async def _publish(
        self, row: Mapping[str, Any], assembled: AssembledObject, op: Operation
    ) -> FileRecord:
        """Check the assembled object and record it as a new file (see ``Flow.publish``)."""
        runtime, key = self.runtime, row["storage_key"]
        if assembled.size != row["size"]:
            raise InvalidInput(
                f"the assembled file has {assembled.size} bytes, the session declared "
                f"{row['size']}",
                code="size_mismatch",
            )
        declared = row["sha256"]
        if declared and assembled.sha256 and assembled.sha256 != declared:
            raise InvalidInput(
                f"SHA-256 mismatch: the client said {declared}, the server assembled "
                f"{assembled.sha256}; nothing was published",
                code="checksum_mismatch",
            )
        sha256 = assembled.sha256 or declared
        assert sha256 is not None  # direct sessions require a declared checksum
        head = await self._head(key)
        binding = choose_processor(runtime, row["filename"], row["content_type"], head)
        if binding is None and runtime.settings.processing.refuse_unprocessable:
            raise Unprocessable(f"no processor accepts {row['filename']!r}")

        async def mark_completed(conn: AsyncConnection, now: dt.datetime) -> None:
            await conn.execute(
                sa.update(uploads)
                .where(uploads.c.id == row["id"])
                .values(
                    status=UploadStatus.COMPLETED, lease_until=None, updated_at=now, cleaned_at=now
                )
            )
            await conn.execute(sa.delete(upload_parts).where(upload_parts.c.upload_id == row["id"]))

        stored = AssembledObject(key, assembled.size, sha256, assembled.etag, assembled.version)
        return await self._ingest.publish(
            row["file_id"],
            row["project"],
            row["filename"],
            row["content_type"],
            row["meta"],
            stored,
            binding,
            op,
            also=mark_completed,
        )

    async def _head(self, key: str) -> bytes:
        """The first bytes of the assembled file, for processors that sniff."""
        head = bytearray()
        async for chunk in self._storage.open(key, start=0, end=HEAD_BYTES):
            head += chunk
        return bytes(head)

    async def _give_up(self, row: Mapping[str, Any]) -> None:
        """The joined file is refused (checksum, size, no processor): remove it and whatever
        is left of the parts, and close the session."""
        try:
            await self._discard(row["storage_key"], row["storage_upload_id"])
            await self._storage.delete(row["storage_key"])
        finally:
            await self._set_status(row["id"], UploadStatus.ABORTED, cleaned_at=self.runtime.clock())

    # -- aborting and expiry ---------------------------------------------------------------

    @observed("upload.abort")
    async def abort(self, upload_id: str) -> None:
        """Abort a session and remove its parts; aborting an aborted or expired one is fine."""
        async with self.runtime.audit.operation("upload.abort", read_only=False) as op:
            row = await self._load(upload_id)
            op.note(project=row["project"], file_id=row["file_id"])
            actors.current().require(Role.WRITER, "aborting an upload")
            if row["status"] == UploadStatus.COMPLETED:
                raise Conflict(
                    f"upload session {upload_id} is completed (file {row['file_id']}); delete "
                    "the file instead",
                    code="upload_completed",
                )
            if (
                row["status"] == UploadStatus.COMPLETING
                and row["lease_until"] > self.runtime.clock()
            ):
                raise Conflict(
                    f"upload session {upload_id} is being completed", code="upload_completing"
                )
            if row["status"] not in (UploadStatus.ABORTED, UploadStatus.EXPIRED):
                await self._set_status(upload_id, UploadStatus.ABORTED)
        await self._clean(row)

    @observed("upload.sweep")
    async def sweep(self) -> int:
        """Expire overdue sessions and remove the parts of expired and aborted ones; returns
        how many sessions were cleaned. Safe to run in several workers at once."""
        now = self.runtime.clock()
        async with self.runtime.engine.begin() as conn:
            await conn.execute(
                sa.update(uploads)
                .where(
                    uploads.c.expires_at <= now,
                    sa.or_(
                        uploads.c.status == UploadStatus.OPEN,
                        sa.and_(
                            uploads.c.status == UploadStatus.COMPLETING, uploads.c.lease_until < now
                        ),
                    ),
                )
                .values(status=UploadStatus.EXPIRED, lease_until=None, updated_at=now)
            )
            rows = (
                await conn.execute(
                    sa.select(uploads)
                    .where(
                        uploads.c.status.in_([UploadStatus.EXPIRED, UploadStatus.ABORTED]),
                        uploads.c.cleaned_at.is_(None),
                    )
                    .order_by(uploads.c.id)
                    .limit(SWEEP_BATCH)
                )
            ).mappings()
            pending = [dict(row) for row in rows]
        cleaned = 0
        for row in pending:
            try:
                await self._clean(row)
                cleaned += 1
            except Exception as exc:
                log.warning("could not clean upload session %s (%s); will retry", row["id"], exc)
        return cleaned

    async def _clean(self, row: Mapping[str, Any]) -> None:
        """Remove the parts, and the file if a failed completion had joined them already."""
        with admitted(self.runtime.breakers["storage"]):
            await self._storage.abort_multipart(row["storage_key"], row["storage_upload_id"])
            await self._storage.delete(row["storage_key"])
        async with self.runtime.engine.begin() as conn:
            await conn.execute(sa.delete(upload_parts).where(upload_parts.c.upload_id == row["id"]))
            await conn.execute(
                sa.update(uploads)
                .where(uploads.c.id == row["id"])
                .values(cleaned_at=self.runtime.clock())
            )
        log.info("removed the parts of upload session %s (%s)", row["id"], row["status"])

    async def _discard(self, key: str, handle: str) -> None:
        try:
            await self._storage.abort_multipart(key, handle)
        except Exception:
            log.exception("could not abort the multipart upload of %s", key)

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        """Sweep every ``[uploads] sweep_interval_s`` until ``stop`` is set."""
        interval = self.runtime.settings.uploads.sweep_interval_s
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("upload sweep failed (%s: %s); retrying", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
