"""The webhook notifier passes the kit's NotifierContract against a real uvicorn receiver that
verifies every signature (an event counts as received only when its signature checks out)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from webhook_support import Receiver

from aecflow.testing import NotifierContract
from aecflow_notify_webhook import WebhookConfig, WebhookNotifier


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestWebhookNotifier(NotifierContract):
    @pytest.fixture
    def notifier(self, receiver: Receiver) -> WebhookNotifier:
        return WebhookNotifier(WebhookConfig(url=receiver.url, secret=receiver.secrets[0]))

    @pytest.fixture
    def received(self, receiver: Receiver) -> Callable[[], list[str]]:
        return receiver.delivered_ids

    @pytest.fixture
    def received_payloads(self, receiver: Receiver) -> Callable[[], list[tuple[str, Any]]]:
        return lambda: list(receiver.delivered)

    @pytest.fixture
    def failing_notifier(self, secret: str) -> WebhookNotifier:
        url = f"http://127.0.0.1:{closed_port()}/hook"
        return WebhookNotifier(WebhookConfig(url=url, secret=secret, timeout_s=5))

    @pytest.fixture
    def refusing_notifier(self, receiver: Receiver) -> WebhookNotifier:
        receiver.default = 413  # the same body will never fit: dead-lettered at once
        return WebhookNotifier(WebhookConfig(url=receiver.url, secret=receiver.secrets[0]))
