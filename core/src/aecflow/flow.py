"""The flow: aecflow's Python API, used by the HTTP host, the CLI and embedding applications.

    async with Flow.open(settings) as flow:
        record = await flow.ingest_file("tower-a", Path("model.ifc"))

The flow is a thin facade. :func:`~aecflow.loading.runtime.open_runtime` builds what it runs
on (plugins, backends, breakers, the metadata store); the services below it do the work and
receive that :class:`~aecflow.loading.runtime.Runtime`, never the flow. Every state change
commits with its outbox events in one transaction; bytes are stored first and removed again if
that transaction fails, so nothing is ever half-kept.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from aecflow import actor as actors
from aecflow.access.audit import AuditLog
from aecflow.access.token_admin import TokenAdmin
from aecflow.access.tokens import TokenInfo
from aecflow.actor import Role
from aecflow.breaker import CircuitBreaker
from aecflow.config import Settings
from aecflow.files import orphans
from aecflow.files.changes import Changes
from aecflow.files.ingest import Ingest, Unprocessable
from aecflow.files.pipeline import Pipelines
from aecflow.files.reads import DEFAULT_URL_EXPIRY, Reads
from aecflow.jobs.worker import Worker
from aecflow.loading.components import ProcessorBinding
from aecflow.loading.plugins import PluginHost
from aecflow.loading.runtime import Runtime, open_runtime
from aecflow.notify import Notifier
from aecflow.observe import Observation
from aecflow.outbox.dead_letters import DeadLetters
from aecflow.outbox.dispatcher import Dispatcher
from aecflow.storage import Storage
from aecflow.store.files import FileQuery
from aecflow.store.pipelines import ArtifactRow
from aecflow.store.records import FileRecord, Page
from aecflow.uploads.service import UploadSessions

__all__ = ["DEFAULT_URL_EXPIRY", "Flow", "Unprocessable"]

log = logging.getLogger(__name__)


class Flow:
    """An open aecflow: storage, processors, notifiers and the metadata store."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._ingest = Ingest(runtime)
        self._reads = Reads(runtime)
        self._changes = Changes(runtime, self._reads)
        self._pipelines = Pipelines(runtime, self._reads)
        self._dead = DeadLetters(runtime)
        self._tokens = TokenAdmin(runtime.engine, runtime.audit, runtime.clock)
        #: Resumable upload sessions (the host's ``/v1/uploads`` routes).
        self.uploads = UploadSessions(runtime)
        #: The worker and dispatcher of :meth:`background`, while it runs.
        self.worker: Worker | None = None
        self.dispatcher: Dispatcher | None = None

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
        async with AsyncExitStack() as stack:
            runtime = await stack.enter_async_context(
                open_runtime(settings, environ=environ, plugins=plugins)
            )
            flow = cls(runtime)
            await runtime.plugins.broadcast("startup", flow=flow)
            stack.push_async_callback(runtime.plugins.broadcast, "shutdown", flow=flow)
            if settings.worker.embedded:
                await stack.enter_async_context(flow.background())
            yield flow

    @asynccontextmanager
    async def background(
        self, *, concurrency: int | None = None, dispatch: bool = True, grace_s: float = 30.0
    ) -> AsyncIterator[builtins.list[asyncio.Task[None]]]:
        """Run a worker, the outbox dispatcher (unless ``dispatch`` is false), the upload
        sweeper and the orphan sweeper in this process until the block ends; the block gets
        their tasks (``aecflow worker`` runs this too, and ends when one of them fails)."""
        self.worker = Worker(self.runtime, concurrency=concurrency)
        self.dispatcher = Dispatcher(self.runtime) if dispatch else None
        stop = asyncio.Event()
        with actors.acting_as(actors.SYSTEM):  # background work is the system's, not a caller's
            tasks = [
                asyncio.create_task(self.worker.run(stop, grace_s=grace_s), name="aecflow worker"),
                asyncio.create_task(self.uploads.run_sweeper(stop), name="aecflow upload sweep"),
                asyncio.create_task(
                    orphans.run_sweeper(self.runtime, stop), name="aecflow orphan sweep"
                ),
            ]
            if self.dispatcher is not None:
                tasks.append(
                    asyncio.create_task(self.dispatcher.run(stop), name="aecflow dispatcher")
                )
        try:
            yield tasks
        finally:
            stop.set()
            ended = await asyncio.gather(*tasks, return_exceptions=True)
            for task, outcome in zip(tasks, ended, strict=True):
                if isinstance(outcome, Exception):  # a crash must not vanish with the block
                    log.error("%s failed", task.get_name(), exc_info=outcome)
            self.worker = self.dispatcher = None

    # -- what the flow runs on (read-only views of the runtime) --------------------------

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def plugins(self) -> PluginHost:
        return self.runtime.plugins

    @property
    def engine(self) -> AsyncEngine:
        return self.runtime.engine

    @property
    def storage(self) -> Storage:
        return self.runtime.storage

    @property
    def processors(self) -> dict[str, ProcessorBinding]:
        return self.runtime.processors

    @property
    def notifiers(self) -> dict[str, Notifier]:
        return self.runtime.notifiers

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        return self.runtime.breakers

    @property
    def audit(self) -> AuditLog:
        return self.runtime.audit

    def emit(self, observation: Observation) -> None:
        self.runtime.emit(observation)

    async def check_database(self) -> None:
        await self.runtime.check_database()

    # -- files ---------------------------------------------------------------------------

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
        return await self._ingest.ingest(
            project,
            filename,
            chunks,
            content_type=content_type,
            metadata=metadata,
            size=size,
            sha256=sha256,
        )

    async def ingest_file(self, project: str, path: Path, **kwargs: Any) -> FileRecord:
        """Ingest a local file, streamed in 1 MiB chunks; the filename defaults to its name."""
        return await self._ingest.ingest_file(project, path, **kwargs)

    async def get(self, file_id: str) -> FileRecord:
        """A file's record (audited as a read)."""
        return await self._reads.get(file_id)

    async def list(self, query: FileQuery) -> Page:
        """A page of a project's files, newest first (see :class:`FileQuery`)."""
        return await self._reads.list(query)

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
        return await self._reads.download_url(file_id, expires, host_relative=host_relative)

    async def readable(self, file_id: str) -> FileRecord:
        """The record of a file whose bytes the current actor may read (not deleted/purged)."""
        return await self._reads.readable(file_id)

    async def readable_object(self, storage_key: str) -> FileRecord:
        """The live file stored at ``storage_key``: signed URLs outlive no delete or purge."""
        return await self._reads.readable_object(storage_key)

    async def settled(self, file_id: str) -> bool:
        """Processing has its final outcome and no event of the file waits for delivery."""
        return await self._reads.settled(file_id)

    async def wait_until_settled(
        self, file_id: str, *, timeout_s: float | None = None, poll_s: float = 0.2
    ) -> FileRecord:
        """Wait for :meth:`settled` (``TimeoutError`` after ``timeout_s``); returns the record."""
        return await self._reads.wait_until_settled(file_id, timeout_s=timeout_s, poll_s=poll_s)

    async def reprocess(self, file_id: str, step: str | None = None) -> FileRecord:
        """Queue the file for processing again (idempotent while a job is already queued);
        with ``step``, only that step of its pipeline."""
        return await self._changes.reprocess(file_id, step)

    # -- pipelines and artifacts -----------------------------------------------------------

    @property
    def pipelines(self) -> Pipelines:
        """A project's pipeline: ``get``, ``put`` (admins), ``delete`` (admins)."""
        return self._pipelines

    async def artifacts(self, file_id: str) -> builtins.list[ArtifactRow]:
        """The artifacts the file's steps wrote, by name."""
        return await self._pipelines.artifacts(file_id)

    async def artifact(self, file_id: str, name: str) -> ArtifactRow:
        """One artifact's row; stream it with ``flow.storage.open(row.storage_key)``."""
        return await self._pipelines.artifact(file_id, name)

    async def delete(self, file_id: str) -> FileRecord:
        """Soft delete: hidden from listings and downloads until restored or purged."""
        return await self._changes.delete(file_id)

    async def restore(self, file_id: str) -> FileRecord:
        """Undo a soft delete (a purged file cannot come back)."""
        return await self._changes.restore(file_id)

    async def purge(self, file_id: str) -> FileRecord:
        """Erase the file's bytes and everything personal in its row (admins only)."""
        return await self._changes.purge(file_id)

    # -- events --------------------------------------------------------------------------

    async def undelivered(self, file_id: str) -> builtins.list[dict[str, Any]]:
        """The file's dead-lettered events, oldest first: settled, but never delivered."""
        return await self._dead.of_file(file_id)

    async def dead_letters(
        self, *, limit: int = 50, cursor: str | None = None, destination: str | None = None
    ) -> dict[str, Any]:
        """Events that could not be delivered, newest first, with their last error."""
        return await self._dead.page(limit=limit, cursor=cursor, destination=destination)

    async def redeliver(self, ids: Iterable[str] | None = None) -> int:
        """Put dead letters back in the queue (all when ``ids`` is None); returns how many."""
        return await self._dead.redeliver(ids)

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
        return await self._tokens.create(
            name=name, role=role, projects=projects, expires_in=expires_in
        )

    async def list_tokens(self) -> builtins.list[TokenInfo]:
        return await self._tokens.list()

    async def revoke_token(self, token_id: str) -> TokenInfo:
        return await self._tokens.revoke(token_id)
