"""``aecflow worker`` as a real process: SIGKILL, SIGTERM, and the database dropping away."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from aecflow.config import Settings
from aecflow.flow import Flow
from aecflow.jobs.worker import Worker
from aecflow.store.schema import jobs, outbox
from aecflow.streams import aiter_bytes

from .conftest import make_settings

SLOW_PLUGIN = """
import time
from pathlib import Path

import pydantic

import aecflow
from aecflow.processing import ProcessingResult, Processor


class Config(pydantic.BaseModel):
    seconds: float = 3.0


class Snooze(Processor):
    suffixes = (".snooze",)

    def __init__(self, config):
        self.seconds = config.seconds

    def process(self, path, context):
        time.sleep(self.seconds)
        return ProcessingResult({"slept": self.seconds, "bytes": Path(path).stat().st_size})


@aecflow.hookimpl
def register_processors(registry):
    registry.add("snooze", Snooze, config=Config)
"""


def settings_for(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        processing={"lease_s": 2, "retry_backoff_s": 0.05},
        worker={"embedded": False, "poll_interval_s": 0.1},
    )


def write_config(settings: Settings, path: Path) -> Path:
    storage = settings.storage.options()
    path.write_text(
        f'data_dir = "{settings.data_dir}"\n'
        f'[database]\nurl = "{settings.database.url}"\n'
        f'[storage]\nbackend = "local"\nroot = "{storage["root"]}"\n'
        f"[processing]\nlease_s = 2\n"
        f"[worker]\npoll_interval_s = 0.1\n"
    )
    return path


def start_worker(config: Path, site: Path, *args: str, **extra_env: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "AECFLOW_CONFIG": str(config), **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", "aecflow", "--log-level", "INFO", "worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def wait_for_claim(flow: Flow, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with flow.engine.connect() as conn:
            row = (
                (await conn.execute(sa.select(jobs).where(jobs.c.status == "running")))
                .mappings()
                .first()
            )
        if row:
            return dict(row)
        await asyncio.sleep(0.05)
    raise AssertionError("the worker process never claimed the job")


async def test_sigkilled_worker_job_is_finished_by_another(
    fake_dists, tmp_path: Path, database_url: str
) -> None:
    fake_dists.add("aecflow-snooze", "snooze", "snooze_plugin", SLOW_PLUGIN)
    settings = settings_for(tmp_path, database_url)
    config = write_config(settings, tmp_path / "aecflow.toml")
    async with Flow.open(settings) as flow:
        record = await flow.ingest("p1", "model.snooze", aiter_bytes(b"zzz"))
        process = start_worker(config, fake_dists.root)
        try:
            claimed = await wait_for_claim(flow)
            assert claimed["lease_owner"].startswith("worker:")
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        assert process.returncode == -signal.SIGKILL
        # Another worker takes over once the lease has run out, and finishes the job.
        await asyncio.sleep(2.2)
        await Worker(flow.runtime).run_until_idle()
        done = await flow.get(record.id)
        assert done.status == "processed"
        assert done.processing["result"] == {"slept": 3.0, "bytes": 3}
        async with flow.engine.connect() as conn:
            job = (await conn.execute(sa.select(jobs))).mappings().one()
        assert job["attempts"] == 2 and job["status"] == "done"
        assert job["lease_owner"] is None


async def test_sigterm_hands_running_work_back(
    fake_dists, tmp_path: Path, database_url: str
) -> None:
    fake_dists.add("aecflow-snooze", "snooze", "snooze_plugin", SLOW_PLUGIN)
    settings = settings_for(tmp_path, database_url)
    config = write_config(settings, tmp_path / "aecflow.toml")
    async with Flow.open(settings) as flow:
        record = await flow.ingest("p1", "model.snooze", aiter_bytes(b"zzz"))
        process = start_worker(config, fake_dists.root, "--grace", "0.2")
        await wait_for_claim(flow)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
        assert process.returncode == 0, output
        assert "stopped" in output
        async with flow.engine.connect() as conn:
            job = (await conn.execute(sa.select(jobs))).mappings().one()
        assert (job["status"], job["lease_owner"], job["attempts"]) == ("queued", None, 0)
        await Worker(flow.runtime).run_until_idle()
        assert (await flow.get(record.id)).status == "processed"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_database_connections_dropping_lose_and_duplicate_nothing(
    tmp_path: Path, database_url: str
) -> None:
    """Every connection of the worker, the dispatcher and the pool is killed mid-run, twice."""
    settings = make_settings(
        tmp_path,
        database_url,
        notifiers=[{"backend": "log"}],
        worker={"embedded": True, "poll_interval_s": 0.05},
    )
    killed = 0
    async with Flow.open(settings) as flow:
        ids = []
        for index in range(30):
            data = b"a b\nc\n" * index + b"x"
            ids.append((await flow.ingest("p1", f"n{index}.txt", aiter_bytes(data))).id)
            if index in (5, 15):
                await asyncio.sleep(0.2)  # let the worker and dispatcher hold connections
                async with flow.engine.begin() as conn:
                    killed += (
                        await conn.execute(
                            sa.text(
                                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                            )
                        )
                    ).scalar_one()
        records = [await flow.wait_until_settled(file_id, timeout_s=60) for file_id in ids]
        async with flow.engine.connect() as conn:
            delivered = collections.Counter(
                (
                    await conn.execute(
                        sa.select(outbox.c.event_type, outbox.c.file_id).where(
                            outbox.c.status == "delivered"
                        )
                    )
                ).all()
            )
    assert killed > 0, "the test must really drop connections"
    assert {record.status for record in records} == {"processed"}
    for file_id in ids:
        assert delivered[("file.stored", file_id)] == 1
        assert delivered[("file.processed", file_id)] == 1


PID_PLUGIN = """
import os
import time
from pathlib import Path

