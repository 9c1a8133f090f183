"""Resumable upload sessions: one file sent as numbered parts, surviving dropped connections.

The session row is the server's record of what is expected (size, part size, checksums); it is
what a client asks after an interruption to learn which parts to send again. Parts the host
receives are hashed while they stream and recorded in ``upload_parts``; parts a client sends
straight to the storage backend (S3 presigned URLs) are learned from the backend itself.

Completing publishes the file in the same transaction as a streamed upload (file row, job,
events, audit) and marks the session completed inside it, so completing twice returns the same
file and never publishes two.

:class:`UploadSessions` is the one entry point (the Flow's ``uploads``, the host's routes); the
rows it works on are :class:`~aecflow.store.uploads.UploadRow` (SQL lives in the store), their
JSON views are built in :mod:`.views`, parts are sized and tracked in :mod:`.parts`, joined and
checked in :mod:`.assembly`, and :mod:`.sweeper` cleans up expired and aborted sessions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import math
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

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
    StorageError,
    StorageInvalid,
    TooLarge,
)
from aecflow.files.ingest import Ingest, Unprocessable, choose_processors
from aecflow.files.lookup import writable_project
from aecflow.files.reads import Reads
from aecflow.ids import looks_like_id, uuid7
from aecflow.loading.runtime import Runtime
from aecflow.observe import timed
from aecflow.storage import AssembledObject, PartInfo, Storage
from aecflow.store import uploads as store
from aecflow.store.records import FileRecord
from aecflow.store.statuses import UploadStatus
from aecflow.store.uploads import UploadRow
from aecflow.uploads import assembly, parts, sweeper, views
from aecflow.uploads.parts import ExactStream, choose_part_size

log = logging.getLogger(__name__)
Method = TypeVar("Method", bound=Callable[..., Awaitable[Any]])

#: How long one ``complete`` call owns a session before another may take over.
COMPLETE_LEASE = dt.timedelta(minutes=15)


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
        transport: str | None = None,
    ) -> dict[str, Any]:
        """Open a session for a file of ``size`` bytes; returns its view (with part targets).

        ``transport`` forces ``host`` (the bytes come through the host even when the backend
        takes them directly: tus) or ``direct`` (a direct session whose SHA-256 the server
        computes by reading the joined file back, for clients that cannot declare it: Uppy);
        by default the backend decides and direct sessions need a declared ``sha256``."""
        runtime = self.runtime
        async with runtime.audit.operation(
            "upload.open", read_only=False, project=str(project)[:64]
        ) as op:
            project = writable_project(project)
            who = actors.current()
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
            direct = self._storage.direct_upload and transport != "host"
            if transport == "direct" and not direct:
                raise InvalidInput(
                    f"storage backend {self._storage.name!r} takes no parts from clients",
                    code="direct_upload_unsupported",
                )
            if direct and declared is None and transport is None:
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
            row = UploadRow(
                id=upload_id,
                project=project,
                filename=filename,
                size=size,
                sha256=declared,
                part_size=part_size,
                part_count=part_count,
                part_sha256=None if parts_declared is None else tuple(parts_declared),
                content_type=content_type,
                meta=meta,
                transport="direct" if direct else "host",
                storage_backend=self._storage.name,
                storage_key=key,
                storage_upload_id=handle,
                file_id=file_id,
                status=UploadStatus.OPEN,
                created_at=now,
                updated_at=now,
                expires_at=now + dt.timedelta(seconds=runtime.settings.uploads.session_ttl_s),
                opened_by=who.id if who.id.startswith("token:") else None,
            )
            op.note(file_id=file_id, storage_key=key, details={"upload_id": upload_id})
            try:
                async with runtime.engine.begin() as conn:
                    await store.lock_quota(conn)
                    # Inserted first: on SQLite the insert takes the write lock, so the counts
                    # below see every session committed before, and this one.
                    await store.insert(conn, row)
                    await self._check_quota(conn, row, now)
                    await op.write(conn)
            except BaseException:
                await asyncio.shield(self._discard(key, handle))
                raise
        return await self._view(row)

    async def _check_quota(self, conn: AsyncConnection, row: UploadRow, now: dt.datetime) -> None:
        """Refuse the session just inserted if it takes its project or its token past the
        caps on open sessions or on the bytes they declare (``[uploads] max_open_*``)."""
        limits = self.runtime.settings.uploads
        scopes = [("project", f"project {row.project!r}", {"project": row.project})]
        if row.opened_by:
            scopes.append(("token", "this token", {"opened_by": row.opened_by}))
        for kind, who, scope in scopes:
            count, declared = await store.open_totals(conn, now, **scope)
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
            op.note(project=row.project, file_id=row.file_id)
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
        sha256 = validation.sha256_hex(sha256) if sha256 else None
        async with self.runtime.engine.connect() as conn:
            found = await store.find_open(
                conn, project, self.runtime.clock(), sha256=sha256, filename=filename, size=size
            )
        return [views.summary(row, None, self.runtime.clock()) for row in found]

    async def session_row(self, upload_id: str) -> UploadRow:
        """The session's row, if the actor may see it (else ``upload_not_found``)."""
        return await self._load(upload_id)

    def require_open(self, row: UploadRow) -> None:
        """Raise what the client must be told unless parts may be sent to ``row``."""
        self._require_open(row)

    async def _load(self, upload_id: str, conn: AsyncConnection | None = None) -> UploadRow:
        if not looks_like_id(upload_id):
            raise NotFound(f"upload session {upload_id!r} does not exist", code="upload_not_found")
        if conn is None:
            async with self.runtime.engine.connect() as own:
                row = await store.get(own, upload_id)
        else:
            row = await store.get(conn, upload_id)
        who = actors.current()
        if row is None or not who.sees(row.project):
            raise NotFound(f"upload session {upload_id!r} does not exist", code="upload_not_found")
        return row

    async def _view(self, row: UploadRow) -> dict[str, Any]:
        now = self.runtime.clock()
        received = await parts.held(self.runtime, row) if views.live(row, now) else None
        return await views.view(self._storage, row, received, now)

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
            op.note(project=row.project, file_id=row.file_id)
            who = actors.current()
            who.require(Role.WRITER, "uploading")
            self._require_open(row)
            if row.transport != "host":
                raise Conflict(
                    "parts of this session go straight to storage: use the URLs that "
                    f"GET /v1/uploads/{upload_id} lists",
                    code="direct_upload",
                )
            if not 1 <= number <= row.part_count:
                raise InvalidInput(
                    f"part number must be between 1 and {row.part_count}, got {number}",
                    code="invalid_part_number",
                )
            declared = validation.sha256_hex(sha256) if sha256 else row.declared_part(number)
            stream = ExactStream(chunks, row.part_length(number), number)
            # A part being (re)written is not received: a backend that still writes in place
            # may already be overwriting the earlier copy.
            forgotten = await self._forget_part(upload_id, number)
            if forgotten is not None:
                await asyncio.shield(parts.discard(self._storage, row, forgotten))
            try:
                with admitted(
                    runtime.breakers["storage"], caller_failed=lambda: stream.source_failed
                ):
                    stored = await self._storage.put_part(
                        row.storage_key,
                        row.storage_upload_id,
                        number,
                        stream,
                        offset=(number - 1) * row.part_size,
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
                await asyncio.shield(parts.discard(self._storage, row, stored))
                raise
            if replaced is not None and replaced.etag != stored.etag:
                await asyncio.shield(parts.discard(self._storage, row, replaced))
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
            old = await store.delete_part(conn, upload_id, stored.number)
            await store.insert_part(conn, upload_id, stored, self.runtime.clock())
            await op.write(conn)
        return None if old is None else old.info()

    async def _lock_open(self, conn: AsyncConnection, upload_id: str) -> None:
        """Touch the session row (locking it until ``conn`` commits); raises unless open."""
        if not await store.touch_open(conn, upload_id, self.runtime.clock()):
            # aborted or completing while the part streamed
            self._require_open(await self._load(upload_id, conn))
            raise Conflict(f"upload session {upload_id} is not open")

    async def _forget_part(self, upload_id: str, number: int) -> PartInfo | None:
        """Unrecord part ``number`` while the session is open (never under a completion that
        already listed it); returns the attempt that was recorded."""
        async with self.runtime.engine.begin() as conn:
            await self._lock_open(conn, upload_id)
            old = await store.delete_part(conn, upload_id, number)
        return None if old is None else old.info()

    def _require_open(self, row: UploadRow) -> None:
        status = row.status
        if status == UploadStatus.COMPLETED:
            raise Conflict(
                f"upload session {row.id} is already completed (file {row.file_id})",
                code="upload_completed",
            )
        if status == UploadStatus.ABORTED:
            raise Conflict(f"upload session {row.id} was aborted", code="upload_aborted")
        if status == UploadStatus.EXPIRED or row.expires_at <= self.runtime.clock():
            raise UploadExpired(
                f"upload session {row.id} expired at {iso(row.expires_at)}; start a new one"
            )
        if status == UploadStatus.COMPLETING:
            raise Conflict(
                f"upload session {row.id} is being completed; ask again shortly",
                code="upload_completing",
            )

    # -- completing ------------------------------------------------------------------------

    @observed("upload.complete")
    async def complete(self, upload_id: str) -> tuple[FileRecord, bool]:
        """Verify and publish; returns the file and whether this call published it."""
        runtime = self.runtime
        async with runtime.audit.operation("upload.complete", read_only=False) as op:
            row = await self._load(upload_id)
            op.note(project=row.project, file_id=row.file_id, storage_key=row.storage_key)
            actors.current().require(Role.WRITER, "uploading")
            if row.status == UploadStatus.COMPLETED:
                return await self._reads.get(row.file_id), False
            if not await self._claim(upload_id):
                row = await self._load(upload_id)
                if row.status == UploadStatus.COMPLETED:  # a concurrent call just finished it
                    return await self._reads.get(row.file_id), False
                self._require_open(row)
                raise Conflict(f"upload session {upload_id} cannot be completed now")
            try:
                assembled = await assembly.assemble(runtime, row)
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

    async def _reopen(self, upload_id: str) -> None:
        """Best effort: when the database is what failed, the completing lease runs out and
        the next ``complete`` takes over instead."""
        try:
            await self._set_status(upload_id, UploadStatus.OPEN)
        except Exception as exc:
            log.warning("could not reopen upload session %s (%s)", upload_id, exc)

    async def _claim(self, upload_id: str) -> bool:
        async with self.runtime.engine.begin() as conn:
            return await store.claim(conn, upload_id, COMPLETE_LEASE, self.runtime.clock())

    async def _set_status(
        self, upload_id: str, status: UploadStatus, *, cleaned: bool = False
    ) -> None:
        async with self.runtime.engine.begin() as conn:
            await store.set_status(conn, upload_id, status, self.runtime.clock(), cleaned=cleaned)

    async def _publish(
        self, row: UploadRow, assembled: AssembledObject, op: Operation
    ) -> FileRecord:
        """Check the assembled object and record it as a new file (see ``Flow.publish``)."""
        runtime = self.runtime
        stored = assembly.checked(row, assembled)
        head = await assembly.head(self._storage, row.storage_key)
        bindings = await choose_processors(
            runtime, row.project, row.filename, row.content_type, head
        )
        if not bindings and runtime.settings.processing.refuse_unprocessable:
            raise Unprocessable(f"no processor accepts {row.filename!r}")

        async def mark_completed(conn: AsyncConnection, now: dt.datetime) -> None:
            await store.mark_completed(conn, row.id, now)

        return await self._ingest.publish(
            row.file_id,
            row.project,
            row.filename,
            row.content_type,
            row.meta,
            stored,
            bindings,
            op,
            also=mark_completed,
        )

    async def _give_up(self, row: UploadRow) -> None:
        """The joined file is refused (checksum, size, no processor): remove it and whatever
        is left of the parts, and close the session."""
        try:
            await self._discard(row.storage_key, row.storage_upload_id)
            await self._storage.delete(row.storage_key)
        finally:
            await self._set_status(row.id, UploadStatus.ABORTED, cleaned=True)

    # -- aborting and expiry ---------------------------------------------------------------

    @observed("upload.abort")
    async def abort(self, upload_id: str) -> None:
        """Abort a session and remove its parts; aborting an aborted or expired one is fine."""
        async with self.runtime.audit.operation("upload.abort", read_only=False) as op:
            row = await self._load(upload_id)
            op.note(project=row.project, file_id=row.file_id)
            actors.current().require(Role.WRITER, "aborting an upload")
            if row.status == UploadStatus.COMPLETED:
                raise Conflict(
                    f"upload session {upload_id} is completed (file {row.file_id}); delete "
                    "the file instead",
                    code="upload_completed",
                )
            if (
                row.status == UploadStatus.COMPLETING
                and row.lease_until is not None
                and row.lease_until > self.runtime.clock()
            ):
                raise Conflict(
                    f"upload session {upload_id} is being completed", code="upload_completing"
                )
            if row.status not in (UploadStatus.ABORTED, UploadStatus.EXPIRED):
                await self._set_status(upload_id, UploadStatus.ABORTED)
        await sweeper.clean(self.runtime, row)

    @observed("upload.sweep")
    async def sweep(self) -> int:
        """Expire overdue sessions and remove the parts of expired and aborted ones; returns
        how many sessions were cleaned. Safe to run in several workers at once."""
        return await sweeper.sweep(self.runtime)

    async def _discard(self, key: str, handle: str) -> None:
        try:
            await self._storage.abort_multipart(key, handle)
        except Exception:
            log.exception("could not abort the multipart upload of %s", key)

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        """Sweep every ``[uploads] sweep_interval_s`` until ``stop`` is set."""
        interval = self.runtime.settings.uploads.sweep_interval_s
        await sweeper.run_sweeper(self.sweep, interval, stop)
