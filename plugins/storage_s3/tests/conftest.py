"""Fixtures: a moto S3 server on a free loopback port, reached over real HTTP.

The server (``moto_server`` from the ``aecflow`` pytest plugin, :mod:`aecflow.testing.aws`)
lives for the whole session; each test gets its own bucket. AWS settings of the machine are
hidden so that no test can reach a real account. ``database_url`` comes from the plugin too.
"""

from __future__ import annotations

import pytest
from s3_support import Bucket, MotoServer, new_bucket


@pytest.fixture(autouse=True)
def aws_env(aws_sandbox: None) -> None:
    """Fake keys for moto, and nothing from ~/.aws, the environment or instance metadata."""


@pytest.fixture(scope="session")
def moto(moto_server: MotoServer) -> MotoServer:
    return moto_server


@pytest.fixture
def bucket(moto: MotoServer) -> Bucket:
    """A fresh, empty bucket in eu-central-1."""
    return new_bucket(moto, "eu-central-1")
