"""Jobs and workers on both databases: claiming, leases, fencing and classified outcomes."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import aecflow
from aecflow.errors import ConfigError, PluginError
from aecflow.flow import Flow
from aecflow.isolation import RunReport
from aecflow.jobs.worker import LostLease, Worker
from aecflow.processing import Outcome
from aecflow.registry import ProcessorRegistry
from aecflow.store.schema import files, jobs, outbox
from aecflow.streams import aiter_bytes

from . import engine_plugin, isolation_processors
from .conftest import make_settings

PLUGINS = [("engine_plugin", engine_plugin)]


def engine_settings(tmp_path: Path, database_url: str, **overrides: object):
    base: dict[str, object] = {
        "processing": {
            "lease_s": 2,
            "max_attempts": 2,
            "retry_backoff_s": 0.05,
            "processors": {
                "t-slow": {"timeout_s": 1},
                "t-hog": {"memory_limit_mb": 300},
            },
        },
        "notifiers": [],
    }
    base.update(overrides)
    return make_settings(tmp_path, database_url, **base)


async def quick_runner(spec, path, context, limits) -> RunReport:
    """Stands in for the child process in the many-job tests: the database is what's tested."""
    await asyncio.sleep(0.001)
    return RunReport(Outcome.SUCCEEDED, {"bytes": path.stat().st_size}, None, 0.001, None, "")


async def ingest_many(flow: Flow, n: int) -> list[str]:
    ids = []
    for index in range(n):
        record = await flow.ingest("p1", f"f{index}.ok", aiter_bytes(b"line\n" * (index + 1)))
        ids.append(record.id)
    return ids


@pytest.mark.parametrize("workers", [2, 8])
async def test_concurrent_workers_process_every_job_exactly_once(
    tmp_path: Path, database_url: str, workers: int
) -> None:
    calls: collections.Counter[str] = collections.Counter()

    async def counting_runner(spec, path, context, limits) -> RunReport:
        calls[context.file_id] += 1
        return await quick_runner(spec, path, context, limits)

    settings = engine_settings(tmp_path, database_url, notifiers=[{"backend": "log"}])
    settings.processing.lease_s = 60  # expiry has its own test; here leases must hold
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        ids = await ingest_many(flow, 200)
        pool = [Worker(flow.runtime, concurrency=4, runner=counting_runner) for _ in range(workers)]
        await asyncio.gather(*(worker.run_until_idle() for worker in pool))
        async with flow.engine.connect() as conn:
            statuses = collections.Counter(
                (await conn.execute(sa.select(files.c.status))).scalars().all()
            )
            job_states = collections.Counter(
                (await conn.execute(sa.select(jobs.c.status))).scalars().all()
            )
            processed_events = collections.Counter(
                (
                    await conn.execute(
                        sa.select(outbox.c.file_id).where(outbox.c.event_type == "file.processed")
                    )
                )
                .scalars()
                .all()
            )
    assert statuses == {"processed": 200}
    assert job_states == {"done": 200}
    assert set(calls) == set(ids) and max(calls.values()) == 1
    assert set(processed_events) == set(ids) and max(processed_events.values()) == 1


async def test_expired_lease_is_reclaimed_and_the_late_result_is_fenced(
    tmp_path: Path, database_url: str
) -> None:
    """A worker that vanished mid-job (its lease never renewed, as after SIGKILL)."""
    async with Flow.open(engine_settings(tmp_path, database_url), plugins=PLUGINS) as flow:
        [file_id] = await ingest_many(flow, 1)
        dead = Worker(flow.runtime, owner="worker:dead-host:1", runner=quick_runner)
        async with flow.engine.begin() as conn:
            from aecflow.store import jobs as job_rows

            [job] = await job_rows.claim(
                conn, dead.owner, 1, dead.lease, dt.datetime.now(dt.UTC), max_attempts=2
            )
        # Nothing claims a leased job before its lease runs out...
        survivor = Worker(flow.runtime, runner=quick_runner)
        assert await survivor.fill() == 0
        await asyncio.sleep(dead.lease.total_seconds() + 0.2)
        # ...and after it, another worker takes it over and finishes it.
        await survivor.run_until_idle()
        record = await flow.get(file_id)
        assert record.status == "processed"
        assert record.processing["attempts"] == 2
        # The vanished worker's late result is refused by the fence.
        late = RunReport(Outcome.INVALID_INPUT, None, "late and wrong", 1.0, None, "")
        from aecflow.jobs.worker import Verdict

        with pytest.raises(LostLease):
            await dead._record(job, Verdict(late, True, "t-count"), dt.datetime.now(dt.UTC))
        record = await flow.get(file_id)
        assert record.status == "processed" and record.processing["error"] is None


