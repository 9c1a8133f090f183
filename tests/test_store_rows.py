"""The store hands out typed rows, and is the only place that writes SQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

import aecflow
from aecflow.flow import Flow
from aecflow.store import jobs as job_rows
from aecflow.store import outbox as outbox_rows
from aecflow.store.jobs import JobRow
from aecflow.store.outbox import OutboxRow
from aecflow.store.statuses import JobStatus, OutboxStatus
from aecflow.streams import aiter_bytes

from . import engine_plugin
from .conftest import make_settings

PLUGINS = [("engine_plugin", engine_plugin)]
CORE = Path(aecflow.__file__).resolve().parent
SQL = re.compile(r"\bsa\.(select|insert|update|delete|text)\(")


async def test_claimed_jobs_are_frozen_typed_rows(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, notifiers=[])
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        record = await flow.ingest("p1", "a.ok", aiter_bytes(b"data"))
        now = dt.datetime.now(dt.UTC)
        async with flow.engine.begin() as conn:
            [job] = await job_rows.claim(
                conn, "worker:test", 5, dt.timedelta(seconds=30), now, max_attempts=3
            )
    assert isinstance(job, JobRow)
    assert job.status is JobStatus.RUNNING
    assert (job.file_id, job.lease_owner, job.attempts) == (record.id, "worker:test", 1)
    assert job.lease_until is not None and job.lease_until > now
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.attempts = 0  # type: ignore[misc]


async def test_claimed_events_are_frozen_typed_rows(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url, notifiers=[{"backend": "flaky", "fail_times": 0}]
    )
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        record = await flow.ingest("p1", "a.bin", aiter_bytes(b"data"))
        now = dt.datetime.now(dt.UTC)
        async with flow.engine.begin() as conn:
            [row] = await outbox_rows.claim(
                conn, "flaky", "dispatcher:test", 10, dt.timedelta(seconds=30), now
            )
    assert isinstance(row, OutboxRow)
    assert row.status is OutboxStatus.PENDING
    assert (row.destination, row.file_id, row.project) == ("flaky", record.id, "p1")
    assert row.payload["file"]["id"] == record.id and row.attempts == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.attempts = 1  # type: ignore[misc]


def test_sql_is_written_only_in_the_store() -> None:
    found = [
        f"{path.relative_to(CORE)}:{number}: {line.strip()}"
        for path in sorted(CORE.rglob("*.py"))
        if path.relative_to(CORE).parts[0] != "store"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SQL.search(line)
    ]
    assert found == []
