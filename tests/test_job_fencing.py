"""A lost attempt of a job must not end, renew or hand back the attempt that replaced it.

One worker process claims under one owner id, so it may claim its own job again once its lease
expired (under load a renewal comes too late). Fencing on the owner alone let the lost attempt's
late finish or release act on the new attempt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from aecflow.flow import Flow
from aecflow.isolation import RunReport
from aecflow.jobs.worker import Worker
from aecflow.processing import Outcome
from aecflow.store import jobs as job_rows
from aecflow.store.schema import jobs
from aecflow.store.statuses import JobStatus
from aecflow.streams import aiter_bytes

from . import engine_plugin
from .conftest import make_settings

PLUGINS = [("engine_plugin", engine_plugin)]
OWNER = "worker:host:1:abc"
LEASE = dt.timedelta(seconds=4)


async def _expire_lease(conn: AsyncConnection, job_id: str, now: dt.datetime) -> None:
    await conn.execute(
        sa.update(jobs).where(jobs.c.id == job_id).values(lease_until=now - dt.timedelta(seconds=1))
    )


async def _reclaimed(flow: Flow) -> tuple[job_rows.JobRow, job_rows.JobRow, dt.datetime]:
    """Claim, let the lease expire (by SQL), and claim again under the same owner."""
    now = dt.datetime.now(dt.UTC)
    async with flow.engine.begin() as conn:
        [first] = await job_rows.claim(conn, OWNER, 5, LEASE, now, max_attempts=3)
        await _expire_lease(conn, first.id, now)
    async with flow.engine.begin() as conn:
        [second] = await job_rows.claim(conn, OWNER, 5, LEASE, now, max_attempts=3)
    assert (second.id, second.attempts) == (first.id, 2)
    return first, second, now


async def _row(flow: Flow, job_id: str) -> job_rows.JobRow:
    async with flow.engine.connect() as conn:
        row = (await conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).mappings().one()
    return job_rows.JobRow.of(row)


async def test_a_lost_attempt_cannot_finish_renew_or_release_its_successor(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, notifiers=[])
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        await flow.ingest("p1", "a.ok", aiter_bytes(b"data"))
        first, second, now = await _reclaimed(flow)
        async with flow.engine.begin() as conn:
            renewed = await job_rows.renew(conn, first.id, OWNER, first.attempts, LEASE, now)
            finished = await job_rows.finish(
                conn, first.id, OWNER, first.attempts, now, status=JobStatus.DONE, last_error=None
            )
            await job_rows.release(conn, first.id, OWNER, first.attempts, now)
        assert (renewed, finished) == (False, False)
        row = await _row(flow, first.id)
        assert (row.status, row.attempts, row.lease_owner) == (JobStatus.RUNNING, 2, OWNER)
        async with flow.engine.begin() as conn:
            assert await job_rows.finish(
                conn,
                second.id,
                OWNER,
                second.attempts,
                now,
                status=JobStatus.DONE,
                last_error=None,
            )
            # A release after the end (a shutdown racing the finish) changes nothing.
            await job_rows.release(conn, second.id, OWNER, second.attempts, now)
        row = await _row(flow, second.id)
        assert (row.status, row.attempts, row.lease_owner) == (JobStatus.DONE, 2, None)


class GatedRunner:
    """Stands in for the isolated run: attempt ``i`` (0-based) starts, then waits for
    ``gates[i]`` and returns ``report_of(i, context)``, so a test orders the attempts' ends."""

    def __init__(self, report_of: Callable[[int, Any], RunReport]) -> None:
        self.report_of = report_of
        self.started = [asyncio.Event(), asyncio.Event()]
        self.gates = [asyncio.Event(), asyncio.Event()]
        self.calls = 0

    async def __call__(self, spec: Any, path: Any, context: Any, limits: Any) -> RunReport:
        index, self.calls = self.calls, self.calls + 1
        self.started[index].set()
        await self.gates[index].wait()
        return self.report_of(index, context)


async def _reclaimed_by_the_same_worker(
    flow: Flow, runner: GatedRunner
) -> tuple[Worker, str, asyncio.Task[Any], asyncio.Task[Any]]:
    """One worker claims the job, its lease expires (by SQL), and it claims the job again:
    the worker, the job id, the lost attempt's task and the new attempt's, both still running."""
    worker = Worker(flow.runtime, concurrency=2, runner=runner)
    assert await worker.fill() == 1
    await runner.started[0].wait()
    [(job_id, lost)] = worker.running.items()
    async with flow.engine.begin() as conn:
        await _expire_lease(conn, job_id, dt.datetime.now(dt.UTC))
    assert await worker.fill() == 1  # the same owner claims its expired job again
    await runner.started[1].wait()
    current = worker.running[job_id]
    assert current is not lost
    return worker, job_id, lost, current


async def test_a_worker_that_reclaimed_its_own_job_records_only_the_new_attempt(
    tmp_path: Path, database_url: str
) -> None:
    """The lost attempt's late wrong result is dropped; the new attempt stays tracked and ends
    the job and the file."""
    settings = make_settings(
        tmp_path, database_url, notifiers=[], processing={"lease_s": 30, "max_attempts": 2}
    )
    reports = [
        RunReport(Outcome.INVALID_INPUT, None, "late and wrong", 1.0, None, ""),
        RunReport(Outcome.SUCCEEDED, {"ok": True}, None, 0.01, None, ""),
    ]
    runner = GatedRunner(lambda index, _context: reports[index])
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        record = await flow.ingest("p1", "a.ok", aiter_bytes(b"data"))
        worker, job_id, lost, current = await _reclaimed_by_the_same_worker(flow, runner)
        runner.gates[0].set()
        await lost
        assert worker.running.get(job_id) is current
        row = await _row(flow, job_id)
        assert (row.status, row.attempts) == (JobStatus.RUNNING, 2)
        runner.gates[1].set()
        await current
        row = await _row(flow, job_id)
        assert (row.status, row.attempts, row.lease_owner) == (JobStatus.DONE, 2, None)
        done = await flow.get(record.id)
        assert done.status == "processed"
        assert (done.processing["attempts"], done.processing["error"]) == (2, None)


def _artifact_report(index: int, context: Any) -> RunReport:
    (context.output_dir / "out.txt").write_bytes(f"attempt {index + 1}".encode())
    artifact = {"name": "out.txt", "media_type": "text/plain"}
    return RunReport(Outcome.SUCCEEDED, {"n": index}, None, 0.01, None, "", (artifact,))


async def test_a_lost_attempts_late_artifacts_leave_the_winners_in_place(
    tmp_path: Path, database_url: str
) -> None:
    """Both attempts of one job write an artifact of the same name; the new attempt ends first
    and records its artifact. The lost attempt's finish is refused and its objects are removed:
    that must not remove the winner's (the attempt number is part of the key)."""
    settings = make_settings(
        tmp_path, database_url, notifiers=[], processing={"lease_s": 30, "max_attempts": 2}
    )
    runner = GatedRunner(_artifact_report)
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        record = await flow.ingest("p1", "a.ok", aiter_bytes(b"data"))
        _worker, _job_id, lost, current = await _reclaimed_by_the_same_worker(flow, runner)
        runner.gates[1].set()
        await current
        runner.gates[0].set()
        await lost
        [artifact] = await flow.artifacts(record.id)
        chunks = [c async for c in flow.runtime.storage.open(artifact.storage_key)]
        assert b"".join(chunks) == b"attempt 2"
