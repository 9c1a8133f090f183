"""Many aecflow processes on one database and one storage: the harness of chaos runs and scale
benches.

A :class:`Cluster` creates a fresh PostgreSQL database, writes one ``aecflow.toml`` (local
directory or S3 storage, webhook notifiers, the CPU-costing ``burn`` processor of
:mod:`aecflow.testing.burn` installed as a real entry point), starts ``hosts`` ``aecflow serve
--no-worker`` processes on free ports and ``workers`` ``aecflow worker`` processes, and can
SIGKILL and restart any of them. Each process logs to a file of its own; :meth:`Cluster.tails`
gives the last lines of every log for failure messages. The harness itself holds a flow on the
same settings (no background work) to inspect rows and objects.

    async with Cluster(tmp_path, hosts=2, workers=2, notifiers=[receiver.notifier()]) as cluster:
        url = cluster.host_urls[0]
        cluster.kill("worker-1"); cluster.restart("worker-1")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from aecflow.config import Settings, load_settings
from aecflow.flow import Flow
from aecflow.store import scratch
from aecflow.testing import burn
from aecflow.testing.aws import ACCESS_KEY, SECRET_KEY
from aecflow.testing.databases import admin_url

#: The entry point that installs :mod:`aecflow.testing.burn` in the cluster's processes.
BURN_DIST = "aecflow-testing-burn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_document(
    tables: Mapping[str, Mapping[str, Any]], arrays: Mapping[str, Sequence[Mapping[str, Any]]]
) -> str:
    """A small TOML writer: enough for the cluster's config (scalars, lists, tables)."""
    lines: list[str] = []
    for name, table in tables.items():
        if not name:
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
            continue
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    for name, entries in arrays.items():
        for entry in entries:
            lines.append(f"[[{name}]]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in entry.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Member:
    """One process of the cluster."""

    name: str
    kind: str  # host | worker
    argv: list[str]
    log: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


@dataclass
class Cluster:
    """``hosts`` hosts and ``workers`` workers on a fresh PostgreSQL database (see module)."""

    root: Path
    hosts: int = 2
    workers: int = 2
    #: ``local`` (a directory under ``root``) or ``s3`` (give ``s3_endpoint`` and ``bucket``).
    storage: str = "local"
    s3_endpoint: str | None = None
    bucket: str = "aecflow-cluster"
    #: ``[[notifiers]]`` entries (e.g. :meth:`aecflow.testing.chaos.Receiver.notifier`).
    notifiers: list[dict[str, Any]] = field(default_factory=list)
    #: CPU seconds the ``burn`` processor spends per ``*.burn`` file.
    burn_cpu_s: float = 0.2
    #: Files one worker process runs at once.
    worker_concurrency: int = 2
    #: Other settings, merged into the written tables (``{"processing": {"lease_s": 5}}``).
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    admin_database_url: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    flow: Flow | None = None
    database_url: str = ""
    config_path: Path = field(init=False)
    _database: str = ""
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    # -- set-up ----------------------------------------------------------------------------

    def tables(self) -> dict[str, dict[str, Any]]:
        if self.storage == "s3":
            if not self.s3_endpoint:
                raise ValueError("s3 storage needs s3_endpoint (a moto server)")
            storage: dict[str, Any] = {
                "backend": "s3",
                "bucket": self.bucket,
                "endpoint_url": self.s3_endpoint,
                "region": "eu-central-1",
            }
        else:
            storage = {"backend": "local", "root": str(self.root / "objects")}
        tables: dict[str, dict[str, Any]] = {
            "": {"data_dir": str(self.root / "data")},
            "database": {"url": self.database_url},
            "storage": storage,
            "auth": {"mode": "none"},
            "processing": {
                "lease_s": 4,
                "retry_backoff_s": 0.2,
                "concurrency": self.worker_concurrency,
                "timeout_s": 120,
                "memory_limit_mb": 1024,
            },
            "processing.processors.burn": {"cpu_s": self.burn_cpu_s},
            "outbox": {"lease_s": 4, "backoff_base_s": 0.2, "backoff_max_s": 5.0},
            "worker": {
                "embedded": False,
                "poll_interval_s": 0.2,
                "orphan_sweep_interval_s": 2.0,
                "orphan_max_age_s": 5.0,
                "temp_sweep_interval_s": 5.0,
                "temp_max_age_s": 30.0,
            },
        }
        for name, values in self.overrides.items():
            tables.setdefault(name, {}).update(values)
        return tables

    def _install_burn(self) -> Path:
        """A dist-info with the entry point: what ``pip install`` of a plugin leaves behind."""
        site = self.root / "site"
        info = site / f"{BURN_DIST.replace('-', '_')}-1.0.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {BURN_DIST}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[aecflow]\nburn = {burn.MODULE}\n")
        burn.install(site)
        return site

    def environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AECFLOW_", "AWS_")) or k.startswith("AECFLOW_TEST")
        }
        site = str(self._install_burn())
        env["PYTHONPATH"] = os.pathsep.join([site, *filter(None, [os.environ.get("PYTHONPATH")])])
        env["AECFLOW_CONFIG"] = str(self.config_path)
        if self.storage == "s3":
            env |= {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_CONFIG_FILE": str(self.root / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(self.root / "no-aws-config"),
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        return env

    async def __aenter__(self) -> Cluster:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        admin = self.admin_database_url or admin_url()
        self._database = f"aecflow_cluster_{uuid.uuid4().hex[:12]}"
        self.database_url = await scratch.create_database(admin, self._database)
        self.admin_database_url = admin
        if self.storage == "s3":
            self._create_bucket()
        self.config_path = self.root / "aecflow.toml"
        arrays = {"notifiers": self.notifiers} if self.notifiers else {}
        self.config_path.write_text(toml_document(self.tables(), arrays))
        # The harness's own flow migrates the database before any process starts.
        settings = self.settings()
        self.flow = await self._stack.enter_async_context(
            Flow.open(settings, plugins=[("burn", burn.load(self.root / "site"))])
        )
        for n in range(1, self.hosts + 1):
            self.add_host(f"host-{n}")
        for n in range(1, self.workers + 1):
            self.add_worker(f"worker-{n}")
        for member in self.members.values():
            self._spawn(member)
        await self.wait_ready()

    def _create_bucket(self) -> None:
        import boto3  # type: ignore[import-untyped]

        client = boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name="eu-central-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(
                Bucket=self.bucket,
                CreateBucketConfiguration={"LocationConstraint": "eu-central-1"},
            )

    def settings(self) -> Settings:
        return load_settings(self.config_path, environ={})

    def add_host(self, name: str) -> Member:
        port = free_port()
        argv = ["--log-level", "INFO", "serve", "--no-worker", "--port", str(port)]
        member = Member(name, "host", argv, self.root / "logs" / f"{name}.log", port=port)
        self.members[name] = member
        return member

    def add_worker(self, name: str) -> Member:
        argv = ["--log-level", "INFO", "worker", "--concurrency", str(self.worker_concurrency)]
        member = Member(name, "worker", argv, self.root / "logs" / f"{name}.log")
        self.members[name] = member
        return member

    def _spawn(self, member: Member) -> None:
        member.log.parent.mkdir(parents=True, exist_ok=True)
        with member.log.open("ab") as log:
            log.write(f"--- start {member.starts + 1} at {time.time():.3f}\n".encode())
            log.flush()
            member.process = subprocess.Popen(
                [sys.executable, "-m", "aecflow", *member.argv],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,  # a SIGKILL of the leader leaves its children: see kill
            )
        member.starts += 1

    # -- control ---------------------------------------------------------------------------

    @property
    def host_urls(self) -> list[str]:
        return [m.url for m in self.members.values() if m.kind == "host" and m.url]

    def names(self, kind: str | None = None) -> list[str]:
        return [m.name for m in self.members.values() if kind is None or m.kind == kind]

    def kill(self, name: str) -> None:
        """SIGKILL the process (its processing children too: they are in its session)."""
        member = self.members[name]
        if member.process is None or member.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(member.process.pid, signal.SIGKILL)
        member.process.wait(10)
        member.kills += 1

    def restart(self, name: str) -> None:
        member = self.members[name]
        if member.alive:
            self.kill(name)
        self._spawn(member)

    async def wait_ready(self, timeout_s: float = 60.0, names: Sequence[str] | None = None) -> None:
        """Until every host answers ``/health`` and every process is still running."""
        deadline = time.monotonic() + timeout_s
        wanted = [self.members[n] for n in (names or self.members)]
        async with httpx.AsyncClient(timeout=2.0) as client:
            for member in wanted:
                while True:
                    if not member.alive:
                        raise AssertionError(f"{member.name} exited\n{self.tails()}")
                    if member.kind == "worker" or await _healthy(client, member):
                        break
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{member.name} never got ready\n{self.tails()}")
                    await asyncio.sleep(0.1)

    def tails(self, lines: int = 25) -> str:
        """The last ``lines`` lines of every process's log, for a failure message."""
        parts = []
        for member in self.members.values():
            text = member.log.read_text(errors="replace") if member.log.exists() else ""
            tail = "\n".join(text.splitlines()[-lines:])
            state = "running" if member.alive else f"exited {self._code(member)}"
            parts.append(
                f"== {member.name} ({state}, {member.starts} starts, {member.kills} kills)\n{tail}"
            )
        return "\n".join(parts)

    @staticmethod
    def _code(member: Member) -> int | None:
        return member.process.returncode if member.process else None

    def pids(self) -> dict[str, int]:
        return {m.name: m.pid for m in self.members.values() if m.alive and m.pid}

    async def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM every process and wait for it (SIGKILL after ``grace_s``)."""
        for member in self.members.values():
            if member.alive and member.process is not None:
                member.process.terminate()
        deadline = time.monotonic() + grace_s
        for member in self.members.values():
            while member.alive and time.monotonic() < deadline:  # noqa: ASYNC110 - a child
                await asyncio.sleep(0.05)
            if member.alive:
                self.kill(member.name)

    async def close(self) -> None:
        await self.stop()
        await self._stack.aclose()
        self.flow = None
        if self._database and self.admin_database_url:
            await scratch.drop_database(self.admin_database_url, self._database)
            self._database = ""


async def _healthy(client: httpx.AsyncClient, member: Member) -> bool:
    try:
        response = await client.get(f"{member.url}/health")
    except httpx.HTTPError:
        return False
    return response.status_code == 200
