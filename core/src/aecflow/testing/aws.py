"""AWS for tests without an account: moto's server on a loopback port, spoken to over HTTP.

moto runs in a thread of the test process (``ThreadedMotoServer``, not its in-process
decorators), so clients talk to it exactly as they would to S3 or SQS. Needs ``moto[server]``
and ``boto3`` (a plugin's own test extra). The pytest plugin offers ``moto_server`` (one per
session) and ``aws_sandbox`` (fake keys, nothing read from ~/.aws or instance metadata).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "testing"
SECRET_KEY = "testing"


class MotoServer:
    """moto on 127.0.0.1; ``stop()`` closes the port (moto's own stop leaves it listening),
    and ``start()`` again reuses it: an outage and its end."""

    def __init__(self) -> None:
        self.port = 0
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self.port = server.get_host_and_port()[1]
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server._server.server_close()
            self._server = None

    def client(self, service: str = "s3", region: str = "eu-central-1") -> Any:
        """A plain boto3 client, for setting up and reading back what a plugin did."""
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config as BotoConfig  # type: ignore[import-untyped]

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=BotoConfig(retries={"max_attempts": 1}),
        )


def sandbox(monkeypatch: pytest.MonkeyPatch, empty_dir: Path) -> None:
    """Fake keys for moto, and nothing from ~/.aws, the environment or instance metadata, so
    that no test can reach a real account."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = empty_dir / "no-aws-config"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
