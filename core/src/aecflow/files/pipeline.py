"""Which steps a file runs through: the project's pipeline, filtered by what accepts the file.

A pipeline comes from, in order: the API (``PUT /v1/projects/{project}/pipeline``), the
project's ``[processing.projects.NAME] pipeline``, the global ``[processing] pipeline``. With
none, a file gets the first processor by name that accepts it, alone (the behaviour before
pipelines). A step whose ``after`` names a step the file does not run is skipped, naming it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow import actor as actors
from aecflow import telemetry, validation
from aecflow.actor import Role
from aecflow.clock import iso
from aecflow.errors import InvalidInput, NotFound
from aecflow.files.reads import Reads
from aecflow.loading.components import ProcessorBinding
from aecflow.loading.runtime import Runtime
from aecflow.processing import Outcome
from aecflow.store import jobs as job_rows
from aecflow.store import pipelines as pipeline_rows

log = logging.getLogger(__name__)


async def configured(
    runtime: Runtime, conn: AsyncConnection, project: str
) -> tuple[list[str] | None, str]:
    """The project's pipeline and where it comes from (``api``, ``project_config``,
    ``config`` or ``default``: ``None``, the first accepting processor)."""
    stored = await pipeline_rows.project_pipeline(conn, project)
    if stored is not None:
        return stored, "api"
    settings = runtime.settings.processing
    own = settings.projects.get(project)
    if own is not None and own.pipeline is not None:
        return list(own.pipeline), "project_config"
    if settings.pipeline is not None:
        return list(settings.pipeline), "config"
    return None, "default"


def _accepts(
    binding: ProcessorBinding, filename: str, content_type: str | None, head: bytes
) -> bool:
    try:
        return binding.processor.accepts(filename, content_type, head)
    except Exception:
        log.exception("processor %s failed in accepts(); skipped", binding.processor.name)
        return False


def choose_steps(
    runtime: Runtime,
    pipeline: list[str] | None,
    filename: str,
    content_type: str | None,
    head: bytes,
) -> list[ProcessorBinding]:
    """The installed processors of ``pipeline`` that accept the file, in pipeline order."""
    if pipeline is None:
        for binding in runtime.processors.values():
            if _accepts(binding, filename, content_type, head):
                return [binding]
        return []
    chosen = []
    for name in dict.fromkeys(pipeline):
        found = runtime.processors.get(name)
        if found is None:
            log.warning("pipeline step %r is not installed or enabled; left out", name)
        elif _accepts(found, filename, content_type, head):
            chosen.append(found)
    return chosen


def pending_step(binding: ProcessorBinding) -> dict[str, Any]:
    return {"outcome": None, "after": list(binding.processor.after)}


def initial_steps(bindings: list[ProcessorBinding]) -> dict[str, dict[str, Any]]:
    """The file's steps before any runs; a step after one the file does not run is skipped."""
    names = {b.processor.name for b in bindings}
    steps: dict[str, dict[str, Any]] = {}
    for binding in bindings:
        step = pending_step(binding)
        missing = [name for name in binding.processor.after if name not in names]
        if missing:
            step["outcome"] = Outcome.SKIPPED.value
            step["error"] = f"runs after {', '.join(missing)}, which this file does not run"
        steps[binding.processor.name] = step
    return steps


def ready(steps: dict[str, dict[str, Any]]) -> list[str]:
    """Pending steps none of whose predecessors is still pending (to queue at the start)."""
    return [
        name
        for name, step in steps.items()
        if step.get("outcome") is None
        and not any(steps.get(p, {}).get("outcome") is None for p in step.get("after", ()))
    ]


async def enqueue(conn: AsyncConnection, file_id: str, names: list[str], now: Any) -> None:
    for name in names:
        await job_rows.enqueue(conn, file_id, name, telemetry.traceparent(), now)


