"""Reading files: records, listings, download URLs and whether a file has settled."""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import urlsplit

from aecflow import actor as actors
from aecflow import validation
from aecflow.actor import Role
from aecflow.breaker import admitted
from aecflow.errors import NotFound
from aecflow.files.lookup import require, require_live
from aecflow.loading.runtime import Runtime
from aecflow.store import files as catalog
from aecflow.store import outbox as outbox_rows
from aecflow.store.files import FileQuery
from aecflow.store.records import FileRecord, Page

DEFAULT_URL_EXPIRY = dt.timedelta(minutes=15)


class Reads:
    """Records, listings and download URLs, each checked against the current actor."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def get(self, file_id: str) -> FileRecord:
        """A file's record (audited as a read)."""
        async with self.runtime.audit.operation("file.read", read_only=True, file_id=file_id) as op:
            actors.current().require(Role.READER, "reading files")
            async with self.runtime.engine.connect() as conn:
                record = await require(conn, file_id)
            op.note(project=record.project)
            return record

    async def list(self, query: FileQuery) -> Page:
        with self.runtime.timed("flow.list", project=query.project):
            async with self.runtime.audit.operation(
                "file.list", read_only=True, project=str(query.project)[:64]
            ):
                who = actors.current()
                who.require(Role.READER, "listing files")
                who.require_project(validation.project_name(query.project))
                async with self.runtime.engine.connect() as conn:
                    return await catalog.search(conn, query)

    async def readable(self, file_id: str) -> FileRecord:
        """The record of a file whose bytes the current actor may read (not deleted/purged)."""
        actors.current().require(Role.READER, "downloading files")
        async with self.runtime.engine.connect() as conn:
            record = await require(conn, file_id)
        return require_live(record)

    async def readable_object(self, storage_key: str) -> FileRecord:
        """The live file stored at ``storage_key`` (``<project>/<file id>``): a signed URL,
        checked by its backend, outlives neither a delete nor a purge of its file."""
        async with self.runtime.engine.connect() as conn:
            record = await require(conn, storage_key.rpartition("/")[2])
        if record.storage_key != storage_key:
            raise NotFound(f"no file is stored at {storage_key!r}", code="file_not_found")
        return require_live(record)

    async def download_url(
        self,
        file_id: str,
        expires: dt.timedelta = DEFAULT_URL_EXPIRY,
        *,
        host_relative: bool = False,
    ) -> str | None:
        """A URL for the file's bytes that the caller can use, or ``None`` (see
        :meth:`aecflow.flow.Flow.download_url`)."""
        runtime = self.runtime
        async with runtime.audit.operation(
            "file.download", read_only=True, file_id=file_id, details={"via": "url"}
        ) as op:
            record = await self.readable(file_id)
            op.note(project=record.project, storage_key=record.storage_key)
            with admitted(runtime.breakers["storage"]):
                url = await runtime.storage.download_url(
                    record.storage_key, expires=expires, filename=record.filename
                )
                if url is None or host_relative or urlsplit(url).scheme:
                    return url
                path = await runtime.storage.local_path(record.storage_key)
                return path.absolute().as_uri() if path is not None else None

    async def settled(self, file_id: str) -> bool:
        """Processing has its final outcome and no event of the file waits for delivery."""
        async with self.runtime.engine.connect() as conn:
            record = await require(conn, file_id)
            pending = await outbox_rows.pending_count(conn, file_id)
        done = record.ended or record.purged
        return done and pending == 0

    async def wait_until_settled(
        self, file_id: str, *, timeout_s: float | None = None, poll_s: float = 0.2
    ) -> FileRecord:
        """Wait for :meth:`settled` (``TimeoutError`` after ``timeout_s``); returns the record."""
        async with asyncio.timeout(timeout_s):
            while not await self.settled(file_id):
                self.runtime.wake()
                await asyncio.sleep(poll_s)
        return await self.get(file_id)
