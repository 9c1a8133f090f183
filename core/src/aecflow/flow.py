"""The flow: aecflow's Python API, used by the HTTP host, the CLI and embedding applications.

    async with Flow.open(settings) as flow:
        record = await flow.ingest_file("tower-a", Path("model.ifc"))

A flow owns its plugin manager, backends and database engine. Every state change commits with
its outbox events in one transaction; bytes are stored first and removed again if that
transaction fails, so nothing is ever half-kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aecflow import actor as actors
from aecflow import catalog, events, telemetry, tokens, validation
from aecflow.actor import Role
from aecflow.audit import AuditLog, Operation
from aecflow.breaker import CircuitBreaker, State, settle
from aecflow.catalog import FileQuery
from aecflow.components import (
    ProcessorBinding,
    build_notifiers,
    build_processors,
    build_storage,
    start_backend,
)
from aecflow.config import Settings
from aecflow.db import engine as db
from aecflow.db.schema import files, jobs, outbox
from aecflow.dispatcher import Dispatcher
from aecflow.errors import Conflict, InvalidInput, NotFound
from aecflow.ids import looks_like_id, uuid7
from aecflow.notify import Notifier
from aecflow.observe import Observation, timed
from aecflow.plugins import PluginHost
from aecflow.processing import Outcome
from aecflow.records import FileRecord, FileStatus, Page
from aecflow.sessions import UploadSessions
from aecflow.storage import AssembledObject, Storage, StoredObject
from aecflow.streams import HEAD_BYTES, LimitedStream, file_chunks, read_head
from aecflow.tokens import TokenInfo
from aecflow.worker import Worker

log = logging.getLogger(__name__)

DEFAULT_URL_EXPIRY = dt.timedelta(minutes=15)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Unprocessable(InvalidInput):
    code = "unsupported_file"
    http_status = 415


class Flow:
    """An open aecflow: storage, processors, notifiers and the metadata store."""

    def __init__(
        self,
        settings: Settings,
        plugins: PluginHost,
        engine: AsyncEngine,
        storage: Storage,
        processors: dict[str, ProcessorBinding],
        notifiers: dict[str, Notifier],
    ) -> None:
        self.settings = settings
        self.plugins = plugins
        self.engine = engine
        self.storage = storage
        self.processors = processors
        self.notifiers = notifiers
        #: One breaker per dependency: ``storage`` and ``notifier:<destination>``.
        self.breakers: dict[str, CircuitBreaker] = {
            name: CircuitBreaker(
                name,
                failure_threshold=settings.breakers.failure_threshold,
                reset_timeout_s=settings.breakers.reset_timeout_s,
                on_transition=self._breaker_moved,
            )
            for name in ["storage", *(f"notifier:{n}" for n in notifiers)]
        }
        self.audit = AuditLog(engine, hash_chain=settings.audit.hash_chain)
        self.worker: Worker | None = None
        self.dispatcher: Dispatcher | None = None
        #: Resumable upload sessions (the host's ``/v1/uploads`` routes).
        self.uploads = UploadSessions(self)

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        plugins: Iterable[tuple[str, object]] = (),
    ) -> AsyncIterator[Flow]:
        """Load plugins, build backends, migrate and connect; close everything on exit.

        ``plugins`` registers extra (name, module-or-object) plugins beside the entry points,
        which is how an embedding application adds its own without packaging them.
        """
        settings = settings or Settings()
        host = PluginHost(environ).load(extra=plugins)
        async with AsyncExitStack() as stack:
            storage = build_storage(host.registries.storage, settings)
            stack.push_async_callback(storage.close)
            await start_backend(storage, f"storage backend {storage.name!r}")
            processors = build_processors(host.registries.processors, settings)
            notifiers = build_notifiers(host.registries.notifiers, settings)
            for name, notifier in notifiers.items():
                stack.push_async_callback(notifier.close)
                await start_backend(notifier, f"notifier {name!r}")
            engine = db.create_engine(settings.database_url(), echo=settings.database.echo)
            stack.push_async_callback(engine.dispose)
            if settings.database.migrate_on_start:
                await db.upgrade(engine)
            flow = cls(settings, host, engine, storage, processors, notifiers)
            await flow.check_database()
            stack.push_async_callback(host.drain)
            await host.broadcast("startup", flow=flow)
            stack.push_async_callback(host.broadcast, "shutdown", flow=flow)
            if settings.worker.embedded:
                await stack.enter_async_context(flow.background())
            yield flow

    @asynccontextmanager
    async def background(
        self, *, concurrency: int | None = None, dispatch: bool = True, grace_s: float = 30.0
    ) -> AsyncIterator[list[asyncio.Task[None]]]:
        """Run a worker, the outbox dispatcher (unless ``dispatch`` is false) and the upload
        sweeper in this process until the block ends; the block gets their tasks (``aecflow
        worker`` runs this too, and ends when one of them fails)."""
        self.worker = Worker(self, concurrency=concurrency)
        self.dispatcher = Dispatcher(self) if dispatch else None
        stop = asyncio.Event()
        with actors.acting_as(actors.SYSTEM):  # background work is the system's, not a caller's
            tasks = [
                asyncio.create_task(self.worker.run(stop, grace_s=grace_s), name="aecflow worker"),
                asyncio.create_task(self.uploads.run_sweeper(stop), name="aecflow upload sweep"),
            ]
            if self.dispatcher is not None:
                tasks.append(
                    asyncio.create_task(self.dispatcher.run(stop), name="aecflow dispatcher")
                )
        try:
            yield tasks
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.worker = self.dispatcher = None

    def _breaker_moved(self, name: str, old: State, new: State) -> None:
        self.emit(
            Observation(
                "breaker.transition",
                0.0,
                new.value,
                None,
                {"breaker": name, "from": old.value, "to": new.value},
            )
        )

    def _wake(self) -> None:
        for runner in (self.worker, self.dispatcher):
            if runner is not None:
                runner.wake.set()

    # -- helpers -------------------------------------------------------------------------

    def _timed(self, name: str, **attributes: Any):
        return timed(name, self.plugins.observe, attributes)

    def emit(self, observation: Observation) -> None:
        self.plugins.observe(observation)

    async def check_database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    def choose_processor(
        self, filename: str, content_type: str | None, head: bytes
    ) -> ProcessorBinding | None:
        """The first processor (by name) that accepts the file."""
        for binding in self.processors.values():
            try:
                if binding.processor.accepts(filename, content_type, head):
                    return binding
            except Exception:
                log.exception("processor %s failed in accepts(); skipped", binding.processor.name)
        return None

    async def announce(
        self, conn: AsyncConnection, event_type: str, record: FileRecord, now: dt.datetime
    ) -> None:
        """Queue ``event_type`` for every destination, inside the caller's transaction."""
        event = events.file_event(event_type, record, now)
        await events.enqueue(conn, event, self.notifiers.items(), now)

    async def get_in(self, conn: AsyncConnection, file_id: str) -> FileRecord | None:
        return await catalog.get(conn, file_id)

    async def _require(self, conn: AsyncConnection, file_id: str) -> FileRecord:
        """The file, if it exists for the current actor (other projects' files do not)."""
        record = await catalog.get(conn, file_id) if looks_like_id(file_id) else None
        if record is None or not actors.current().sees(record.project):
            raise NotFound(f"file {file_id!r} does not exist", code="file_not_found")
        return record

    # -- ingest --------------------------------------------------------------------------

    async def ingest(
        self,
        project: str,
        filename: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        size: int | None = None,
        sha256: str | None = None,
    ) -> FileRecord:
        """Store a stream of bytes as a new file of ``project`` and queue its processing.

        ``sha256``, when given, is verified against what was stored (mismatch: nothing kept).
        """
        with (
            self._timed("flow.ingest", project=str(project)) as timer,
            telemetry.tracer.start_as_current_span("aecflow.ingest") as span,
        ):
            async with self.audit.operation(
                "file.upload", read_only=False, project=str(project)[:64]
            ) as op:
                project = validation.project_name(project)
                who = actors.current()
                who.require_project(project)
                who.require(Role.WRITER, "uploading")
                filename = validation.filename(filename)
                meta = validation.metadata(metadata)
                expected = validation.sha256_hex(sha256) if sha256 else None
                stream = aiter(chunks)
                head = await read_head(stream)
                if not head:
                    raise InvalidInput("the file is empty", code="empty_file")
                binding = self.choose_processor(filename, content_type, b"".join(head))
                if binding is None and self.settings.processing.refuse_unprocessable:
                    raise Unprocessable(f"no processor accepts {filename!r}")
                file_id = uuid7()
                key = f"{project}/{file_id}"
                source = LimitedStream(head, stream, self.settings.uploads.max_size)
                breaker = self.breakers["storage"]
                breaker.acquire()
                span.set_attributes({"aecflow.project": project, "aecflow.file_id": file_id})
                try:
                    with telemetry.tracer.start_as_current_span(
                        "aecflow.storage.put", attributes={"aecflow.storage": self.storage.name}
                    ):
                        stored = await self.storage.put(
                            key,
                            source,
                            size=size,
                            content_type=content_type,
                            metadata={"project": project, "file-id": file_id},
                        )
                except BaseException as exc:
                    settle(breaker, exc, blame_caller=source.source_failed)
                    raise
                breaker.record_success()
                timer.attributes["bytes"] = stored.size
                op.note(file_id=file_id, storage_key=key, bytes_in=stored.size)
                try:
                    if expected and stored.sha256 != expected:
                        raise InvalidInput(
                            f"SHA-256 mismatch: the client said {expected}, the server received "
                            f"{stored.sha256}",
                            code="checksum_mismatch",
                        )
                    return await self.publish(
                        file_id, project, filename, content_type, meta, stored, binding, op
                    )
                except BaseException:
                    await asyncio.shield(self._remove_object(key))
                    raise

    async def ingest_file(self, project: str, path: Path, **kwargs: Any) -> FileRecord:
        """Ingest a local file, streamed in 1 MiB chunks; the filename defaults to its name."""
        kwargs.setdefault("size", (await asyncio.to_thread(path.stat)).st_size)
        filename = kwargs.pop("filename", path.name)
        return await self.ingest(project, filename, file_chunks(path), **kwargs)

    async def _remove_object(self, key: str) -> None:
        try:
            await self.storage.delete(key)
        except Exception:
            log.exception("could not remove object %s after a failed ingest", key)

    async def publish(
        self,
        file_id: str,
        project: str,
        filename: str,
        content_type: str | None,
        meta: Mapping[str, Any],
        stored: StoredObject | AssembledObject,
        binding: ProcessorBinding | None,
        op: Operation,
        *,
        also: Callable[[AsyncConnection, dt.datetime], Awaitable[None]] | None = None,
    ) -> FileRecord:
        """Record a stored object as a new file, queue its processing and announce it: one
        transaction (with ``also``, a caller's own change that must commit with it)."""
        now = utcnow()
        processing: dict[str, Any] = {"processor": binding.processor.name if binding else None}
        if binding is None:
            processing["outcome"] = Outcome.SKIPPED.value
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.insert(files).values(
                    id=file_id,
                    project=project,
                    filename=filename,
                    size=stored.size,
                    sha256=stored.sha256,
                    content_type=content_type,
                    storage_backend=self.storage.name,
                    storage_key=stored.key,
                    status=FileStatus.STORED,
                    meta=meta,
                    processing=processing,
                    created_at=now,
                    updated_at=now,
                )
            )
            if binding is not None:
                await self._enqueue_job(conn, file_id, binding.processor.name, now)
            if also is not None:
                await also(conn, now)
            record = await self._require(conn, file_id)
            await self.announce(conn, "file.stored", record, now)
            await op.write(conn)
        self._wake()
        return record

    async def _enqueue_job(
        self, conn: AsyncConnection, file_id: str, processor: str, now: dt.datetime
    ) -> None:
        await conn.execute(
            sa.insert(jobs).values(
                id=uuid7(),
                file_id=file_id,
                processor=processor,
                traceparent=telemetry.traceparent(),
                status="queued",
                attempts=0,
                available_at=now,
                created_at=now,
                updated_at=now,
            )
        )

    async def settled(self, file_id: str) -> bool:
        """Processing has its final outcome and no event of the file waits for delivery."""
        async with self.engine.connect() as conn:
            record = await self._require(conn, file_id)
            pending = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(outbox)
                    .where(outbox.c.file_id == file_id, outbox.c.status == "pending")
                )
            ).scalar_one()
        done = record.processing["outcome"] is not None or record.purged
        return done and pending == 0

    async def wait_until_settled(
        self, file_id: str, *, timeout_s: float | None = None, poll_s: float = 0.2
    ) -> FileRecord:
        """Wait for :meth:`settled` (``TimeoutError`` after ``timeout_s``); returns the record."""
        async with asyncio.timeout(timeout_s):
            while not await self.settled(file_id):
                self._wake()
                await asyncio.sleep(poll_s)
        return await self.get(file_id)

    async def undelivered(self, file_id: str) -> list[dict[str, Any]]:
        """The file's dead-lettered events, oldest first: settled, but never delivered."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(outbox)
                    .where(outbox.c.file_id == file_id, outbox.c.status == "dead")
                    .order_by(outbox.c.id)
                )
            ).mappings()
            return [dead_letter(row) for row in rows]

    # -- reading -------------------------------------------------------------------------

    async def get(self, file_id: str) -> FileRecord:
        """A file's record (audited as a read)."""
        async with self.audit.operation("file.read", read_only=True, file_id=file_id) as op:
            actors.current().require(Role.READER, "reading files")
            async with self.engine.connect() as conn:
                record = await self._require(conn, file_id)
            op.note(project=record.project)
            return record

    async def list(self, query: FileQuery) -> Page:
        with self._timed("flow.list", project=query.project):
            async with self.audit.operation(
                "file.list", read_only=True, project=str(query.project)[:64]
            ):
                who = actors.current()
                who.require(Role.READER, "listing files")
                who.require_project(validation.project_name(query.project))
                async with self.engine.connect() as conn:
                    return await catalog.search(conn, query)

    async def download_url(
        self,
        file_id: str,
        expires: dt.timedelta = DEFAULT_URL_EXPIRY,
        *,
        host_relative: bool = False,
    ) -> str | None:
        """A URL for the file's bytes that the caller can use, or ``None`` if there is none.

        Backends that sign absolute URLs (S3) give an expiring ``https://`` URL. Backends whose
        URLs are paths served by the HTTP host (storage_local's ``/v1/storage/local/...``) are
        useless to an embedding application that runs no host, so without ``host_relative``
        such a path becomes the ``file://`` URI of the object on this machine (no expiry: the
        embedder already has the files), or ``None`` when the backend keeps none locally. The
        HTTP host passes ``host_relative=True`` to redirect to its own signed route. To stream
        the bytes whatever the backend: ``flow.storage.open(record.storage_key)`` on the record
        that :meth:`readable` returns.
        """
        async with self.audit.operation(
            "file.download", read_only=True, file_id=file_id, details={"via": "url"}
        ) as op:
            record = await self.readable(file_id)
            op.note(project=record.project, storage_key=record.storage_key)
            async with self.breakers["storage"]:
                url = await self.storage.download_url(
                    record.storage_key, expires=expires, filename=record.filename
                )
                if url is None or host_relative or urlsplit(url).scheme:
                    return url
                path = await self.storage.local_path(record.storage_key)
                return path.absolute().as_uri() if path is not None else None

    async def readable(self, file_id: str) -> FileRecord:
        """The record of a file whose bytes the current actor may read (not deleted/purged)."""
        actors.current().require(Role.READER, "downloading files")
        async with self.engine.connect() as conn:
            record = await self._require(conn, file_id)
        if record.deleted or record.purged:
            raise NotFound(f"file {file_id!r} is deleted", code="file_deleted")
        return record

    async def readable_object(self, storage_key: str) -> FileRecord:
        """The live file stored at ``storage_key`` (``<project>/<file id>``): a signed URL,
        checked by its backend, outlives neither a delete nor a purge of its file."""
        async with self.engine.connect() as conn:
            record = await self._require(conn, storage_key.rpartition("/")[2])
        if record.storage_key != storage_key:
            raise NotFound(f"no file is stored at {storage_key!r}", code="file_not_found")
        if record.deleted or record.purged:
            raise NotFound(f"file {record.id!r} is deleted", code="file_deleted")
        return record

    async def reprocess(self, file_id: str) -> FileRecord:
        """Queue the file for processing again (idempotent while a job is already queued)."""
        async with self.audit.operation("file.reprocess", read_only=False, file_id=file_id) as op:
            actors.current().require(Role.WRITER, "reprocessing files")
            record = await self.readable(file_id)
            op.note(project=record.project)
            head = b""
            async for chunk in self.storage.open(
                record.storage_key, start=0, end=min(record.size, HEAD_BYTES)
            ):
                head += chunk
            binding = self.choose_processor(record.filename, record.content_type, head)
            now = utcnow()
            async with self.engine.begin() as conn:
                active = await conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(jobs)
                    .where(jobs.c.file_id == file_id, jobs.c.status.in_(("queued", "running")))
                )
                if not active:
                    processing: dict[str, Any] = {
                        "processor": binding.processor.name if binding else None
                    }
                    if binding is None:
                        processing["outcome"] = Outcome.SKIPPED.value
                    await conn.execute(
                        sa.update(files)
                        .where(files.c.id == file_id)
                        .values(status=FileStatus.STORED, processing=processing, updated_at=now)
                    )
                    if binding is not None:
                        await self._enqueue_job(conn, file_id, binding.processor.name, now)
                    record = await self._require(conn, file_id)
                await op.write(conn)
            self._wake()
            return record

    # -- dead letters --------------------------------------------------------------------

    async def dead_letters(
        self, *, limit: int = 50, cursor: str | None = None, destination: str | None = None
    ) -> dict[str, Any]:
        """Events that could not be delivered, newest first, with their last error."""
        async with self.audit.operation("events.dead_letters", read_only=True):
            actors.current().require(Role.ADMIN, "reading dead letters")
            if not 1 <= limit <= catalog.MAX_PAGE:
                raise InvalidInput(
                    f"limit must be between 1 and {catalog.MAX_PAGE}", code="invalid_query"
                )
            stmt = sa.select(outbox).where(outbox.c.status == "dead")
            if (scope := actors.current().scope()) is not None:
                stmt = stmt.where(outbox.c.project.in_(sorted(scope)))
            if destination:
                stmt = stmt.where(outbox.c.destination == destination)
            if cursor:
                stmt = stmt.where(outbox.c.id < catalog.decode_cursor(cursor))
            stmt = stmt.order_by(outbox.c.id.desc()).limit(limit + 1)
            async with self.engine.connect() as conn:
                rows = (await conn.execute(stmt)).mappings().all()
            items = [dead_letter(row) for row in rows[:limit]]
            more = len(rows) > limit
            return {
                "items": items,
                "next_cursor": catalog.encode_cursor(items[-1]["id"]) if more else None,
            }

    async def redeliver(self, ids: Iterable[str] | None = None) -> int:
        """Put dead letters back in the queue (all when ``ids`` is None); returns how many."""
        async with self.audit.operation("events.redeliver", read_only=False) as op:
            actors.current().require(Role.ADMIN, "redelivering events")
            stmt = sa.update(outbox).where(outbox.c.status == "dead")
            if (scope := actors.current().scope()) is not None:
                stmt = stmt.where(outbox.c.project.in_(sorted(scope)))
            if ids is not None:
                stmt = stmt.where(outbox.c.id.in_(list(ids)))
            stmt = stmt.values(
                status="pending",
                attempts=0,
                available_at=utcnow(),
                lease_owner=None,
                lease_until=None,
            )
            async with self.engine.begin() as conn:
                count = (await conn.execute(stmt)).rowcount
                op.note(details={"redelivered": count})
                await op.write(conn)
            self._wake()
            return count

    # -- tokens --------------------------------------------------------------------------

    async def create_token(
        self,
        *,
        name: str,
        role: Role,
        projects: Iterable[str],
        expires_in: dt.timedelta | None = None,
    ) -> tuple[TokenInfo, str]:
        """A new API token; the token itself is returned once and stored only as a hash."""
        async with self.audit.operation("token.create", read_only=False) as op:
            actors.current().require(Role.ADMIN, "creating tokens")
            async with self.engine.begin() as conn:
                info, token = await tokens.create(
                    conn,
                    name=name,
                    role=role,
                    projects=projects,
                    expires_in=expires_in,
                    now=utcnow(),
                )
                op.note(details={"token_id": info.id, "role": info.role, "projects": info.projects})
                await op.write(conn)
            return info, token

    async def list_tokens(self) -> list[TokenInfo]:
        async with self.audit.operation("token.list", read_only=True):
            actors.current().require(Role.ADMIN, "listing tokens")
            async with self.engine.connect() as conn:
                return await tokens.listing(conn)

    async def revoke_token(self, token_id: str) -> TokenInfo:
        async with self.audit.operation(
            "token.revoke", read_only=False, details={"token_id": token_id}
        ) as op:
            actors.current().require(Role.ADMIN, "revoking tokens")
            async with self.engine.begin() as conn:
                info = await tokens.revoke(conn, token_id, utcnow())
                await op.write(conn)
            return info

    # -- deletion ------------------------------------------------------------------------

    async def delete(self, file_id: str) -> FileRecord:
        """Soft delete: hidden from listings and downloads until restored or purged."""
        return await self._set_deleted(file_id, deleted=True)

    async def restore(self, file_id: str) -> FileRecord:
        """Undo a soft delete (a purged file cannot come back)."""
        return await self._set_deleted(file_id, deleted=False)

    async def _set_deleted(self, file_id: str, *, deleted: bool) -> FileRecord:
        """Soft-delete or restore; idempotent, announced and audited with the change."""
        verb = "delete" if deleted else "restore"
        with self._timed(f"flow.{verb}"):
            async with self.audit.operation(f"file.{verb}", read_only=False, file_id=file_id) as op:
                actors.current().require(
                    Role.WRITER, "deleting files" if deleted else "restoring files"
                )
                now = utcnow()
                async with self.engine.begin() as conn:
                    record = await self._require(conn, file_id)
                    op.note(project=record.project, storage_key=record.storage_key)
                    if record.purged:
                        why = "" if deleted else " and cannot be restored"
                        raise Conflict(f"file {file_id!r} was purged{why}", code="file_purged")
                    if record.deleted != deleted:
                        await conn.execute(
                            sa.update(files)
                            .where(files.c.id == file_id)
                            .values(deleted_at=now if deleted else None, updated_at=now)
                        )
                        record = await self._require(conn, file_id)
                        event = "file.deleted" if deleted else "file.restored"
                        await self.announce(conn, event, record, now)
                    await op.write(conn)
                self._wake()
                return record

    async def purge(self, file_id: str) -> FileRecord:
        """Erase the file: remove the object, then scrub the row of everything personal.

        The object goes first: if that fails nothing changed and purge can be retried; if the
        database then fails the object is already gone and a retry finishes the scrub.
        """
        with self._timed("flow.purge"):
            async with self.audit.operation("file.purge", read_only=False, file_id=file_id) as op:
                actors.current().require(Role.ADMIN, "purging files")
                async with self.engine.connect() as conn:
                    record = await self._require(conn, file_id)
                op.note(project=record.project, storage_key=record.storage_key)
                if record.purged:
                    return record
                async with self.breakers["storage"]:
                    await self.storage.delete(record.storage_key)
                now = utcnow()
                async with self.engine.begin() as conn:
                    await conn.execute(
                        sa.update(files)
                        .where(files.c.id == file_id)
                        .values(
                            filename="",
                            sha256="",
                            content_type=None,
                            meta={},
                            processing=None,
                            storage_key="",
                            deleted_at=record.deleted_at or now,
                            purged_at=now,
                            updated_at=now,
                        )
                    )
                    await conn.execute(
                        sa.delete(jobs).where(jobs.c.file_id == file_id, jobs.c.status == "queued")
                    )
                    record = await self._require(conn, file_id)
                    await self.announce(conn, "file.purged", record, now)
                    await op.write(conn)
                self._wake()
                return record


def dead_letter(row: Mapping[str, Any]) -> dict[str, Any]:
    """The public shape of a dead-lettered event."""
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "destination": row["destination"],
        "event_type": row["event_type"],
        "project": row["project"],
        "file_id": row["file_id"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "created_at": row["created_at"].isoformat().replace("+00:00", "Z"),
        "payload": row["payload"],
    }
