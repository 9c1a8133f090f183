"""The changes of a file's life after ingest: reprocess, soft delete, restore and purge.

Each change commits with its event and its audit row in one transaction.
"""

from __future__ import annotations

from aecflow import actor as actors
from aecflow import telemetry
from aecflow.actor import Role
from aecflow.breaker import admitted
from aecflow.errors import Conflict
from aecflow.files.ingest import choose_processor, initial_processing
from aecflow.files.lookup import require
from aecflow.files.reads import Reads
from aecflow.loading.runtime import Runtime
from aecflow.outbox.events import announce
from aecflow.store import files as file_rows
from aecflow.store import jobs as job_rows
from aecflow.store.records import FileRecord
from aecflow.store.statuses import FileStatus
from aecflow.streams import HEAD_BYTES


class Changes:
    """Reprocess, delete, restore and purge files of the current actor's projects."""

    def __init__(self, runtime: Runtime, reads: Reads) -> None:
        self.runtime = runtime
        self.reads = reads

    async def reprocess(self, file_id: str) -> FileRecord:
        """Queue the file for processing again (idempotent while a job is already queued)."""
        runtime = self.runtime
        async with runtime.audit.operation(
            "file.reprocess", read_only=False, file_id=file_id
        ) as op:
            actors.current().require(Role.WRITER, "reprocessing files")
            record = await self.reads.readable(file_id)
            op.note(project=record.project)
            head = b""
            async for chunk in runtime.storage.open(
                record.storage_key, start=0, end=min(record.size, HEAD_BYTES)
            ):
                head += chunk
            binding = choose_processor(runtime, record.filename, record.content_type, head)
            now = runtime.clock()
            async with runtime.engine.begin() as conn:
                if not await job_rows.active_count(conn, file_id):
                    await file_rows.update(
                        conn,
                        file_id,
                        status=FileStatus.STORED,
                        processing=initial_processing(binding),
                        updated_at=now,
                    )
                    if binding is not None:
                        await job_rows.enqueue(
                            conn, file_id, binding.processor.name, telemetry.traceparent(), now
                        )
                    record = await require(conn, file_id)
                await op.write(conn)
            runtime.wake()
            return record

    async def delete(self, file_id: str) -> FileRecord:
        """Soft delete: hidden from listings and downloads until restored or purged."""
        return await self._set_deleted(file_id, deleted=True)

    async def restore(self, file_id: str) -> FileRecord:
        """Undo a soft delete (a purged file cannot come back)."""
        return await self._set_deleted(file_id, deleted=False)

    async def _set_deleted(self, file_id: str, *, deleted: bool) -> FileRecord:
        """Soft-delete or restore; idempotent, announced and audited with the change."""
        runtime = self.runtime
        verb = "delete" if deleted else "restore"
        with runtime.timed(f"flow.{verb}"):
            async with runtime.audit.operation(
                f"file.{verb}", read_only=False, file_id=file_id
            ) as op:
                actors.current().require(
                    Role.WRITER, "deleting files" if deleted else "restoring files"
                )
                now = runtime.clock()
                async with runtime.engine.begin() as conn:
                    record = await require(conn, file_id)
                    op.note(project=record.project, storage_key=record.storage_key)
                    if record.purged:
                        why = "" if deleted else " and cannot be restored"
                        raise Conflict(f"file {file_id!r} was purged{why}", code="file_purged")
                    # Conditional on the row's state: of concurrent deletes only the first
                    # changes it and announces; the others return the change it made.
                    if record.deleted != deleted and await file_rows.set_deleted(
                        conn, file_id, deleted=deleted, now=now
                    ):
                        record = await require(conn, file_id)
                        event = "file.deleted" if deleted else "file.restored"
                        await announce(conn, runtime.notifiers, event, record, now)
                    elif record.deleted != deleted:
                        record = await require(conn, file_id)
                    await op.write(conn)
                runtime.wake()
                return record

    async def purge(self, file_id: str) -> FileRecord:
        """Erase the file: remove the object, then scrub the row of everything personal.

        The object goes first: if that fails nothing changed and purge can be retried; if the
        database then fails the object is already gone and a retry finishes the scrub.
        """
        runtime = self.runtime
        with runtime.timed("flow.purge"):
            async with runtime.audit.operation(
                "file.purge", read_only=False, file_id=file_id
            ) as op:
                actors.current().require(Role.ADMIN, "purging files")
                async with runtime.engine.connect() as conn:
                    record = await require(conn, file_id)
                op.note(project=record.project, storage_key=record.storage_key)
                if record.purged:
                    return record
                with admitted(runtime.breakers["storage"]):
                    await runtime.storage.delete(record.storage_key)
                now = runtime.clock()
                async with runtime.engine.begin() as conn:
                    await file_rows.scrub(
                        conn, file_id, deleted_at=record.deleted_at or now, now=now
                    )
                    await job_rows.delete_queued(conn, file_id)
                    record = await require(conn, file_id)
                    await announce(conn, runtime.notifiers, "file.purged", record, now)
                    await op.write(conn)
                runtime.wake()
                return record