def check_names(runtime: Runtime, pipeline: Any) -> list[str]:
    """A pipeline from a request: installed processor names, each once."""
    if not isinstance(pipeline, list) or not pipeline or len(pipeline) > 32:
        raise InvalidInput(
            "pipeline must be a list of 1 to 32 processor names", code="invalid_pipeline"
        )
    unknown = [n for n in pipeline if not isinstance(n, str) or n not in runtime.processors]
    if unknown:
        raise InvalidInput(
            f"not installed or enabled processors: {unknown!r}; installed: "
            f"{sorted(runtime.processors)}",
            code="invalid_pipeline",
        )
    if len(set(pipeline)) != len(pipeline):
        raise InvalidInput("a processor appears twice in the pipeline", code="invalid_pipeline")
    return list(pipeline)


def artifact_dict(row: pipeline_rows.ArtifactRow) -> dict[str, Any]:
    """The public shape (:class:`aecflow.schemas.Artifact`)."""
    return {
        "name": row.name,
        "step": row.step,
        "media_type": row.media_type,
        "size": row.size,
        "sha256": row.sha256,
        "created_at": iso(row.created_at),
    }


class Pipelines:
    """Read and set a project's pipeline (``GET``/``PUT``/``DELETE .../pipeline``), and read
    a file's artifacts."""

    def __init__(self, runtime: Runtime, reads: Reads) -> None:
        self.runtime = runtime
        self.reads = reads

    async def artifacts(self, file_id: str) -> list[pipeline_rows.ArtifactRow]:
        """The artifacts of a file the current actor may read (not deleted or purged)."""
        await self.reads.readable(file_id)
        async with self.runtime.engine.connect() as conn:
            return await pipeline_rows.list_artifacts(conn, file_id)

    async def artifact(self, file_id: str, name: str) -> pipeline_rows.ArtifactRow:
        """One artifact, audited as a download (404 ``artifact_not_found``)."""
        async with self.runtime.audit.operation(
            "file.artifact.download", read_only=True, file_id=file_id, details={"name": name}
        ) as op:
            record = await self.reads.readable(file_id)
            async with self.runtime.engine.connect() as conn:
                row = await pipeline_rows.get_artifact(conn, file_id, name)
            op.note(project=record.project)
            if row is None:
                raise NotFound(
                    f"file {file_id!r} has no artifact {name[:200]!r}", code="artifact_not_found"
                )
            op.note(storage_key=row.storage_key, bytes_out=row.size)
            return row

    async def artifact_url(self, file_id: str, name: str, expires: dt.timedelta) -> str | None:
        """The storage's own absolute expiring URL (S3), or ``None`` (serve ``/content``)."""
        row = await self.artifact(file_id, name)
        url = await self.runtime.storage.download_url(
            row.storage_key, expires=expires, filename=row.name
        )
        return url if url and urlsplit(url).scheme in ("http", "https") else None

    def _project(self, project: object) -> str:
        name = validation.project_name(project)
        actors.current().require_project(name)
        return name

    async def get(self, project: object) -> dict[str, Any]:
        name = self._project(project)
        async with self.runtime.engine.connect() as conn:
            pipeline, source = await configured(self.runtime, conn, name)
        return {"project": name, "pipeline": pipeline, "source": source}

    def require_admin(self, project: object) -> str:
        """Checked before the request body is read: a reader learns nothing from a 400."""
        name = self._project(project)
        actors.current().require(Role.ADMIN, "setting a project's pipeline")
        return name

    async def put(self, project: object, pipeline: Any) -> dict[str, Any]:
        name = self.require_admin(project)
        async with self.runtime.audit.operation(
            "project.pipeline.set", read_only=False, project=name
        ) as op:
            names = check_names(self.runtime, pipeline)
            async with self.runtime.engine.begin() as conn:
                await pipeline_rows.set_project_pipeline(conn, name, names, self.runtime.clock())
                await op.write(conn)
        return await self.get(name)

    async def delete(self, project: object) -> dict[str, Any]:
        name = self.require_admin(project)
        async with (
            self.runtime.audit.operation(
                "project.pipeline.delete", read_only=False, project=name
            ) as op,
            self.runtime.engine.begin() as conn,
        ):
            await pipeline_rows.delete_project_pipeline(conn, name)
            await op.write(conn)
        return await self.get(name)
