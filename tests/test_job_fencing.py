"""A lost attempt of a job must not end, renew or hand back the attempt that replaced it.

One worker process claims under one owner id, so it may claim its own job again once its lease
expired (under load a renewal comes too late). Fencing on the owner alone let the lost attempt's
late finish or release act on the new attempt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import sqlalchemy as sa

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


async def _reclaimed(flow: Flow) -> tuple[job_rows.JobRow, job_rows.JobRow, dt.datetime]:
    """Claim, let the lease expire (by SQL), and claim again under the same owner."""
    now = dt.datetime.now(dt.UTC)
    async with flow.engine.begin() as conn:
        [first] = await job_rows.claim(conn, OWNER, 5, LEASE, now, max_attempts=3)
        await conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == first.id)
            .values(lease_until=now - dt.timedelta(seconds=1))
        )
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


async def test_a_worker_that_reclaimed_its_own_job_records_only_the_new_attempt(
    tmp_path: Path, database_url: str
) -> None:
    """The lost attempt's late wrong result is dropped; the new attempt stays tracked and ends
    the job and the file."""
    settings = make_settings(
        tmp_path, database_url, notifiers=[], processing={"lease_s": 30, "max_attempts": 2}
    )
    gates = [asyncio.Event(), asyncio.Event()]
    reports = [
        RunReport(Outcome.INVALID_INPUT, None, "late and wrong", 1.0, None, ""),
        RunReport(Outcome.SUCCEEDED, {"ok": True}, None, 0.01, None, ""),
    ]
    started = [asyncio.Event(), asyncio.Event()]
    calls: list[int] = []

    async def gated_runner(spec, path, context, limits) -> RunReport:  # type: ignore[no-untyped-def]
        index = len(calls)
        calls.append(index)
        started[index].set()
        await gates[index].wait()
        return reports[index]

    async with Flow.open(settings, plugins=PLUGINS) as flow:
        record = await flow.ingest("p1", "a.ok", aiter_bytes(b"data"))
        worker = Worker(flow.runtime, concurrency=2, runner=gated_runner)
        assert await worker.fill() == 1
        await started[0].wait()
        [(job_id, lost)] = worker.running.items()
        async with flow.engine.begin() as conn:
            await conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id)
                .values(lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
        assert await worker.fill() == 1  # the same owner claims its expired job again
        await started[1].wait()
        current = worker.running[job_id]
        assert current is not lost
        gates[0].set()
        await lost
        assert worker.running.get(job_id) is current
        row = await _row(flow, job_id)
        assert (row.status, row.attempts) == (JobStatus.RUNNING, 2)
        gates[1].set()
        await current
        row = await _row(flow, job_id)
        assert (row.status, row.attempts, row.lease_owner) == (JobStatus.DONE, 2, None)
        done = await flow.get(record.id)
        assert done.status == "processed"
        assert (done.processing["attempts"], done.processing["error"]) == (2, None)


async def test_a_lost_attempts_late_artifacts_leave_the_winners_in_place(
    tmp_path: Path, database_url: str
) -> None:
    """Both attempts of one job write an artifact of the same name; the new attempt ends first
    and records its artifact. The lost attempt's finish is refused and its objects are removed:
    that must not remove the winner's (the attempt number is part of the key)."""
    settings = make_settings(
        tmp_path, database_url, notifiers=[], processing={"lease_s": 30, "max_attempts": 2}
    )
    gates = [asyncio.Event(), asyncio.Event()]
    started = [asyncio.Event(), asyncio.Event()]
    calls: list[int] = []

    async def gated_runner(spec, path, context, limits) -> RunReport:  # type: ignore[no-untyped-def]
        index = len(calls)
        calls.append(index)
        (context.output_dir / "out.txt").write_bytes(f"attempt {index + 1}".encode())
        started[index].set()
        await gates[index].wait()
        artifact = {"name": "out.txt", "media_type": "text/plain"}
        return RunReport(Outcome.SUCCEEDED, {"n": index}, None, 0.01, None, "", (artifact,))

    async with Flow.open(settings, plugins=PLUGINS) as flow:
        record = await flow.ingest("p1", "a.ok", aiter_bytes(b"data"))
        worker = Worker(flow.runtime, concurrency=2, runner=gated_runner)
        assert await worker.fill() == 1
        await started[0].wait()
        [(job_id, lost)] = worker.running.items()
        async with flow.engine.begin() as conn:
            await conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id)
                .values(lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
        assert await worker.fill() == 1
        await started[1].wait()
        current = worker.running[job_id]
        gates[1].set()
        await current
        gates[0].set()
        await lost
        [artifact] = await flow.artifacts(record.id)
        chunks = [c async for c in flow.runtime.storage.open(artifact.storage_key)]
        assert b"".join(chunks) == b"attempt 2"
