"""The processing worker: claims jobs, runs processors in isolated children, records outcomes.

Any number of workers (threads of one host or ``aecflow worker`` processes on many machines)
share the ``jobs`` table through leases (see :mod:`aecflow.store.leases`). A job's lease is renewed
while its child runs; if renewal finds the lease taken over, the child is killed. Finishing is
fenced on the lease owner, so a worker that lost its lease cannot overwrite the result.

Invalid input, a timeout and exhausted memory are properties of the file under the configured
limits: the job fails at once. A crash or an infrastructure error (storage or database) is
retried with backoff until ``processing.max_attempts``. So is a run whose result could not be
recorded (the failure to record is recorded instead), and a run whose worker was lost: its
lease expires and the job is claimed again, or ended ``crashed`` if that was its last attempt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.access.audit import Operation
from aecflow.clock import iso
from aecflow.isolation import Limits, ProcessorSpec, RunReport, cap_error, run_isolated
from aecflow.loading.components import ProcessorBinding
from aecflow.loading.runtime import Runtime
from aecflow.observe import Observation
from aecflow.outbox.events import announce
from aecflow.processing import Outcome, ProcessingContext
from aecflow.retries import backoff, db_retries
from aecflow.store import files as catalog
from aecflow.store import jobs as job_rows
from aecflow.store import leases
from aecflow.store import pipelines as pipeline_rows
from aecflow.store.jobs import JobRow
from aecflow.store.records import FINE, FileRecord, steps_column
from aecflow.store.statuses import FileStatus, JobStatus
from aecflow.streams import file_chunks
from aecflow.telemetry import continued, tracer

log = logging.getLogger("aecflow.worker")  # a stable name: users filter on it

MiB = 1024 * 1024
#: Outcomes that another attempt could change.
RETRYABLE = frozenset({Outcome.CRASHED})
INFRASTRUCTURE = "infrastructure"
#: What an artifact may be called (:class:`aecflow.processing.Artifact`).
ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
#: Lost jobs one pass ends at most; the next pass takes the rest.
EXPIRE_BATCH = 100


def fit_concurrency(wanted: int, memory_limit_mb: int) -> int:
    """Bound concurrency so that concurrency x memory cap fits in 80 % of this machine."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    fits = max(1, int(total * 0.8) // (memory_limit_mb * MiB))
    if wanted > fits:
        log.warning(
            "concurrency %d x %d MB exceeds this machine's memory; using %d",
            wanted,
            memory_limit_mb,
            fits,
        )
    return min(wanted, fits)


Runner = Callable[[ProcessorSpec, Path, ProcessingContext, Limits], Awaitable[RunReport]]


