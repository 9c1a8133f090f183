"""The ``uploads`` data access (aecflow.store.uploads) on SQLite and PostgreSQL: typed rows that
survive the round trip, the completing claim and the sweep's selection; and the rule that the
upload service writes no SQL of its own."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import aecflow.uploads
from aecflow.flow import Flow
from aecflow.ids import uuid7
from aecflow.storage import PartInfo
from aecflow.store import uploads as store
from aecflow.store.statuses import UploadStatus
from aecflow.store.uploads import UploadRow

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
MiB = 1024 * 1024


def session(**values: Any) -> UploadRow:
    file_id = uuid7()
    row = UploadRow(
        id=uuid7(),
        project="tower-a",
        filename="model.ifc",
        size=12 * MiB,
        sha256=None,
        part_size=5 * MiB,
        part_count=3,
        part_sha256=("a" * 64, "b" * 64, "c" * 64),
        content_type="application/x-step",
        meta={"phase": "design"},
        transport="host",
        storage_backend="local",
        storage_key=f"tower-a/{file_id}",
        storage_upload_id="handle",
        file_id=file_id,
        status=UploadStatus.OPEN,
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + dt.timedelta(hours=1),
        opened_by="token:t1",
    )
    return dataclasses.replace(row, **values)


async def test_rows_come_back_typed_as_they_were_written(flow: Flow) -> None:
    row = session()
    async with flow.engine.begin() as conn:
        await store.insert(conn, row)
        await store.insert_part(conn, row.id, PartInfo(2, 5 * MiB, "b" * 64, "e2"), NOW)
    async with flow.engine.connect() as conn:
        read = await store.get(conn, row.id)
        held = await store.parts(conn, row.id)
        totals = await store.open_totals(conn, NOW, opened_by="token:t1")
    assert read == row
    assert type(read.status) is UploadStatus
    assert read.part_length(3) == 2 * MiB and read.declared_part(2) == "b" * 64
    assert [part.info() for part in held] == [PartInfo(2, 5 * MiB, "b" * 64, "e2")]
    assert totals == (1, 12 * MiB)


async def test_one_claim_until_its_lease_runs_out(flow: Flow) -> None:
    row = session()
    lease = dt.timedelta(minutes=15)
    async with flow.engine.begin() as conn:
        await store.insert(conn, row)
        assert await store.claim(conn, row.id, lease, NOW)
        assert not await store.claim(conn, row.id, lease, NOW + dt.timedelta(minutes=14))
        assert not await store.touch_open(conn, row.id, NOW)  # completing: no part recorded
        assert await store.claim(conn, row.id, lease, NOW + dt.timedelta(minutes=16))
        claimed = await store.get(conn, row.id)
    assert claimed is not None and claimed.status == UploadStatus.COMPLETING
    assert claimed.lease_until == NOW + dt.timedelta(minutes=31)


async def test_the_sweep_expires_overdue_sessions_and_lists_them_once_cleaned(flow: Flow) -> None:
    overdue, live = session(), session(expires_at=NOW + dt.timedelta(days=1))
    later = NOW + dt.timedelta(hours=2)
    async with flow.engine.begin() as conn:
        await store.insert(conn, overdue)
        await store.insert(conn, live)
        await store.insert_part(conn, overdue.id, PartInfo(1, 5 * MiB, "a" * 64, "e1"), NOW)
        await store.expire_overdue(conn, later)
        pending = await store.to_clean(conn, 100)
        await store.mark_cleaned(conn, overdue.id, later)
        assert await store.to_clean(conn, 100) == []
        assert await store.parts(conn, overdue.id) == []
        still = await store.get(conn, live.id)
    assert [(row.id, row.status) for row in pending] == [(overdue.id, UploadStatus.EXPIRED)]
    assert still is not None and still.status == UploadStatus.OPEN


def test_the_upload_service_writes_no_sql() -> None:
    """SQL of the uploads tables lives in aecflow.store.uploads; the service may name the
    connection type it passes along, nothing more of SQLAlchemy."""
    found = []
    for path in sorted(Path(aecflow.uploads.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            found += [
                f"{path.name}: {name}"
                for name in names
                if name.startswith(("sqlalchemy", "aecflow.store.schema"))
                and name != "sqlalchemy.ext.asyncio"
            ]
    assert found == []