OUTCOMES = [
    ("model.ok", "processed", "succeeded", None),
    ("model.bad", "failed", "invalid_input", "no ISO-10303-21 header"),
    ("model.slow", "failed", "timed_out", "1"),
    ("model.hog", "failed", "out_of_memory", "300"),
    ("model.segv", "failed", "crashed", "SIGSEGV"),
]


async def test_each_processor_failure_is_classified_and_the_worker_lives_on(
    tmp_path: Path, database_url: str
) -> None:
    async with Flow.open(engine_settings(tmp_path, database_url), plugins=PLUGINS) as flow:
        records = {}
        for name, *_ in OUTCOMES:
            records[name] = await flow.ingest("p1", name, aiter_bytes(b"one\ntwo\n"))
        worker = Worker(flow.runtime, concurrency=2)
        await worker.run_until_idle(include_retries=True)
        for name, status, outcome, needle in OUTCOMES:
            record = await flow.get(records[name].id)
            assert (record.status, record.processing["outcome"]) == (status, outcome), name
            if needle:
                assert needle in record.processing["error"], record.processing["error"]
            assert record.processing["finished_at"] is not None
        ok = await flow.get(records["model.ok"].id)
        assert ok.processing["result"] == {"bytes": 8, "lines": 2, "filename": "model.ok"}
        segv = await flow.get(records["model.segv"].id)
        assert segv.processing["attempts"] == 2, "a crash is retried up to max_attempts"
        # and the same worker still processes the next file
        after = await flow.ingest("p1", "after.ok", aiter_bytes(b"x\n"))
        await worker.run_until_idle()
        assert (await flow.get(after.id)).status == "processed"


async def test_file_that_needs_more_memory_than_allowed_fails_without_running(
    tmp_path: Path, database_url: str
) -> None:
    settings = engine_settings(tmp_path, database_url)
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        binding = flow.processors["t-count"]
        binding.processor.resources = lambda size: type(  # type: ignore[method-assign]
            "N", (), {"memory_mb": 10**6, "timeout_s": None}
        )()
        record = await flow.ingest("p1", "big.ok", aiter_bytes(b"x"))
        await Worker(flow.runtime, runner=quick_runner).run_until_idle()
        record = await flow.get(record.id)
        assert record.processing["outcome"] == "out_of_memory"
        assert "needs about 1000000 MB" in record.processing["error"]


async def test_embedded_worker_runs_inside_the_flow(tmp_path: Path, database_url: str) -> None:
    settings = engine_settings(
        tmp_path, database_url, worker={"embedded": True, "poll_interval_s": 0.1}
    )
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        record = await flow.ingest("p1", "a.ok", aiter_bytes(b"a\nb\nc\n"))
        done = await flow.wait_until_settled(record.id, timeout_s=30)
    assert done.status == "processed"
    assert done.processing["result"]["lines"] == 3


async def test_background_takes_the_worker_commands_options(
    tmp_path: Path, database_url: str
) -> None:
    """`aecflow worker -n 2 --no-dispatch` runs this: a worker of that concurrency, no
    dispatcher (the file's events stay queued), and the tasks for the command to watch."""
    settings = engine_settings(
        tmp_path,
        database_url,
        notifiers=[{"backend": "log"}],
        worker={"embedded": False, "poll_interval_s": 0.1},
    )
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        async with flow.background(concurrency=2, dispatch=False) as tasks:
            assert flow.worker is not None and flow.worker.concurrency == 2
            assert flow.dispatcher is None
            assert [task.get_name() for task in tasks] == [
                "aecflow worker",
                "aecflow upload sweep",
                "aecflow orphan sweep",
            ]
            assert not any(task.done() for task in tasks)
            record = await flow.ingest("p1", "a.ok", aiter_bytes(b"a\nb\n"))
            for _ in range(300):
                if (await flow.get(record.id)).status == "processed":
                    break
                await asyncio.sleep(0.1)
        assert flow.worker is None
        assert (await flow.get(record.id)).status == "processed"
        async with flow.engine.connect() as conn:
            pending = await conn.scalar(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == "pending")
            )
        assert pending and pending > 0


class UpperPlugin:
    """A plugin object of an embedding application, registering a processor without config."""

    @staticmethod
    @aecflow.hookimpl
    def register_processors(registry) -> None:
        registry.add("upper", isolation_processors.Upper)


