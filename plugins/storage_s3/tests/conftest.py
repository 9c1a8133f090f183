"""Fixtures: a moto S3 server on a free loopback port, reached over real HTTP.

The server runs in a thread of the test process (moto's ThreadedMotoServer, not its
in-process decorators), so obstore and aioboto3 talk to it exactly as they would to S3. It
lives for the whole session; each test gets its own bucket. AWS settings of the machine are
hidden so that no test can reach a real account.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytest puts the repository root on sys.path only when it collects the top-level ``tests``
# package; make it importable when this plugin's tests run on their own too.
ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from s3_support import Bucket, MotoServer, new_bucket  # noqa: E402


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake keys for moto, and nothing from ~/.aws, the environment or instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket(moto: MotoServer) -> Bucket:
    """A fresh, empty bucket in eu-central-1."""
    return new_bucket(moto, "eu-central-1")


# -- databases for the journey over HTTP: the repository's own fixtures ------------------

from tests.conftest import database_url, postgres_url  # noqa: E402, F401
