"""The processing worker: claims jobs, runs processors in isolated children, records outcomes.

Any number of workers (threads of one host or ``aecflow worker`` processes on many machines)
share the ``jobs`` table through leases (see :mod:`aecflow.leases`). A job's lease is renewed
while its child runs; if renewal finds the lease taken over, the child is killed. Finishing is
fenced on the lease owner, so a worker that lost its lease cannot overwrite the result.

Invalid input, a timeout and exhausted memory are properties of the file under the configured
limits: the job fails at once. A crash or an infrastructure error (storage or database) is
retried with backoff until ``processing.max_attempts``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aecflow import leases
from aecflow.audit import Operation
from aecflow.components import ProcessorBinding
from aecflow.db.schema import files, jobs
from aecflow.isolation import Limits, ProcessorSpec, RunReport, run_isolated
from aecflow.observe import Observation
from aecflow.processing import Outcome, ProcessingContext
from aecflow.records import FileRecord, FileStatus
from aecflow.retries import backoff, db_retries
from aecflow.telemetry import continued, tracer

if TYPE_CHECKING:
    from aecflow.flow import Flow

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Outcomes that another attempt could change.
RETRYABLE = frozenset({Outcome.CRASHED})
INFRASTRUCTURE = "infrastructure"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


class Worker:
    def __init__(
        self,
        flow: Flow,
        *,
        concurrency: int | None = None,
        owner: str | None = None,
        runner: Runner = run_isolated,
    ) -> None:
        settings = flow.settings.processing
        self.flow = flow
        #: Runs one processing; the isolated child process unless a test says otherwise.
        self.runner = runner
        self.concurrency = fit_concurrency(
            concurrency or settings.concurrency, settings.memory_limit_mb
        )
        self.owner = owner or leases.new_owner("worker")
        self.lease = dt.timedelta(seconds=settings.lease_s)
        self.poll_s = flow.settings.worker.poll_interval_s
        self.wake = asyncio.Event()
        self.running: dict[str, asyncio.Task[None]] = {}
        self.workdir = Path(flow.settings.data_dir) / "work"

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
        settings = self.flow.settings.worker
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.temp_sweep_interval_s)
            if stop.is_set():
                return
            try:
                await self.flow.storage.sweep_temp(settings.temp_max_age_s)
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
        async with self.flow.engine.connect() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status == "queued")
            )
        return bool(count)

    def _forget(self, job_id: str, _task: object) -> None:
        self.running.pop(job_id, None)

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
        now = utcnow()
        async with self.flow.engine.begin() as conn:
            rows = await leases.claim_jobs(conn, self.owner, free, self.lease, now)
            for row in rows:
                await conn.execute(
                    sa.update(files)
                    .where(files.c.id == row["file_id"], files.c.purged_at.is_(None))
                    .values(status=FileStatus.PROCESSING, updated_at=now)
                )
        for row in rows:
            task = asyncio.create_task(self._execute(dict(row)), name=f"job {row['id']}")
            self.running[row["id"]] = task
            task.add_done_callback(functools.partial(self._forget, row["id"]))
        return len(rows)

    async def shutdown(self, grace_s: float) -> None:
        """Stop: give running jobs ``grace_s`` to finish, then cancel and release them."""
        if not self.running:
            return
        _, pending = await asyncio.wait(list(self.running.values()), timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- one job ---------------------------------------------------------------------------

    async def _execute(self, job: dict[str, Any]) -> None:
        started = utcnow()
        attributes = {
            "job_id": job["id"],
            "file_id": job["file_id"],
            "processor": job["processor"],
            "attempt": job["attempts"],
        }
        with (
            continued(job.get("traceparent")),
            tracer.start_as_current_span(
                "aecflow.process",
                attributes={
                    "aecflow.job_id": job["id"],
                    "aecflow.file_id": job["file_id"],
                    "aecflow.processor": job["processor"],
                },
            ) as span,
        ):
            outcome, error_type = await self._execute_in_span(job, started, attributes)
            span.set_attribute("aecflow.outcome", outcome)
            if error_type:
                span.set_attribute("error.type", error_type)

    async def _execute_in_span(
        self, job: dict[str, Any], started: dt.datetime, attributes: dict[str, Any]
    ) -> tuple[str, str | None]:
        outcome, error_type = "ok", None
        try:
            verdict = await self._run_with_lease(job)
            await self._finish(job, verdict, started)
            outcome = verdict.report.outcome.value
        except LostLease:
            outcome, error_type = "lost_lease", "LostLease"
            log.warning("job %s was taken over by another worker; result dropped", job["id"])
        except asyncio.CancelledError:
            outcome, error_type = "cancelled", "CancelledError"
            await asyncio.shield(self._release(job))
            raise
        except Exception as exc:
            outcome, error_type = "error", type(exc).__name__
            log.exception("job %s could not be recorded; its lease will expire", job["id"])
        finally:
            self.flow.emit(
                Observation(
                    "worker.job",
                    (utcnow() - started).total_seconds(),
                    outcome,
                    error_type,
                    attributes,
                )
            )
        return outcome, error_type

    async def _run_with_lease(self, job: Mapping[str, Any]) -> Verdict:
        run = asyncio.create_task(self._run(job))
        keeper = asyncio.create_task(self._keep_lease(job["id"], run))
        try:
            return await run
        except asyncio.CancelledError:
            if keeper.done() and keeper.result() is False:
                raise LostLease(job["id"]) from None
            raise
        finally:
            keeper.cancel()
            with suppress(asyncio.CancelledError):
                await keeper

    async def _keep_lease(self, job_id: str, run: asyncio.Task[Verdict]) -> bool:
        """Renew the lease every third of its length; cancel the run if it was taken over."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                async with self.flow.engine.begin() as conn:
                    ours = await leases.renew(conn, jobs, job_id, self.owner, self.lease, utcnow())
            except Exception as exc:
                log.warning("could not renew lease of job %s: %s", job_id, exc)
                continue
            if not ours:
                run.cancel()
                return False

    async def _run(self, job: Mapping[str, Any]) -> Verdict:
        async with self.flow.engine.connect() as conn:
            row = (
                (await conn.execute(sa.select(files).where(files.c.id == job["file_id"])))
                .mappings()
                .first()
            )
        record = FileRecord.from_row(row) if row else None
        binding = self.flow.processors.get(job["processor"])
        if record is None or record.purged or binding is None:
            why = (
                "the file was purged"
                if record is None or record.purged
                else (f"processor {job['processor']!r} is not installed or enabled")
            )
            return Verdict(_report(Outcome.SKIPPED, why), True, job["processor"])
        limits, refusal = self.limits_for(binding, record.size)
        if refusal:
            return Verdict(_report(Outcome.OUT_OF_MEMORY, refusal), True, job["processor"])
        context = ProcessingContext(
            file_id=record.id,
            project=record.project,
            filename=record.filename,
            size=record.size,
            content_type=record.content_type,
            metadata=record.metadata,
        )
        try:
            async with self.local_copy(record) as path:
                report = await self.runner(binding.spec, path, context, limits)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # storage or the machine failed us, not the file
            report = _report(Outcome.CRASHED, f"{INFRASTRUCTURE}: {type(exc).__name__}: {exc}")
        self.flow.emit(
            Observation(
                "processing.run",
                report.duration_s,
                report.outcome.value,
                None,
                {
                    "processor": job["processor"],
                    "file_id": record.id,
                    "bytes": record.size,
                    "peak_rss_mb": report.peak_rss_mb,
                },
            )
        )
        final = report.outcome not in RETRYABLE or job["attempts"] >= self.max_attempts
        log.info(
            "processed %s/%s %s with %s: %s in %.2fs%s%s",
            record.project,
            record.filename,
            record.id,
            job["processor"],
            report.outcome.value,
            report.duration_s,
            f" ({report.error})" if report.error else "",
            "" if final else f"; attempt {job['attempts']} of {self.max_attempts}, will retry",
        )
        return Verdict(report, final, job["processor"])

    @property
    def max_attempts(self) -> int:
        return self.flow.settings.processing.max_attempts

    @property
    def retry_backoff_s(self) -> float:
        return self.flow.settings.processing.retry_backoff_s

    def limits_for(self, binding: ProcessorBinding, size: int) -> tuple[Limits, str | None]:
        """Per-processor settings, else the global ones; the processor may ask for less."""
        settings = self.flow.settings.processing
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
        path = await self.flow.storage.local_path(record.storage_key)
        if path is not None:
            yield path
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmpdir = Path(tempfile.mkdtemp(prefix="job-", dir=self.workdir))
        copy = tmpdir / record.filename  # validated: a bare name, so the suffix is kept
        try:
            with copy.open("wb") as handle:
                async for chunk in self.flow.storage.open(record.storage_key):
                    await asyncio.to_thread(handle.write, chunk)
            yield copy
        finally:
            await asyncio.to_thread(shutil.rmtree, tmpdir, ignore_errors=True)

    # -- recording -------------------------------------------------------------------------

    async def _finish(self, job: Mapping[str, Any], verdict: Verdict, started: dt.datetime) -> None:
        async for attempt in db_retries():
            with attempt:
                await self._record(job, verdict, started)

    async def _record(self, job: Mapping[str, Any], verdict: Verdict, started: dt.datetime) -> None:
        report, now = verdict.report, utcnow()
        succeeded = report.outcome in (Outcome.SUCCEEDED, Outcome.SKIPPED)
        if verdict.final:
            job_values: dict[str, Any] = {"status": "done" if succeeded else "failed"}
        else:
            job_values = {
                "status": "queued",
                "available_at": now + backoff(job["attempts"], self.retry_backoff_s, 3600.0),
            }
        async with self.flow.engine.begin() as conn:
            result = await conn.execute(
                sa.update(jobs)
                .where(leases.held_by(jobs, job["id"], self.owner), jobs.c.status == "running")
                .values(
                    lease_owner=None,
                    lease_until=None,
                    last_error=report.error,
                    updated_at=now,
                    **job_values,
                )
            )
            if result.rowcount != 1:
                raise LostLease(job["id"])
            processing = {
                "processor": verdict.processor,
                "outcome": report.outcome.value,
                "error": report.error,
                "started_at": _iso(started),
                "finished_at": _iso(now),
                "duration_s": round(report.duration_s, 3),
                "result": report.result,
                "attempts": job["attempts"],
            }
            if not verdict.final:
                processing["outcome"] = None
            status = (
                FileStatus.PROCESSING
                if not verdict.final
                else FileStatus.STORED
                if report.outcome is Outcome.SKIPPED
                else FileStatus.PROCESSED
                if succeeded
                else FileStatus.FAILED
            )
            await conn.execute(
                sa.update(files)
                .where(files.c.id == job["file_id"], files.c.purged_at.is_(None))
                .values(status=status, processing=processing, updated_at=now)
            )
            if verdict.final:
                await self.flow.audit.insert(
                    conn,
                    Operation(
                        self.flow.audit,
                        f"processing.{report.outcome.value}",
                        False,
                        file_id=job["file_id"],
                        details={"processor": verdict.processor, "attempts": job["attempts"]},
                    ).row(
                        "ok" if succeeded else "error", None if succeeded else report.outcome.value
                    ),
                )
            if verdict.final and report.outcome is not Outcome.SKIPPED:
                record = await self.flow.get_in(conn, job["file_id"])
                if record is not None and not record.purged:
                    event = "file.processed" if succeeded else "file.processing_failed"
                    await self.flow.announce(conn, event, record, now)

    async def _release(self, job: Mapping[str, Any]) -> None:
        """Hand a job back (shutdown): queued again, and the attempt does not count."""
        try:
            async with self.flow.engine.begin() as conn:
                await conn.execute(
                    sa.update(jobs)
                    .where(leases.held_by(jobs, job["id"], self.owner))
                    .values(
                        status="queued",
                        lease_owner=None,
                        lease_until=None,
                        attempts=jobs.c.attempts - 1,
                        available_at=utcnow(),
                    )
                )
        except Exception:
            log.exception("could not release job %s; its lease will expire", job["id"])


def _report(outcome: Outcome, error: str | None) -> RunReport:
    return RunReport(
        outcome=outcome, result=None, error=error, duration_s=0.0, peak_rss_mb=None, log_tail=""
    )


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
