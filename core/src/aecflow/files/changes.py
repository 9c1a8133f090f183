"""The changes of a file's life after ingest: reprocess, soft delete, restore and purge.

Each change commits with its event and its audit row in one transaction.
"""

from __future__ import annotations

from typing import Any

from aecflow import actor as actors
from aecflow.access.audit import Operation
from aecflow.actor import Role
from aecflow.breaker import admitted
from aecflow.errors import Conflict, InvalidInput
from aecflow.files import pipeline
from aecflow.files.ingest import choose_processors, initial_processing
from aecflow.files.lookup import require
from aecflow.files.reads import Reads
from aecflow.loading.runtime import Runtime
from aecflow.outbox.events import announce
from aecflow.store import files as file_rows
from aecflow.store import jobs as job_rows
from aecflow.store import pipelines as pipeline_rows
from aecflow.store.records import FileRecord, steps_column
from aecflow.store.statuses import FileStatus
from aecflow.streams import HEAD_BYTES


class Changes:
    """Reprocess, delete, restore and purge files of the current actor's projects."""

    def __init__(self, runtime: Runtime, reads: Reads) -> None:
        self.runtime = runtime
        self.reads = reads

    async def reprocess(self, file_id: str, step: str | None = None) -> FileRecord:
        """Queue the file for processing again (idempotent while a job is already queued).

        With ``step``, only that step of the file's pipeline runs again (idempotent while a
        job of it is queued or running); the other steps keep their outcomes.
        """
        runtime = self.runtime
        async with runtime.audit.operation(
            "file.reprocess", read_only=False, file_id=file_id, details={"step": step}
        ) as op:
            actors.current().require(Role.WRITER, "reprocessing files")
            record = await self.reads.readable(file_id)
            op.note(project=record.project)
            if step is not None:
                return await self._reprocess_step(record, step, op)
            head = b""
            async for chunk in runtime.storage.open(
                record.storage_key, start=0, end=min(record.size, HEAD_BYTES)
            ):
                head += chunk
            bindings = await choose_processors(
                runtime, record.project, record.filename, record.content_type, head
            )
            steps = pipeline.initial_steps(bindings)
            now = runtime.clock()
            async with runtime.engine.begin() as conn:
                if not await job_rows.active_count(conn, file_id):
                    await file_rows.update(
                        conn,
                        file_id,
                        status=FileStatus.STORED,
                        processing=initial_processing(bindings[0] if bindings else None),
                        steps=steps_column(steps),
                        updated_at=now,
                    )
                    await pipeline.enqueue(conn, file_id, pipeline.ready(steps), now)
                    record = await require(conn, file_id)
                await op.write(conn)
            runtime.wake()
            return record

    async def _reprocess_step(self, record: FileRecord, step: str, op: Operation) -> FileRecord:
        runtime = self.runtime
        if step not in record.steps:
            raise InvalidInput(
                f"file {record.id!r} has no step {step!r}; its steps: {sorted(record.steps)}",
                code="unknown_step",
            )
        binding = runtime.processors.get(step)
        now = runtime.clock()
        async with runtime.engine.begin() as conn:
            steps = await pipeline_rows.lock_file(conn, record.id)
            if steps is not None and not await job_rows.active_count(conn, record.id, step):
                by_name = steps
                after = by_name.get(step, {}).get("after", [])
                by_name[step] = (
                    pipeline.pending_step(binding) if binding else {"outcome": None, "after": after}
                )
                values: dict[str, Any] = {"steps": steps_column(by_name)}
                if record.processing.get("processor") == step:
                    values["processing"] = initial_processing(binding)
                await file_rows.update(
                    conn, record.id, status=FileStatus.PROCESSING, updated_at=now, **values
                )
                await pipeline.enqueue(conn, record.id, [step], now)
            record = await require(conn, record.id)
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
                async with runtime.engine.connect() as conn:
                    derived = await pipeline_rows.list_artifacts(conn, file_id)
                with admitted(runtime.breakers["storage"]):
                    for artifact in derived:  # first: a failure leaves the file to purge again
                        await runtime.storage.delete(artifact.storage_key)
                    await runtime.storage.delete(record.storage_key)
                now = runtime.clock()
                async with runtime.engine.begin() as conn:
                    await file_rows.scrub(
                        conn, file_id, deleted_at=record.deleted_at or now, now=now
                    )
                    await job_rows.delete_queued(conn, file_id)
                    await pipeline_rows.delete_artifacts(conn, file_id)
                    record = await require(conn, file_id)
                    await announce(conn, runtime.notifiers, "file.purged", record, now)
                    await op.write(conn)
                runtime.wake()
                return record