async def test_a_processor_without_config_is_built_without_one(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path, database_url, worker={"embedded": True, "poll_interval_s": 0.1}, notifiers=[]
    )
    async with Flow.open(settings, plugins=[("upper", UpperPlugin)]) as flow:
        record = await flow.ingest("p1", "a.up", aiter_bytes(b"shout"))
        done = await flow.wait_until_settled(record.id, timeout_s=30)
    assert (done.status, done.processing["processor"]) == ("processed", "upper")
    assert done.processing["result"] == {"upper": "SHOUT"}


async def test_a_processor_the_child_cannot_import_is_refused_at_open(
    tmp_path: Path, database_url: str
) -> None:
    """A class defined in the embedding script (``__main__``) cannot be rebuilt in the child:
    refused when the flow opens, instead of a job reclaimed forever."""
    stranded = type("Stranded", (isolation_processors.Upper,), {"__module__": "__main__"})

    class Plugin:
        @staticmethod
        @aecflow.hookimpl
        def register_processors(registry) -> None:
            registry.add("stranded", stranded)

    settings = make_settings(tmp_path, database_url, notifiers=[])
    with pytest.raises(ConfigError, match=r"processors\.stranded.*cannot be imported by name"):
        async with Flow.open(settings, plugins=[("stranded", Plugin)]):
            pass


def test_a_declared_config_needs_a_factory_that_takes_it() -> None:
    registry = ProcessorRegistry()
    registry.current_plugin = "mine"
    with pytest.raises(PluginError, match=r"config=NoConfig.*takes no argument"):
        registry.add("upper", isolation_processors.Upper, config=isolation_processors.NoConfig)


async def test_concurrency_is_bounded_by_memory(tmp_path: Path, database_url: str) -> None:
    import os

    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    settings = engine_settings(tmp_path, database_url)
    settings.processing.memory_limit_mb = total_mb // 4
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        assert Worker(flow.runtime, concurrency=64).concurrency == 3  # 80 % of RAM / (RAM / 4)
        assert Worker(flow.runtime, concurrency=2).concurrency == 2


async def test_backend_without_local_paths_gets_a_temporary_copy(
    tmp_path: Path, database_url: str
) -> None:
    storage = {"backend": "pathless", "root": str(tmp_path / "objects")}
    settings = engine_settings(tmp_path, database_url, storage=storage)
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        data = b"one\ntwo\nthree\n" * 100_000
        record = await flow.ingest("p1", "copy me.ok", aiter_bytes(data))
        await Worker(flow.runtime).run_until_idle()
        record = await flow.get(record.id)
    assert record.processing["result"] == {
        "bytes": len(data),
        "lines": 300_000,
        "filename": "copy me.ok",
    }
    assert list((tmp_path / "data" / "work").iterdir()) == [], "the copy is removed"


async def test_running_worker_sweeps_leftover_temp_files(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url, worker={"embedded": False, "temp_sweep_interval_s": 0.05}
    )
    async with Flow.open(settings) as flow:
        stop = asyncio.Event()
        running = asyncio.create_task(Worker(flow.runtime).run(stop))
        try:
            # Left after start-up, so only a sweep of the running worker can find them.
            tmp_dir = flow.storage.tmp_dir
            stale, fresh = tmp_dir / "killed-upload.part", tmp_dir / "live-upload.part"
            stale.write_bytes(b"half an upload")
            fresh.write_bytes(b"still arriving")
            day_ago = time.time() - 25 * 3600
            os.utime(stale, (day_ago, day_ago))
            deadline = time.monotonic() + 20
            while stale.exists():
                assert time.monotonic() < deadline, "the running worker never swept temp files"
                await asyncio.sleep(0.02)
            assert fresh.exists()
        finally:
            stop.set()
            await running


# A real refusal by the database, as a result with a NUL byte gets from PostgreSQL's JSONB:
# any update that would store the Count result of a file named "unstorable.ok" is refused.
REFUSE_RESULT = {
    "sqlite": [
        """CREATE TRIGGER refuse_result BEFORE UPDATE ON files
           WHEN json_extract(NEW.processing, '$.result.filename') = 'unstorable.ok'
           BEGIN SELECT RAISE(ABORT, 'this result cannot be stored'); END""",
    ],
    "postgresql": [
        """CREATE FUNCTION refuse_result() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NEW.processing->'result'->>'filename' = 'unstorable.ok' THEN
               RAISE EXCEPTION 'this result cannot be stored';
           END IF;
           RETURN NEW; END $$""",
        """CREATE TRIGGER refuse_result BEFORE UPDATE ON files
           FOR EACH ROW EXECUTE FUNCTION refuse_result()""",
    ],
}
ALLOW_RESULT = {
    "sqlite": ["DROP TRIGGER IF EXISTS refuse_result"],
    "postgresql": [
        "DROP TRIGGER IF EXISTS refuse_result ON files",
        "DROP FUNCTION IF EXISTS refuse_result()",
    ],
}


