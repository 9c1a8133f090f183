"""Deliveries to moto's SQS over real HTTP, driven by the core's outbox dispatcher.

Each scenario ends with the same check: every committed event is in the queue exactly once,
or still kept by the outbox (pending or dead-lettered) to be delivered later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqs_support import (
    all_delivered,
    bodies,
    deliver_until,
    destination,
    drain,
    event_ids,
    open_flow,
    outbox_rows,
    sqs_settings,
)

from aecflow.errors import ConfigError
from aecflow.flow import Flow
from aecflow.notify import DeliveryStatus, Event
from aecflow.outbox.dispatcher import Dispatcher
from aecflow.store.schema import outbox
from aecflow.streams import aiter_bytes
from aecflow.testing import TcpProxy
from aecflow_notify_sqs import SqsConfig, SqsNotifier
from aecflow_notify_sqs.messages import encode_body


async def ingest(flow: Flow, count: int, project: str = "p1", **kwargs: Any) -> list[str]:
    ids = []
    for n in range(count):
        record = await flow.ingest(project, f"m{n}.bin", aiter_bytes(b"x" * (n + 1)), **kwargs)
        ids.append(record.id)
    return ids


def count_batches(notifier: Any, totals: list[int] | None = None) -> list[int]:
    """Record the entries (and, in ``totals``, the bytes) of every SendMessageBatch call."""
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Entries"]))
        if totals is not None:
            totals.append(sum(message_size(entry) for entry in params["Entries"]))

    notifier.client.meta.events.register("before-parameter-build.sqs.SendMessageBatch", record)
    return sizes


async def test_events_arrive_with_body_and_attributes(
    tmp_path: Path, database_url: str, moto_endpoint: str, queue_url: str, sqs: Any
) -> None:
    settings = sqs_settings(tmp_path, database_url, destination(queue_url, moto_endpoint))
    async with open_flow(settings) as flow:
        file_ids = await ingest(flow, 3)
        await Dispatcher(flow.runtime).run_until_idle()
        rows = await outbox_rows(flow)
    assert all_delivered(rows)
    messages = await drain(sqs, queue_url)
    by_event = {row["event_id"]: row for row in rows}
    assert sorted(event_ids(messages)) == sorted(by_event)
    for message in messages:
        attributes = message["MessageAttributes"]
        row = by_event[attributes["event_id"]["StringValue"]]
        assert attributes["event_type"] == {"DataType": "String", "StringValue": "file.stored"}
        assert message["Body"] == encode_body(row["payload"])
        assert json.loads(message["Body"]) == row["payload"]
    assert sorted(b["file"]["id"] for b in bodies(messages)) == sorted(file_ids)


async def test_traceparent_travels_as_an_attribute(
    moto_endpoint: str, queue_url: str, sqs: Any
) -> None:
    notifier = SqsNotifier(SqsConfig(queue_url=queue_url, endpoint_url=moto_endpoint))
    await notifier.start()
    try:
        traceparent = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        event = sample_event(traceparent=traceparent)
        outcome = (await notifier.deliver([event]))[event.id]
    finally:
        await notifier.close()
    assert outcome.status is DeliveryStatus.DELIVERED
    [message] = await drain(sqs, queue_url)
    assert message["MessageAttributes"]["traceparent"]["StringValue"] == traceparent


async def test_more_than_ten_events_go_in_batches_of_ten(
    tmp_path: Path, sqlite_url: str, moto_endpoint: str, queue_url: str, sqs: Any
) -> None:
    settings = sqs_settings(tmp_path, sqlite_url, destination(queue_url, moto_endpoint))
    async with open_flow(settings) as flow:
        await ingest(flow, 25)
        calls = count_batches(flow.notifiers["sqs"])
        assert await Dispatcher(flow.runtime).deliver_once("sqs", flow.notifiers["sqs"]) == 25
        rows = await outbox_rows(flow)
    assert sorted(calls) == [5, 10, 10]
    assert all_delivered(rows)
    assert sorted(event_ids(await drain(sqs, queue_url))) == sorted(r["event_id"] for r in rows)


async def test_batches_respect_the_queue_size_limit_read_at_start(
    tmp_path: Path, sqlite_url: str, moto_endpoint: str, sqs: Any
) -> None:
    url = (
        await sqs.create_queue(
            QueueName=f"small-{uuid.uuid4().hex[:8]}", Attributes={"MaximumMessageSize": "4096"}
        )
    )["QueueUrl"]
    settings = sqs_settings(tmp_path, sqlite_url, destination(url, moto_endpoint))
    async with open_flow(settings) as flow:
        notifier = flow.notifiers["sqs"]
        assert notifier.max_message_size == 4096
        await ingest(flow, 6, metadata={"note": "n" * 1000})  # over 1 KiB per message
        totals: list[int] = []
        calls = count_batches(notifier, totals)
        await Dispatcher(flow.runtime).deliver_once("sqs", notifier)
        rows = await outbox_rows(flow)
    assert all_delivered(rows)
    assert sum(calls) == 6 and 1 < len(calls) < 6, calls
    assert all(total <= 4096 for total in totals), totals
    assert len(await drain(sqs, url)) == 6


def message_size(entry: dict[str, Any]) -> int:
    """A message's size as SQS counts it: body plus attribute names, types and values."""
    return len(entry["MessageBody"].encode()) + sum(
        len(name) + len(value["DataType"]) + len(value["StringValue"].encode())
        for name, value in entry["MessageAttributes"].items()
    )


