"""Deliveries to a real receiver that verifies every signature, driven by the core's dispatcher.

Each scenario ends with the same check: every event reached the receiver, or is still kept
(pending or dead-lettered) to be delivered later. Nothing is ever dropped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from webhook_support import (
    HANG,
    Receiver,
    all_delivered,
    deliver_until,
    hook_settings,
    open_flow,
    outbox_rows,
    sample_event,
    serve,
    webhook,
)

from aecflow.flow import Flow
from aecflow.notify import DeliveryStatus
from aecflow.outbox.dispatcher import Dispatcher
from aecflow.streams import aiter_bytes
from aecflow_notify_webhook import WebhookConfig, WebhookNotifier, generate_secret


async def ingest(flow: Flow, count: int, project: str = "p1") -> list[str]:
    ids = []
    for n in range(count):
        record = await flow.ingest(project, f"model-{n}.bin", aiter_bytes(b"x" * (n + 1)))
        ids.append(record.id)
    return ids


async def test_events_arrive_signed_with_their_payload(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
    settings = hook_settings(tmp_path, database_url, webhook(receiver))
    async with open_flow(settings) as flow:
        file_ids = await ingest(flow, 3)
        await Dispatcher(flow.runtime).run_until_idle()
        rows = await outbox_rows(flow)
    assert all_delivered(rows) and not receiver.forged
    assert sorted(receiver.delivered_ids()) == sorted(row["event_id"] for row in rows)
    by_id = dict(receiver.delivered)
    for row in rows:
        assert by_id[row["event_id"]] == row["payload"], "the body is the event payload"
    assert sorted(p["file"]["id"] for p in by_id.values()) == sorted(file_ids)
    attempt = receiver.attempts[0]
    assert attempt.headers["content-type"] == "application/json"
    assert attempt.headers["user-agent"].startswith("aecflow-notify-webhook/")
    assert len(attempt.signatures) == 1 and attempt.signatures[0].startswith("v1,")


async def test_rotated_secrets_verify_on_either_side(receiver: Receiver) -> None:
    old = receiver.secrets[0]
    new = generate_secret()
    notifier = WebhookNotifier(WebhookConfig(url=receiver.url, secret=[new, old]))
    await notifier.start()
    try:
        event = sample_event(
            "evt-rotation-1", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01"
        )
        assert (await notifier.deliver([event]))[event.id].status is DeliveryStatus.DELIVERED
        receiver.secrets[:] = [new]  # the receiver moves to the new secret
        second = sample_event("evt-rotation-2")
        assert (await notifier.deliver([second]))[second.id].status is DeliveryStatus.DELIVERED
        receiver.secrets[:] = [generate_secret()]  # a receiver with another secret refuses
        third = sample_event("evt-rotation-3")
        outcome = (await notifier.deliver([third]))[third.id]
    finally:
        await notifier.close()
    assert receiver.delivered_ids() == ["evt-rotation-1", "evt-rotation-2"]
    assert all(len(a.signatures) == 2 for a in receiver.attempts)
    assert receiver.attempts[0].headers["traceparent"].startswith("00-aaaa")
    assert outcome.status is DeliveryStatus.RETRY and "HTTP 400" in (outcome.error or "")
    assert receiver.forged == ["no matching signature"]


async def test_failing_receiver_recovers_and_gets_everything_with_stable_ids(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
    receiver.plan = [500] * 9
    settings = hook_settings(
        tmp_path, database_url, webhook(receiver, max_concurrency=2, max_batch=4)
    )
    async with open_flow(settings) as flow:
        await ingest(flow, 6)
        await deliver_until(flow, all_delivered)
        rows = await outbox_rows(flow)
    event_ids = {row["event_id"] for row in rows}
    assert len(event_ids) == 6 and not receiver.forged
    failed = [a.webhook_id for a in receiver.attempts if a.answer == 500]
    assert len(failed) == 9
    # every attempt carried one of the events' ids, and each retried id was later delivered
    assert {a.webhook_id for a in receiver.attempts} == event_ids
    assert set(failed) <= set(receiver.delivered_ids())
    assert sorted(receiver.delivered_ids()) == sorted(event_ids), "each delivered exactly once"
    assert sum(row["attempts"] for row in rows) == 6 + 9


async def test_gone_endpoint_is_disabled_and_its_events_kept(
    tmp_path: Path, sqlite_url: str, receiver: Receiver
) -> None:
    receiver.default = 410
    settings = hook_settings(tmp_path, sqlite_url, webhook(receiver, max_concurrency=1))
    async with open_flow(settings) as flow:
        await ingest(flow, 3)
        dispatcher = Dispatcher(flow.runtime)
        assert await dispatcher.deliver_once("webhook", flow.notifiers["webhook"]) == 3
        assert "410" in dispatcher.disabled["webhook"]
        assert await dispatcher.deliver_once("webhook", flow.notifiers["webhook"]) == 0
        rows = await outbox_rows(flow)
        assert len(receiver.attempts) == 1, "the rest of the round was not sent"
        assert [row["status"] for row in rows] == ["pending"] * 3
        assert all("410" in row["last_error"] for row in rows)
        assert flow.breakers["notifier:webhook"].state.value == "closed"

        receiver.default = 200  # the endpoint is back; a restarted dispatcher delivers
        await deliver_until(flow, all_delivered)
    assert sorted(receiver.delivered_ids()) == sorted(row["event_id"] for row in rows)


async def test_hanging_receiver_times_out_and_opens_the_breaker(
    tmp_path: Path, sqlite_url: str, receiver: Receiver
) -> None:
    receiver.default = HANG
    settings = hook_settings(
        tmp_path,
        sqlite_url,
        webhook(receiver, timeout_s=0.2, max_concurrency=1),
        breakers={"failure_threshold": 2, "reset_timeout_s": 0.2},
    )
    async with open_flow(settings) as flow:
        await ingest(flow, 3)
        breaker = flow.breakers["notifier:webhook"]
        dispatcher = Dispatcher(flow.runtime)
        assert await dispatcher.deliver_once("webhook", flow.notifiers["webhook"]) == 3
        rows = await outbox_rows(flow)
        assert len(receiver.attempts) == 1, "after a timeout the rest of the round is not sent"
        errors = sorted(row["last_error"] for row in rows)
        assert errors[0] == "no answer within 0.2s"
        assert errors[1:] == ["not sent: no answer within 0.2s (earlier in this round)"] * 2
        assert all(row["status"] == "pending" and row["attempts"] == 1 for row in rows)

        while breaker.state.value == "closed":
            await dispatcher.deliver_once("webhook", flow.notifiers["webhook"])
            await asyncio.sleep(0.01)
        assert len(receiver.attempts) == 2, "one timeout per round"
        assert await dispatcher.deliver_once("webhook", flow.notifiers["webhook"]) == 0

        receiver.default = 200
        receiver.release.set()
        await deliver_until(flow, all_delivered, dispatcher=dispatcher)
    assert sorted(receiver.delivered_ids()) == sorted(row["event_id"] for row in rows)


async def test_redirect_is_a_failure_and_never_followed(
    tmp_path: Path, sqlite_url: str, receiver: Receiver
) -> None:
    target = receiver.url.replace("/hook", "/elsewhere")
    receiver.plan = [(302, {"location": target}), (307, {"location": target})]
    settings = hook_settings(tmp_path, sqlite_url, webhook(receiver, max_concurrency=1))
    async with open_flow(settings) as flow:
        await ingest(flow, 1)
        dispatcher = Dispatcher(flow.runtime)
        await dispatcher.deliver_once("webhook", flow.notifiers["webhook"])
        [row] = await outbox_rows(flow)
        assert row["status"] == "pending" and row["attempts"] == 1
        assert f"redirect to {target} not followed" in row["last_error"]
        await deliver_until(flow, all_delivered, dispatcher=dispatcher)
        [row] = await outbox_rows(flow)
    assert receiver.redirect_target_hits == 0
    assert [a.answer for a in receiver.attempts] == [
        (302, {"location": target}), (307, {"location": target}), 200
    ]  # fmt: skip
    assert row["attempts"] == 3


async def test_rate_limit_retry_after_is_honoured(
    tmp_path: Path, sqlite_url: str, receiver: Receiver
) -> None:
    receiver.plan = [(429, {"retry-after": "120"}), (503, {"retry-after": "90"})]
    settings = hook_settings(tmp_path, sqlite_url, webhook(receiver, max_concurrency=1))
    async with open_flow(settings) as flow:
        await ingest(flow, 2)
        before = dt.datetime.now(dt.UTC)
        await Dispatcher(flow.runtime).deliver_once("webhook", flow.notifiers["webhook"])
        rows = await outbox_rows(flow)
    waits = sorted((row["available_at"] - before).total_seconds() for row in rows)
    assert waits[0] >= 90 - 1 and waits[1] >= 120 - 1, waits
    assert all(row["status"] == "pending" and row["attempts"] == 1 for row in rows)


async def test_too_large_for_the_receiver_is_dead_at_once(
    tmp_path: Path, sqlite_url: str, receiver: Receiver
) -> None:
    receiver.plan = [413]
    settings = hook_settings(tmp_path, sqlite_url, webhook(receiver))
    async with open_flow(settings) as flow:
        await ingest(flow, 1)
        await Dispatcher(flow.runtime).deliver_once("webhook", flow.notifiers["webhook"])
        [row] = await outbox_rows(flow)
        assert (row["status"], row["attempts"]) == ("dead", 1)
        assert row["last_error"].startswith("HTTP 413")
        assert await flow.redeliver() == 1  # once the receiver accepts larger bodies
        await deliver_until(flow, all_delivered)
    assert receiver.delivered_ids() == [row["event_id"]]


async def test_concurrency_per_endpoint_is_bounded(
    tmp_path: Path, sqlite_url: str, receiver: Receiver
) -> None:
    receiver.hold_until = 3  # nobody is answered until three requests are in flight
    settings = hook_settings(
        tmp_path, sqlite_url, webhook(receiver, max_concurrency=3, max_batch=12)
    )
    async with open_flow(settings) as flow:
        await ingest(flow, 12)
        dispatcher = Dispatcher(flow.runtime)
        assert await dispatcher.deliver_once("webhook", flow.notifiers["webhook"]) == 12
        rows = await outbox_rows(flow)
    assert all_delivered(rows)
    assert receiver.max_inflight == 3


async def test_several_destinations_keep_their_own_state(
    tmp_path: Path, sqlite_url: str, receiver: Receiver
) -> None:
    """A healthy, filtered endpoint and a hanging one: each has its own breaker and retries,
    and the failing one never holds the other back."""
    hanging = Receiver(list(receiver.secrets), default=HANG)
    async with serve(hanging.app()) as base:
        hanging.url = f"{base}/hook"
        settings = hook_settings(
            tmp_path,
            sqlite_url,
            webhook(receiver, name="good", events=["file.stored"]),
            webhook(hanging, name="bad", timeout_s=0.2),
            breakers={"failure_threshold": 2, "reset_timeout_s": 30},
        )
        try:
            async with open_flow(settings) as flow:
                [file_id] = await ingest(flow, 1)
                await flow.delete(file_id)
                dispatcher = Dispatcher(flow.runtime)
                while flow.breakers["notifier:bad"].state.value == "closed":
                    for name, notifier in flow.notifiers.items():
                        await dispatcher.deliver_once(name, notifier)
                    await asyncio.sleep(0.01)
                good = await outbox_rows(flow, "good")
                bad = await outbox_rows(flow, "bad")
                states = {name: b.state.value for name, b in flow.breakers.items()}
        finally:
            hanging.release.set()
    assert [row["event_type"] for row in good] == ["file.stored"]
    assert all_delivered(good)
    assert [row["event_type"] for row in bad] == ["file.stored", "file.deleted"]
    assert all(row["status"] == "pending" for row in bad)
    assert states["notifier:good"] == "closed" and states["notifier:bad"] == "open"
    assert len(hanging.attempts) == 2 * 2, "two failed rounds of two, then the circuit opened"
