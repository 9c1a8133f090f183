"""Ingest: store a stream of bytes, then publish it as a file with its processing queued.

Bytes are stored first and removed again if the recording transaction fails, so nothing is
ever half-kept. Publishing is one transaction: the file row, its job, the ``file.stored``
event and the audit row commit together (upload sessions publish through the same path).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow import telemetry, validation
from aecflow.access.audit import Operation
from aecflow.breaker import admitted
from aecflow.errors import InvalidInput
from aecflow.files import pipeline
from aecflow.files.lookup import require, writable_project
from aecflow.ids import uuid7
from aecflow.loading.components import ProcessorBinding
from aecflow.loading.runtime import Runtime
from aecflow.outbox.events import announce
from aecflow.processing import Outcome
from aecflow.storage import AssembledObject, StoredObject
from aecflow.store import files as file_rows
from aecflow.store.records import FileRecord, steps_column
from aecflow.streams import LimitedStream, file_chunks, read_head

log = logging.getLogger(__name__)


class Unprocessable(InvalidInput):
    code = "unsupported_file"
    http_status = 415


async def choose_processors(
    runtime: Runtime, project: str, filename: str, content_type: str | None, head: bytes
) -> list[ProcessorBinding]:
    """The steps the file runs through: its project's pipeline (see :mod:`.pipeline`)."""
    async with runtime.engine.connect() as conn:
        wanted, _ = await pipeline.configured(runtime, conn, project)
    return pipeline.choose_steps(runtime, wanted, filename, content_type, head)


def initial_processing(binding: ProcessorBinding | None) -> dict[str, Any]:
    """A file's ``processing`` before its job runs (``skipped`` when no processor accepts)."""
    processing: dict[str, Any] = {"processor": binding.processor.name if binding else None}
    if binding is None:
        processing["outcome"] = Outcome.SKIPPED.value
    return processing


class Ingest:
    """Store bytes and publish them as new files of a project."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

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
        runtime = self.runtime
        with (
            runtime.timed("flow.ingest", project=str(project)) as timer,
            telemetry.tracer.start_as_current_span("aecflow.ingest") as span,
        ):
            async with runtime.audit.operation(
                "file.upload", read_only=False, project=str(project)[:64]
            ) as op:
                project = writable_project(project)
                filename = validation.filename(filename)
                meta = validation.metadata(metadata)
                expected = validation.sha256_hex(sha256) if sha256 else None
                stream = aiter(chunks)
                head = await read_head(stream)
                if not head:
                    raise InvalidInput("the file is empty", code="empty_file")
                bindings = await choose_processors(
                    runtime, project, filename, content_type, b"".join(head)
                )
                if not bindings and runtime.settings.processing.refuse_unprocessable:
                    raise Unprocessable(f"no processor accepts {filename!r}")
                file_id = uuid7()
                key = f"{project}/{file_id}"
                source = LimitedStream(head, stream, runtime.settings.uploads.max_size)
                span.set_attributes({"aecflow.project": project, "aecflow.file_id": file_id})
                with (
                    admitted(
                        runtime.breakers["storage"], caller_failed=lambda: source.source_failed
                    ),
                    telemetry.tracer.start_as_current_span(
                        "aecflow.storage.put", attributes={"aecflow.storage": runtime.storage.name}
                    ),
                ):
                    stored = await runtime.storage.put(
                        key,
                        source,
                        size=size,
                        content_type=content_type,
                        metadata={"project": project, "file-id": file_id},
                    )
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
                        file_id, project, filename, content_type, meta, stored, bindings, op
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
            await self.runtime.storage.delete(key)
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
        bindings: list[ProcessorBinding],
        op: Operation,
        *,
        also: Callable[[AsyncConnection, dt.datetime], Awaitable[None]] | None = None,
    ) -> FileRecord:
        """Record a stored object as a new file, queue its processing and announce it: one
        transaction (with ``also``, a caller's own change that must commit with it)."""
        runtime = self.runtime
        now = runtime.clock()
        steps = pipeline.initial_steps(bindings)
        async with runtime.engine.begin() as conn:
            await file_rows.insert(
                conn,
                id=file_id,
                project=project,
                filename=filename,
                size=stored.size,
                sha256=stored.sha256,
                content_type=content_type,
                storage_backend=runtime.storage.name,
                storage_key=stored.key,
                meta=meta,
                processing=initial_processing(bindings[0] if bindings else None),
                now=now,
                steps=steps_column(steps),
            )
            await pipeline.enqueue(conn, file_id, pipeline.ready(steps), now)
            if also is not None:
                await also(conn, now)
            record = await require(conn, file_id)
            await announce(conn, runtime.notifiers, "file.stored", record, now)
            await op.write(conn)
        runtime.wake()
        return record