async def _execute_all(flow: Flow, statements: dict[str, list[str]]) -> None:
    async with flow.engine.begin() as conn:
        for statement in statements[conn.dialect.name]:
            await conn.execute(sa.text(statement))


async def _failure_trail(flow: Flow, file_id: str) -> tuple[list[str], list[str]]:
    """The file's processing audit actions and its queued events."""
    from aecflow.store.schema import audit_log

    async with flow.engine.connect() as conn:
        actions = (
            await conn.execute(
                sa.select(audit_log.c.action).where(
                    audit_log.c.file_id == file_id, audit_log.c.action.like("processing.%")
                )
            )
        ).scalars()
        events = (
            await conn.execute(
                sa.select(outbox.c.event_type)
                .where(outbox.c.file_id == file_id)
                .order_by(outbox.c.id)
            )
        ).scalars()
        return list(actions), [event for event in events if event != "file.stored"]


async def test_a_result_the_database_refuses_ends_the_job_after_max_attempts(
    tmp_path: Path, database_url: str
) -> None:
    """Recording fails on every attempt: each counts, and the last one ends the job (14.6)."""
    settings = engine_settings(
        tmp_path,
        database_url,
        worker={"embedded": True, "poll_interval_s": 0.1},
        notifiers=[{"backend": "log"}],
    )
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        await _execute_all(flow, REFUSE_RESULT)
        try:
            record = await flow.ingest("p1", "unstorable.ok", aiter_bytes(b"a\nb\n"))
            done = await flow.wait_until_settled(record.id, timeout_s=20)
        finally:
            await _execute_all(flow, ALLOW_RESULT)
        async with flow.engine.connect() as conn:
            job = (
                (await conn.execute(sa.select(jobs).where(jobs.c.file_id == record.id)))
                .mappings()
                .one()
            )
        actions, events = await _failure_trail(flow, record.id)
    assert (done.status, done.processing["outcome"]) == ("failed", "crashed")
    error = done.processing["error"]
    assert "the result could not be recorded on attempt 2 of 2" in error, error
    assert "this result cannot be stored" in error and "INSERT" not in error, error
    assert done.processing["result"] is None and done.processing["attempts"] == 2
    assert (job["status"], job["attempts"], job["lease_owner"]) == ("failed", 2, None)
    assert actions == ["processing.crashed"]
    assert events == ["file.step_failed", "file.processing_failed"]


async def test_an_abandoned_job_on_its_last_attempt_ends_failed_and_is_not_run_again(
    tmp_path: Path, database_url: str
) -> None:
    """Rows as killed workers leave them: running, lease expired, attempts used up. Four
    workers sweep at once; each job ends once, with one audit row and one event."""
    calls: list[str] = []

    async def counting_runner(spec, path, context, limits) -> RunReport:
        calls.append(context.file_id)
        return await quick_runner(spec, path, context, limits)

    settings = engine_settings(tmp_path, database_url, notifiers=[{"backend": "log"}])
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        ids = await ingest_many(flow, 12)
        expired = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        async with flow.engine.begin() as conn:
            await conn.execute(
                sa.update(jobs).values(
                    status="running",
                    lease_owner="worker:dead-host:1",
                    lease_until=expired,
                    attempts=2,
                    last_error="infrastructure: OSError: disk gone",
                )
            )
            await conn.execute(sa.update(files).values(status="processing"))
        pool = [Worker(flow.runtime, concurrency=4, runner=counting_runner) for _ in range(4)]
        await asyncio.gather(*(worker.run_until_idle() for worker in pool))
        async with flow.engine.connect() as conn:
            job_rows = (await conn.execute(sa.select(jobs))).mappings().all()
        records = [await flow.get(file_id) for file_id in ids]
        trails = [await _failure_trail(flow, file_id) for file_id in ids]
    assert calls == [], "a job without attempts left is never run again"
    assert {(j["status"], j["attempts"], j["lease_owner"]) for j in job_rows} == {
        ("failed", 2, None)
    }
    for record in records:
        assert (record.status, record.processing["outcome"]) == ("failed", "crashed")
        error = record.processing["error"]
        assert "worker was lost" in error and "attempt 2 of 2" in error, error
        assert "disk gone" in error, "the last error recorded is kept"
        assert record.processing["attempts"] == 2
    assert trails == [
        (["processing.crashed"], ["file.step_failed", "file.processing_failed"])
    ] * len(ids)
