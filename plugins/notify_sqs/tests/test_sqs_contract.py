"""The SQS notifier passes the kit's NotifierContract against moto's SQS over real HTTP, on a
standard queue and on a FIFO queue (which drops a redelivery by its deduplication id)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqs_support import REGION, drain, event_ids

from aecflow.testing import NotifierContract, TcpProxy
from aecflow_notify_sqs import SqsConfig, SqsNotifier


class QueueLog:
    """Everything the queue received: each read drains it and keeps the messages."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs, self.queue_url = sqs, queue_url
        self.messages: list[dict[str, Any]] = []

    async def ids(self) -> list[str]:
        self.messages += await drain(self.sqs, self.queue_url)
        return event_ids(self.messages)

    async def payloads(self) -> list[tuple[str, Any]]:
        ids = await self.ids()
        return list(zip(ids, (json.loads(m["Body"]) for m in self.messages), strict=True))


def config(queue_url: str, endpoint: str, **options: Any) -> SqsConfig:
    return SqsConfig(queue_url=queue_url, endpoint_url=endpoint, region=REGION, **options)


class TestSqsNotifier(NotifierContract):
    @pytest.fixture
    def target(self, queue_url: str) -> str:
        return queue_url

    @pytest.fixture
    def queue_log(self, sqs: Any, target: str) -> QueueLog:
        return QueueLog(sqs, target)

    @pytest.fixture
    def notifier(self, target: str, moto_endpoint: str) -> SqsNotifier:
        return SqsNotifier(config(target, moto_endpoint))

    @pytest.fixture
    def received(self, queue_log: QueueLog) -> Any:
        return queue_log.ids

    @pytest.fixture
    def received_payloads(self, queue_log: QueueLog) -> Any:
        return queue_log.payloads

    @pytest.fixture
    async def failing_notifier(self, target: str, moto_endpoint: str) -> AsyncIterator[SqsNotifier]:
        """SQS reachable at start-up (it checks the queue), then down: the link is cut."""
        host, port = moto_endpoint.removeprefix("http://").split(":")
        proxy = TcpProxy(host, int(port))
        await proxy.start()

        class CutAfterStart(SqsNotifier):
            async def start(self) -> None:
                await super().start()
                await proxy.stop()

        try:
            yield CutAfterStart(config(target, proxy.url, timeout_s=2))
        finally:
            await proxy.stop()

    @pytest.fixture
    def refusing_notifier(self, target: str, moto_endpoint: str, sqs: Any) -> SqsNotifier:
        """The queue is deleted after start-up: gone for good (DISABLED, events kept)."""

        class QueueDeletedAfterStart(SqsNotifier):
            async def start(self) -> None:
                await super().start()
                await sqs.delete_queue(QueueUrl=target)

        return QueueDeletedAfterStart(config(target, moto_endpoint))


class TestSqsFifoNotifier(TestSqsNotifier):
    @pytest.fixture
    def target(self, fifo_queue_url: str) -> str:
        return fifo_queue_url