import pydantic

import aecflow
from aecflow.processing import ProcessingResult, Processor


class Config(pydantic.BaseModel):
    pass


class Stuck(Processor):
    suffixes = (".stuck",)

    def __init__(self, config):
        pass

    def process(self, path, context):
        target = Path(os.environ["STUCK_PID_FILE"])
        target.with_suffix(".tmp").write_text(str(os.getpid()))
        target.with_suffix(".tmp").replace(target)
        time.sleep(120)
        return ProcessingResult({})


@aecflow.hookimpl
def register_processors(registry):
    registry.add("stuck", Stuck, config=Config)
"""


def alive(process: psutil.Process) -> bool:
    """Running, not a zombie (an orphan's exit may wait for an init that never reaps it)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_processing_child_dies_with_a_sigkilled_worker(
    fake_dists, tmp_path: Path, database_url: str
) -> None:
    fake_dists.add("aecflow-stuck", "stuck", "stuck_plugin", PID_PLUGIN)
    settings = settings_for(tmp_path, database_url)
    config = write_config(settings, tmp_path / "aecflow.toml")
    pid_file = tmp_path / "child.pid"
    async with Flow.open(settings) as flow:
        await flow.ingest("p1", "model.stuck", aiter_bytes(b"zzz"))
        worker = start_worker(config, fake_dists.root, STUCK_PID_FILE=str(pid_file))
        try:
            deadline = time.monotonic() + 30
            while not pid_file.exists():
                assert time.monotonic() < deadline and worker.poll() is None
                await asyncio.sleep(0.05)
            child = psutil.Process(int(pid_file.read_text()))
            assert child.ppid() == worker.pid  # really the worker's processing child
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
        deadline = time.monotonic() + 15
        while alive(child):
            if time.monotonic() > deadline:
                child.kill()
                raise AssertionError("the processing child outlived its SIGKILLed worker")
            await asyncio.sleep(0.05)