class LostLease(Exception):
    """Another worker holds this job now; our result is dropped."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to record for a run: the outcome, and whether the job is finished."""

    report: RunReport
    final: bool
    processor: str
    #: Artifacts already in storage (name, media_type, size, sha256, storage_key), to record.
    artifacts: tuple[dict[str, Any], ...] = ()


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        concurrency: int | None = None,
        owner: str | None = None,
        runner: Runner = run_isolated,
    ) -> None:
        settings = runtime.settings.processing
        self.runtime = runtime
        #: Runs one processing; the isolated child process unless a test says otherwise.
        self.runner = runner
        self.concurrency = fit_concurrency(
            concurrency or settings.concurrency, settings.memory_limit_mb
        )
        self.owner = owner or leases.new_owner("worker")
        self.lease = dt.timedelta(seconds=settings.lease_s)
        self.poll_s = runtime.settings.worker.poll_interval_s
        #: When :meth:`end_lost_jobs` is next due: a lease takes ``lease_s`` to expire, so
        #: looking twice per lease is enough, and every claim pass need not write for it.
        self._lost_jobs_due = 0.0
        #: Set by :meth:`Runtime.wake` when this process commits new work.
        self.wake = runtime.listen()
        self.running: dict[str, asyncio.Task[None]] = {}
        self.workdir = Path(runtime.settings.data_dir) / "work"

    # -- the loop --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, grace_s: float = 30.0) -> None:
        """Claim and run jobs until ``stop`` is set; then finish or release what is running."""
        failures = 0
        sweeper = asyncio.create_task(self._sweep_temp(stop), name="aecflow temp sweep")
        if (task := asyncio.current_task()) is not None:  # cancelled, it takes its sweeper along
            task.add_done_callback(lambda _: sweeper.cancel())
        while not stop.is_set():
            try:
                claimed = await self.fill()
                failures = 0
            except Exception as exc:
                failures += 1
                claimed = 0
                log.warning(
                    "worker could not claim jobs (%s: %s); retrying", type(exc).__name__, exc
                )
            if claimed and len(self.running) < self.concurrency:
                continue  # there may be more work right away
            delay = self.poll_s if not failures else min(30.0, self.poll_s * 2**failures)
            await self._wait(stop, delay)
        await self.shutdown(grace_s)
        await sweeper  # returns at once: stop is set

    async def _sweep_temp(self, stop: asyncio.Event) -> None:
        """Every ``[worker] temp_sweep_interval_s``: a host killed mid-upload leaves temp files
        that the start-up sweep would only find at the next start."""
        settings = self.runtime.settings.worker
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.temp_sweep_interval_s)
            if stop.is_set():
                return
            try:
                await self.runtime.storage.sweep_temp(settings.temp_max_age_s)
            except Exception as exc:
                log.warning("temp sweep failed (%s: %s); retrying", type(exc).__name__, exc)

    async def run_until_idle(self, *, include_retries: bool = False) -> None:
        """Process until no job is claimable and none is running (CLI and tests).

        With ``include_retries`` it also waits for jobs queued for a later retry.
        """
        while True:
            await self.fill()
            if self.running:
                await asyncio.wait(list(self.running.values()), return_when=asyncio.FIRST_COMPLETED)
            elif include_retries and await self._retries_pending():
                await asyncio.sleep(min(self.poll_s, 0.1))
            else:
                return

    async def _retries_pending(self) -> bool:
        async with self.runtime.engine.connect() as conn:
            return bool(await job_rows.count_by_status(conn, JobStatus.QUEUED))

    def _forget(self, job_id: str, task: object) -> None:
        # Only our own entry: after a lost lease this worker may run the job's next attempt.
        if self.running.get(job_id) is task:
            del self.running[job_id]

    async def _wait(self, stop: asyncio.Event, delay: float) -> None:
        waiters: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self.wake.wait()),
        ]
        if len(self.running) >= self.concurrency:
            waiters += list(self.running.values())
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters[:2]:
                waiter.cancel()
        self.wake.clear()

    async def fill(self) -> int:
        """Claim as many jobs as there are free slots and start them."""
        free = self.concurrency - len(self.running)
        if free <= 0:
            return 0
        if time.monotonic() >= self._lost_jobs_due:
            self._lost_jobs_due = time.monotonic() + self.lease.total_seconds() / 2
            await self.end_lost_jobs()
        now = self.runtime.clock()
        async with self.runtime.engine.begin() as conn:
            rows = await job_rows.claim(
                conn, self.owner, free, self.lease, now, max_attempts=self.max_attempts
            )
            for row in rows:
                await catalog.update_unless_purged(
                    conn, row.file_id, status=FileStatus.PROCESSING, updated_at=now
                )
        for row in rows:
            task = asyncio.create_task(self._execute(row), name=f"job {row.id}")
            self.running[row.id] = task
            task.add_done_callback(functools.partial(self._forget, row.id))
        return len(rows)

    async def end_lost_jobs(self) -> None:
        """End the jobs whose worker was lost on their last attempt: ``crashed``, not run again.

        Killed, or unable to record even its failure, a worker leaves its job ``running``
        until the lease expires; claiming it again would exceed ``max_attempts`` forever. The
        job, the file, the audit row and the event commit together, as :meth:`_record` does.
        """
        now = self.runtime.clock()
        try:
            async with self.runtime.engine.begin() as conn:
                for job in await job_rows.expire(conn, EXPIRE_BATCH, self.max_attempts, now):
                    error = (
                        f"{INFRASTRUCTURE}: the worker was lost (killed, or its result could not "
                        f"be recorded) on attempt {job.attempts} of {self.max_attempts}"
                    )
                    if job.last_error:
                        error += f"; the error before: {job.last_error}"
                    capped = cap_error(error)
                    await job_rows.note_error(conn, job.id, capped, now)
                    verdict = Verdict(_report(Outcome.CRASHED, capped), True, job.processor)
                    await self._record_file(conn, job, verdict, job.updated_at, now)
                    log.warning("job %s ended: %s", job.id, capped)
        except Exception as exc:  # the claim that follows leaves these jobs alone anyway
            log.warning("could not end lost jobs (%s: %s); retrying", type(exc).__name__, exc)

    async def shutdown(self, grace_s: float) -> None:
        """Stop: give running jobs ``grace_s`` to finish, then cancel and release them."""
        if not self.running:
            return
        _, pending = await asyncio.wait(list(self.running.values()), timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- one job ---------------------------------------------------------------------------

    async def _execute(self, job: JobRow) -> None:
        started = self.runtime.clock()
        attributes = {
            "job_id": job.id,
            "file_id": job.file_id,
            "processor": job.processor,
            "attempt": job.attempts,
        }
        with (
            continued(job.traceparent),
            tracer.start_as_current_span(
                "aecflow.process",
                attributes={
                    "aecflow.job_id": job.id,
                    "aecflow.file_id": job.file_id,
                    "aecflow.processor": job.processor,
                },
            ) as span,
        ):
            outcome, error_type = await self._execute_in_span(job, started, attributes)
            span.set_attribute("aecflow.outcome", outcome)
            if error_type:
                span.set_attribute("error.type", error_type)

    async def _execute_in_span(
        self, job: JobRow, started: dt.datetime, attributes: dict[str, Any]
    ) -> tuple[str, str | None]:
        outcome, error_type = "ok", None
        verdict: Verdict | None = None
        try:
            verdict = await self._run_with_lease(job)
            await self._finish(job, verdict, started)
            outcome = verdict.report.outcome.value
        except LostLease:
            outcome, error_type = "lost_lease", "LostLease"
            log.warning("job %s was taken over by another worker; result dropped", job.id)
        except asyncio.CancelledError:
            outcome, error_type = "cancelled", "CancelledError"
            await asyncio.shield(self._release(job))
            raise
        except Exception as exc:
            outcome, error_type = "error", type(exc).__name__
            await self._record_failure(job, verdict, exc, started)
        finally:
            self.runtime.emit(
                Observation(
                    "worker.job",
                    (self.runtime.clock() - started).total_seconds(),
                    outcome,
                    error_type,
                    attributes,
                )
            )
        return outcome, error_type

    async def _run_with_lease(self, job: JobRow) -> Verdict:
        run = asyncio.create_task(self._run(job))
        keeper = asyncio.create_task(self._keep_lease(job, run))
        try:
            return await run
        except asyncio.CancelledError:
            if keeper.done() and keeper.result() is False:
                raise LostLease(job.id) from None
            raise
        finally:
            keeper.cancel()
            with suppress(asyncio.CancelledError):
                await keeper

    async def _keep_lease(self, job: JobRow, run: asyncio.Task[Verdict]) -> bool:
        """Renew the lease every third of its length; cancel the run if it was taken over."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                async with self.runtime.engine.begin() as conn:
                    ours = await job_rows.renew(
                        conn, job.id, self.owner, job.attempts, self.lease, self.runtime.clock()
                    )
            except Exception as exc:
                log.warning("could not renew lease of job %s: %s", job.id, exc)
                continue
            if not ours:
                run.cancel()
                return False

    async def _run(self, job: JobRow) -> Verdict:
        async with self.runtime.engine.connect() as conn:
            record = await catalog.get(conn, job.file_id)
        binding = self.runtime.processors.get(job.processor)
        if record is None or record.purged or binding is None:
            why = (
                "the file was purged"
                if record is None or record.purged
                else (f"processor {job.processor!r} is not installed or enabled")
            )
            return Verdict(_report(Outcome.SKIPPED, why), True, job.processor)
        limits, refusal = self.limits_for(binding, record.size)
        if refusal:
            return Verdict(_report(Outcome.OUT_OF_MEMORY, refusal), True, job.processor)
        inputs, waiting = {}, []
        for name in binding.processor.after:
            step = record.steps.get(name, {})
            if step.get("outcome") == Outcome.SUCCEEDED.value:
                inputs[name] = step.get("result") or {}
            else:
                waiting.append(f"{name} ({step.get('outcome') or 'not run'})")
        if waiting:
            why = f"runs after {', '.join(waiting)}, which did not succeed"
            return Verdict(_report(Outcome.SKIPPED, why), True, job.processor)
        self.workdir.mkdir(parents=True, exist_ok=True)
        output_dir = Path(tempfile.mkdtemp(prefix="out-", dir=self.workdir))
        context = ProcessingContext(
            file_id=record.id,
            project=record.project,
            filename=record.filename,
            size=record.size,
            content_type=record.content_type,
            metadata=record.metadata,
            output_dir=output_dir,
            inputs=inputs,
        )
        stored: tuple[dict[str, Any], ...] = ()
        try:
            async with self.local_copy(record) as path:
                report = await self.runner(binding.spec, path, context, limits)
            if report.outcome is Outcome.SUCCEEDED and report.artifacts:
                stored, problem = await self.store_artifacts(job, record, output_dir, report)
                if problem:
                    report = _report(Outcome.CRASHED, problem)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # storage or the machine failed us, not the file
            report = _report(Outcome.CRASHED, f"{INFRASTRUCTURE}: {type(exc).__name__}: {exc}")
        finally:
            await asyncio.to_thread(shutil.rmtree, output_dir, ignore_errors=True)
        self.runtime.emit(
            Observation(
                "processing.run",
                report.duration_s,
                report.outcome.value,
                None,
                {
                    "processor": job.processor,
                    "file_id": record.id,
                    "bytes": record.size,
                    "peak_rss_mb": report.peak_rss_mb,
                },
            )
        )
        final = report.outcome not in RETRYABLE or job.attempts >= self.max_attempts
        log.info(
            "processed %s/%s %s with %s: %s in %.2fs%s%s",
            record.project,
            record.filename,
            record.id,
            job.processor,
            report.outcome.value,
            report.duration_s,
            f" ({report.error})" if report.error else "",
            "" if final else f"; attempt {job.attempts} of {self.max_attempts}, will retry",
        )
        return Verdict(report, final, job.processor, stored)

    async def store_artifacts(
        self, job: JobRow, record: FileRecord, output_dir: Path, report: RunReport
    ) -> tuple[tuple[dict[str, Any], ...], str | None]:
        """Stream each declared artifact from the child's output directory into storage,
        under the file's key space, this job's id and attempt (neither a rerun nor a lost attempt
        of the same job cleaning up after itself touches the artifact being served). Returns
        what was stored, or why the declaration is refused (a processor's mistake: the objects
        already stored are removed again)."""
        stored: list[dict[str, Any]] = []
        problem = None
        try:
            for declared in report.artifacts:
                name, media_type = declared["name"], declared["media_type"]
                path = output_dir / name
                if not ARTIFACT_NAME.fullmatch(name) or any(s["name"] == name for s in stored):
                    problem = f"invalid or repeated artifact name {name[:200]!r}"
                elif path.is_symlink() or not path.is_file():
                    problem = f"artifact {name!r} was declared but not written to output_dir"
                elif len(media_type) > 255 or "/" not in media_type:
                    problem = f"artifact {name!r} has an invalid media type {media_type[:100]!r}"
                if problem:
                    break
                key = f"{record.storage_key}.artifacts/{job.id}-{job.attempts}/{name}"
                size = (await asyncio.to_thread(path.stat)).st_size
                obj = await self.runtime.storage.put(
                    key, file_chunks(path), size=size, content_type=media_type
                )
                stored.append(
                    {
                        "name": name,
                        "media_type": media_type,
                        "size": obj.size,
                        "sha256": obj.sha256,
                        "storage_key": obj.key,
                    }
                )
        except BaseException:
            await asyncio.shield(self._delete_objects([s["storage_key"] for s in stored]))
            raise
        if problem:
            await self._delete_objects([s["storage_key"] for s in stored])
            return (), cap_error(f"the processor's artifacts: {problem}")
        return tuple(stored), None

    async def _delete_objects(self, keys: list[str]) -> None:
        for key in keys:
            try:
                await self.runtime.storage.delete(key)
            except Exception as exc:
                log.warning("could not delete artifact object %s: %s", key, exc)

    @property
    def max_attempts(self) -> int:
        return self.runtime.settings.processing.max_attempts

    @property
    def retry_backoff_s(self) -> float:
        return self.runtime.settings.processing.retry_backoff_s

    def limits_for(self, binding: ProcessorBinding, size: int) -> tuple[Limits, str | None]:
        """Per-processor settings, else the global ones; the processor may ask for less."""
        settings = self.runtime.settings.processing
        memory = binding.settings.memory_limit_mb or settings.memory_limit_mb
        timeout = binding.settings.timeout_s or settings.timeout_s
        needs = binding.processor.resources(size)
        if needs.timeout_s:
            timeout = min(timeout, needs.timeout_s)
        limits = Limits(timeout_s=timeout, memory_mb=memory)
        if needs.memory_mb and needs.memory_mb > memory:
            return limits, (
                f"a file of {size} bytes needs about {needs.memory_mb} MB, more than "
                f"the memory limit of {memory} MB for processor {binding.processor.name!r}"
            )
        return limits, None

    @asynccontextmanager
    async def local_copy(self, record: FileRecord) -> AsyncIterator[Path]:
        """A path the child can read: the backend's own, or a temporary copy streamed to disk."""
        path = await self.runtime.storage.local_path(record.storage_key)
        if path is not None:
            yield path
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmpdir = Path(tempfile.mkdtemp(prefix="job-", dir=self.workdir))
        copy = tmpdir / record.filename  # validated: a bare name, so the suffix is kept
        try:
            with copy.open("wb") as handle:
                async for chunk in self.runtime.storage.open(record.storage_key):
                    await asyncio.to_thread(handle.write, chunk)
            yield copy
        finally:
            await asyncio.to_thread(shutil.rmtree, tmpdir, ignore_errors=True)

    # -- recording -------------------------------------------------------------------------

    async def _finish(self, job: JobRow, verdict: Verdict, started: dt.datetime) -> None:
        new_keys = [item["storage_key"] for item in verdict.artifacts]
        try:
            async for attempt in db_retries():
                with attempt:
                    replaced = await self._record(job, verdict, started)
        except BaseException:
            await asyncio.shield(self._delete_objects(new_keys))
            raise
        await self._delete_objects([key for key in replaced if key not in new_keys])

    async def _record_failure(
        self, job: JobRow, verdict: Verdict | None, exc: Exception, started: dt.datetime
    ) -> None:
        """Record that the run or its recording failed, as a crash: the attempt counts, and
        the last one ends the job. If this fails too, the lease expires (see
        :meth:`end_lost_jobs`)."""
        what = "the job could not be run" if verdict is None else "the result could not be recorded"
        log.error("job %s: %s", job.id, what, exc_info=exc)
        cause = getattr(exc, "orig", None) or exc  # the driver's message, not the SQL and values
        error = cap_error(
            f"{INFRASTRUCTURE}: {what} on attempt {job.attempts} of {self.max_attempts}: "
            f"{type(exc).__name__}: {cause}"
        )
        final = job.attempts >= self.max_attempts
        try:
            await self._finish(
                job, Verdict(_report(Outcome.CRASHED, error), final, job.processor), started
            )
        except LostLease:
            log.warning("job %s was taken over by another worker; failure dropped", job.id)
        except Exception:
            log.exception("job %s: could not record that either; its lease will expire", job.id)

    async def _record(self, job: JobRow, verdict: Verdict, started: dt.datetime) -> list[str]:
        """Record the attempt; returns the storage keys of artifacts it replaced."""
        report, now = verdict.report, self.runtime.clock()
        # Again here, for runners other than run_isolated: an error the database refuses would
        # leave the file ``processing`` for ever.
        error = cap_error(report.error)
        succeeded = report.outcome in (Outcome.SUCCEEDED, Outcome.SKIPPED)
        if verdict.final:
            status, available_at = JobStatus.DONE if succeeded else JobStatus.FAILED, None
        else:
            status = JobStatus.QUEUED
            available_at = now + backoff(job.attempts, self.retry_backoff_s, 3600.0)
        async with self.runtime.engine.begin() as conn:
            held = await job_rows.finish(
                conn,
                job.id,
                self.owner,
                job.attempts,
                now,
                status=status,
                last_error=error,
                available_at=available_at,
            )
            if not held:
                raise LostLease(job.id)
            replaced = []
            if verdict.final and verdict.report.outcome is Outcome.SUCCEEDED:
                replaced = await pipeline_rows.replace_step_artifacts(
                    conn, job.file_id, job.processor, list(verdict.artifacts), now
                )
            await self._record_file(conn, job, verdict, started, now)
        return replaced

    async def _record_file(
        self,
        conn: AsyncConnection,
        job: JobRow,
        verdict: Verdict,
        started: dt.datetime,
        now: dt.datetime,
    ) -> None:
        """The file's side of an attempt, in the caller's transaction: its processing
        record, and when the job is finished its audit row and event."""
        report = verdict.report
        succeeded = report.outcome in (Outcome.SUCCEEDED, Outcome.SKIPPED)
        processing = {
            "processor": verdict.processor,
            "outcome": report.outcome.value,
            "error": cap_error(report.error),
            "started_at": iso(started),
            "finished_at": iso(now),
            "duration_s": round(report.duration_s, 3),
            "result": report.result,
            "attempts": job.attempts,
        }
        if not verdict.final:
            processing["outcome"] = None
        # Locked: the file's other steps finish in transactions of their own.
        steps = await pipeline_rows.lock_file(conn, job.file_id)
        record = await catalog.get(conn, job.file_id)
        if verdict.final:
            await self.runtime.audit.insert(
                conn,
                Operation(
                    self.runtime.audit,
                    f"processing.{report.outcome.value}",
                    False,
                    file_id=job.file_id,
                    details={"processor": verdict.processor, "attempts": job.attempts},
                ).row("ok" if succeeded else "error", None if succeeded else report.outcome.value),
            )
        if steps is None or record is None:
            return  # purged: the row keeps its scrub (a job finishing late, say)
        was_ended = record.ended
        step: dict[str, Any] = {k: v for k, v in processing.items() if k != "processor"}
        step["after"] = list(steps.get(job.processor, {}).get("after", []))
        steps[job.processor] = step
        successors: list[str] = []
        if verdict.final:
            successors = _unblock(steps, job.processor)
        values: dict[str, Any] = {"steps": steps_column(steps)}
        primary = record.processing.get("processor")
        if primary == job.processor or (primary is None and not record.steps):
            values["processing"] = processing
            primary_outcome = processing["outcome"]
        else:
            primary_outcome = record.processing.get("outcome")
        outcomes = [s.get("outcome") for s in steps.values()]
        ended = primary_outcome is not None and None not in outcomes
        status = (
            FileStatus.PROCESSING
            if not ended
            else FileStatus.FAILED
            if any(o not in FINE for o in outcomes)
            else FileStatus.STORED
            if all(o == Outcome.SKIPPED.value for o in outcomes)
            else FileStatus.PROCESSED
        )
        await catalog.update_unless_purged(
            conn, job.file_id, status=status, updated_at=now, **values
        )
        for name in successors:
            await job_rows.enqueue(conn, job.file_id, name, job.traceparent, now)
        if successors:
            self.runtime.wake()
        if not verdict.final:
            return
        record = await catalog.get(conn, job.file_id)
        if record is None:
            return
        if report.outcome is not Outcome.SKIPPED:
            event = "file.step_succeeded" if succeeded else "file.step_failed"
            await announce(conn, self.runtime.notifiers, event, record, now, step=job.processor)
        if ended and not was_ended and status is not FileStatus.STORED:
            event = "file.processed" if status is FileStatus.PROCESSED else "file.processing_failed"
            await announce(conn, self.runtime.notifiers, event, record, now)

    async def _release(self, job: JobRow) -> None:
        """Hand a job back (shutdown): queued again, and the attempt does not count."""
        try:
            async with self.runtime.engine.begin() as conn:
                await job_rows.release(conn, job.id, self.owner, job.attempts, self.runtime.clock())
        except Exception:
            log.exception("could not release job %s; its lease will expire", job.id)


def _unblock(steps: dict[str, dict[str, Any]], finished: str) -> list[str]:
    """After ``finished`` ended: the waiting steps now free to run (all their predecessors
    succeeded); those after one that did not are skipped, naming it, and so on down."""
    ready: list[str] = []
    changed = True
    while changed:
        changed = False
        for name, step in steps.items():
            if step.get("outcome") is not None or name in ready:
                continue
            after = step.get("after") or []
            if not after:
                continue
            outcomes = {p: steps.get(p, {}).get("outcome") for p in after}
            if any(o is None for o in outcomes.values()):
                continue
            failed = [p for p, o in outcomes.items() if o != Outcome.SUCCEEDED.value]
            if failed:
                step["outcome"] = Outcome.SKIPPED.value
                step["error"] = f"runs after {', '.join(failed)}, which did not succeed"
                changed = True
            elif finished in after:
                ready.append(name)
    return ready


def _report(outcome: Outcome, error: str | None) -> RunReport:
    return RunReport(
        outcome=outcome, result=None, error=error, duration_s=0.0, peak_rss_mb=None, log_tail=""
    )