async def test_partial_batch_failure_delivers_the_rest_without_duplicates(
    tmp_path: Path, database_url: str, moto_endpoint: str, queue_url: str, sqs: Any
) -> None:
    """Moto answers 200 with one entry in ``Failed`` when that entry's DelaySeconds is out of
    range; a botocore hook on the notifier's real client sets it on the first call only."""
    settings = sqs_settings(tmp_path, database_url, destination(queue_url, moto_endpoint))
    async with open_flow(settings) as flow:
        await ingest(flow, 10)
        notifier = flow.notifiers["sqs"]
        calls = 0

        def spoil_one(params: dict[str, Any], **_: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                params["Entries"][3]["DelaySeconds"] = 901

        notifier.client.meta.events.register(
            "before-parameter-build.sqs.SendMessageBatch", spoil_one
        )
        dispatcher = Dispatcher(flow.runtime)
        await dispatcher.deliver_once("sqs", notifier)
        rows = await outbox_rows(flow)
        [failed] = [row for row in rows if row["status"] != "delivered"]
        assert (failed["status"], failed["attempts"]) == ("pending", 1)
        assert failed["last_error"].startswith("SQS InvalidParameterValue: Value 901")
        assert failed["last_error"].endswith("(sender fault)")
        first = await drain(sqs, queue_url)
        assert len(first) == 9 and failed["event_id"] not in event_ids(first)

        await deliver_until(flow, all_delivered, dispatcher=dispatcher)
        rows = await outbox_rows(flow)
    second = await drain(sqs, queue_url)
    assert event_ids(second) == [failed["event_id"]], "only the failed entry was sent again"
    assert sorted(event_ids(first + second)) == sorted(row["event_id"] for row in rows)


async def test_fifo_groups_and_deduplicates_a_redelivered_event(
    tmp_path: Path, database_url: str, moto_endpoint: str, fifo_queue_url: str, sqs: Any
) -> None:
    settings = sqs_settings(tmp_path, database_url, destination(fifo_queue_url, moto_endpoint))
    async with open_flow(settings) as flow:
        assert flow.notifiers["sqs"].fifo
        await ingest(flow, 2, project="tower-a")
        await ingest(flow, 1, project="tower-b")
        await Dispatcher(flow.runtime).run_until_idle()
        # the acknowledgement is lost (a dispatcher died after sending): the rows go back to
        # pending and another round sends the same events again
        async with flow.engine.begin() as conn:
            await conn.execute(sa.update(outbox).values(status="pending", delivered_at=None))
        await Dispatcher(flow.runtime).run_until_idle()
        rows = await outbox_rows(flow)
    assert all_delivered(rows) and all(row["attempts"] == 2 for row in rows)
    messages = await drain(sqs, fifo_queue_url)
    assert sorted(event_ids(messages)) == sorted(row["event_id"] for row in rows)
    for message in messages:
        system = message["Attributes"]
        assert (
            system["MessageDeduplicationId"]
            == message["MessageAttributes"]["event_id"]["StringValue"]
        )
        assert system["MessageGroupId"] == json.loads(message["Body"])["project"]


async def test_fifo_group_per_file(
    tmp_path: Path, sqlite_url: str, moto_endpoint: str, fifo_queue_url: str, sqs: Any
) -> None:
    settings = sqs_settings(
        tmp_path, sqlite_url, destination(fifo_queue_url, moto_endpoint, group_by="file")
    )
    async with open_flow(settings) as flow:
        [file_id] = await ingest(flow, 1)
        await flow.delete(file_id)
        await Dispatcher(flow.runtime).run_until_idle()
    messages = await drain(sqs, fifo_queue_url)
    assert [m["Attributes"]["MessageGroupId"] for m in messages] == [file_id, file_id]
    assert [b["type"] for b in bodies(messages)] == ["file.stored", "file.deleted"]


async def test_endpoint_down_and_back_loses_nothing(
    tmp_path: Path, database_url: str, moto_endpoint: str, queue_url: str, sqs: Any
) -> None:
    host, port = moto_endpoint.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    settings = sqs_settings(
        tmp_path,
        database_url,
        destination(queue_url, f"http://127.0.0.1:{proxy.port}", max_concurrency=1, timeout_s=2),
        breakers={"failure_threshold": 2, "reset_timeout_s": 0.2},
    )
    try:
        async with open_flow(settings) as flow:
            await ingest(flow, 15)
            await proxy.stop()  # SQS unreachable
            breaker = flow.breakers["notifier:sqs"]
            dispatcher = Dispatcher(flow.runtime)
            calls = count_batches(flow.notifiers["sqs"])
            assert await dispatcher.deliver_once("sqs", flow.notifiers["sqs"]) == 15
            assert calls == [10], "once the queue is unreachable, the round stops"
            errors = [row["last_error"] for row in await outbox_rows(flow)]
            assert sum(e.startswith("not sent: ") for e in errors) == 5
            while breaker.state.value == "closed":
                await dispatcher.deliver_once("sqs", flow.notifiers["sqs"])
                await asyncio.sleep(0.01)
            await ingest(flow, 5)  # committed during the outage
            rows = await outbox_rows(flow)
            assert all(row["status"] == "pending" for row in rows)
            assert any(row["attempts"] and row["last_error"] for row in rows)

            await proxy.start()  # back on the same port
            await deliver_until(flow, all_delivered, dispatcher=dispatcher)
            rows = await outbox_rows(flow)
    finally:
        await proxy.stop()
    messages = await drain(sqs, queue_url)
    assert len(rows) == 20
    assert sorted(event_ids(messages)) == sorted(row["event_id"] for row in rows)


async def test_oversized_event_is_dead_lettered_and_redelivered_after_the_limit_rises(
    tmp_path: Path, sqlite_url: str, moto_endpoint: str, sqs: Any
) -> None:
    url = (
        await sqs.create_queue(
            QueueName=f"tiny-{uuid.uuid4().hex[:8]}", Attributes={"MaximumMessageSize": "1024"}
        )
    )["QueueUrl"]
    settings = sqs_settings(tmp_path, sqlite_url, destination(url, moto_endpoint))
    async with open_flow(settings) as flow:
        await ingest(flow, 1)
        await ingest(flow, 1, metadata={"note": "n" * 1000})
        await Dispatcher(flow.runtime).run_until_idle()
        small, big = await outbox_rows(flow)
        assert small["status"] == "delivered"
        assert (big["status"], big["attempts"]) == ("dead", 1)
        assert "the queue's MaximumMessageSize is 1024" in big["last_error"]
        [dead] = (await flow.dead_letters())["items"]
        assert dead["event_id"] == big["event_id"]

        await sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": "8192"})
        assert await flow.redeliver() == 1
        await deliver_until(flow, all_delivered)
        assert flow.notifiers["sqs"].max_message_size == 8192
    assert sorted(event_ids(await drain(sqs, url))) == sorted([small["event_id"], big["event_id"]])


async def test_a_limit_lowered_after_start_is_noticed(
    tmp_path: Path, sqlite_url: str, moto_endpoint: str, queue_url: str, sqs: Any
) -> None:
    """Moto refuses the whole batch when one entry is too long; the next round re-reads the
    limit, dead-letters the oversized event and delivers the rest."""
    settings = sqs_settings(tmp_path, sqlite_url, destination(queue_url, moto_endpoint))
    async with open_flow(settings) as flow:
        await ingest(flow, 2)
        await ingest(flow, 1, metadata={"note": "n" * 1000})
        await sqs.set_queue_attributes(
            QueueUrl=queue_url, Attributes={"MaximumMessageSize": "1024"}
        )
        dispatcher = Dispatcher(flow.runtime)
        await dispatcher.deliver_once("sqs", flow.notifiers["sqs"])
        rows = await outbox_rows(flow)
        assert all(r["status"] == "pending" and "InvalidParameterValue" in r["last_error"]
                   for r in rows)  # fmt: skip
        await deliver_until(
            flow, lambda r: all(row["status"] != "pending" for row in r), dispatcher=dispatcher
        )
        rows = await outbox_rows(flow)
    assert [row["status"] for row in rows] == ["delivered", "delivered", "dead"]
    assert sorted(event_ids(await drain(sqs, queue_url))) == sorted(
        row["event_id"] for row in rows[:2]
    )


async def test_a_deleted_queue_disables_the_destination_and_keeps_events(
    tmp_path: Path, sqlite_url: str, moto_endpoint: str, queue_url: str, sqs: Any
) -> None:
    settings = sqs_settings(tmp_path, sqlite_url, destination(queue_url, moto_endpoint))
    async with open_flow(settings) as flow:
        await ingest(flow, 2)
        await sqs.delete_queue(QueueUrl=queue_url)
        dispatcher = Dispatcher(flow.runtime)
        await dispatcher.deliver_once("sqs", flow.notifiers["sqs"])
        rows = await outbox_rows(flow)
        assert "sqs" in dispatcher.disabled
        assert await dispatcher.deliver_once("sqs", flow.notifiers["sqs"]) == 0
    assert [row["status"] for row in rows] == ["pending", "pending"]
    assert all("NonExistentQueue" in row["last_error"] for row in rows)


async def test_start_up_checks_the_queue(
    tmp_path: Path, sqlite_url: str, moto_endpoint: str, queue_url: str
) -> None:
    missing = queue_url + "-missing"
    with pytest.raises(ConfigError, match="does not exist"):
        async with open_flow(
            sqs_settings(tmp_path, sqlite_url, destination(missing, moto_endpoint))
        ):
            pass
    proxy = TcpProxy("127.0.0.1", 9)
    await proxy.start()
    closed = f"http://127.0.0.1:{proxy.port}"
    await proxy.stop()  # nothing listens there now
    with pytest.raises(ConfigError, match="notifier 'sqs' could not start"):
        async with open_flow(
            sqs_settings(tmp_path, sqlite_url, destination(queue_url, closed, timeout_s=2))
        ):
            pass


def sample_event(**attributes: str) -> Event:
    now = dt.datetime.now(dt.UTC)
    event_id = str(uuid.uuid4())
    payload = {
        "id": event_id,
        "type": "file.stored",
        "version": 1,
        "project": "p1",
        "occurred_at": now.isoformat(),
        "file": {"id": "f1", "filename": "a.ifc"},
    }
    return Event(event_id, "file.stored", now, "p1", "f1", payload, attributes)


async def test_queues_and_a_webhook_each_keep_their_own_state(
    tmp_path: Path, sqlite_url: str, moto_endpoint: str, queue_url: str, sqs: Any
) -> None:
    """Two queues (one filtered) and a webhook whose endpoint is down: the queues get their
    events while the webhook's circuit opens and its events wait."""
    pytest.importorskip("aecflow_notify_webhook")
    from aecflow_notify_webhook import generate_secret

    other = (await sqs.create_queue(QueueName=f"deleted-{uuid.uuid4().hex[:8]}"))["QueueUrl"]
    proxy = TcpProxy("127.0.0.1", 9)
    await proxy.start()
    down = f"http://127.0.0.1:{proxy.port}/hook"
    await proxy.stop()  # nothing listens there
    settings = sqs_settings(
        tmp_path,
        sqlite_url,
        destination(queue_url, moto_endpoint, name="all"),
        destination(other, moto_endpoint, name="deletions", events=["file.deleted"]),
        {"backend": "webhook", "name": "hook", "url": down, "secret": generate_secret()},
        breakers={"failure_threshold": 2, "reset_timeout_s": 30},
    )
    async with open_flow(settings) as flow:
        [file_id] = await ingest(flow, 1)
        await flow.delete(file_id)
        dispatcher = Dispatcher(flow.runtime)
        hook_breaker = flow.breakers["notifier:hook"]
        while hook_breaker.state.value == "closed":  # retries wait out their backoff
            for name, notifier in flow.notifiers.items():
                await dispatcher.deliver_once(name, notifier)
            await asyncio.sleep(0.01)
        rows = {name: await outbox_rows(flow, name) for name in flow.notifiers}
        states = {name: b.state.value for name, b in flow.breakers.items()}
    assert all_delivered(rows["all"]) and all_delivered(rows["deletions"])
    assert [r["event_type"] for r in rows["deletions"]] == ["file.deleted"]
    assert [r["status"] for r in rows["hook"]] == ["pending", "pending"]
    assert states == {"storage": "closed", "notifier:all": "closed",
                      "notifier:deletions": "closed", "notifier:hook": "open"}  # fmt: skip
    assert len(await drain(sqs, queue_url)) == 2
    assert [b["type"] for b in bodies(await drain(sqs, other))] == ["file.deleted"]
