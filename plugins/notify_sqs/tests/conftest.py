"""Fixtures: moto's SQS server on a free loopback port, reached over real HTTP by aioboto3.
The database fixtures (``database_url`` on real SQLite and PostgreSQL, ``sqlite_url``) come
from ``aecflow.testing``'s pytest plugin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioboto3
import pytest
from moto.server import ThreadedMotoServer
from sqs_support import REGION


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials, and no shared config files: tests never reach a real account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture(scope="session")
def aws_session() -> aioboto3.Session:
    """One session for the tests' own clients: botocore loads its service models once."""
    return aioboto3.Session()


@pytest.fixture
async def sqs(moto_endpoint: str, aws_session: aioboto3.Session) -> AsyncIterator[Any]:
    """The test's own client, to create queues and read them back."""
    client_cm = aws_session.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)
    async with client_cm as client:
        yield client


@pytest.fixture
async def queue_url(sqs: Any) -> str:
    answer = await sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:12]}")
    return answer["QueueUrl"]


@pytest.fixture
async def fifo_queue_url(sqs: Any) -> str:
    answer = await sqs.create_queue(
        QueueName=f"events-{uuid.uuid4().hex[:12]}.fifo", Attributes={"FifoQueue": "true"}
    )
    return answer["QueueUrl"]
