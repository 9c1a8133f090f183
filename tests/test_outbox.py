"""The outbox dispatcher: retries with backoff, breakers, dead letters and redelivery."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aecflow.flow import Flow
from aecflow.outbox.dispatcher import Dispatcher
from aecflow.streams import aiter_bytes
from aecflow.testing.delivery import deliver_until, outbox_rows

from . import engine_plugin
from .conftest import make_settings

PLUGINS = [("engine_plugin", engine_plugin)]


def outbox_settings(tmp_path: Path, database_url: str, fail_times: int, **overrides: object):
    return make_settings(
        tmp_path,
        database_url,
        notifiers=[{"backend": "flaky", "fail_times": fail_times}],
        outbox={"max_attempts": 6, "backoff_base_s": 0.02, "backoff_max_s": 0.1},
        breakers={"failure_threshold": 3, "reset_timeout_s": 0.3},
        **overrides,
    )


async def test_failing_destination_recovers_and_gets_the_event_once(
    tmp_path: Path, database_url: str
) -> None:
    async with Flow.open(
        outbox_settings(tmp_path, database_url, fail_times=2), plugins=PLUGINS
    ) as flow:
        record = await flow.ingest("p1", "a.bin", aiter_bytes(b"data"))
        [before] = await outbox_rows(flow)
        await deliver_until(flow, lambda r: r[0]["status"] == "delivered")
        [after] = await outbox_rows(flow)
        notifier = flow.notifiers["flaky"]
    assert notifier.calls == 3
    assert [event.id for event in notifier.delivered] == [before["event_id"]]
    assert notifier.delivered[0].payload["file"]["id"] == record.id
    assert after["attempts"] == 3 and after["last_error"] is None
    assert after["delivered_at"] is not None


async def test_breaker_stops_spending_attempts_then_dead_letters_and_redelivers(
    tmp_path: Path, database_url: str
) -> None:
    async with Flow.open(
        outbox_settings(tmp_path, database_url, fail_times=-1), plugins=PLUGINS
    ) as flow:
        await flow.ingest("p1", "a.bin", aiter_bytes(b"data"))
        notifier = flow.notifiers["flaky"]
        breaker = flow.breakers["notifier:flaky"]
        dispatcher = Dispatcher(flow.runtime)

        while breaker.state.value == "closed":
            await dispatcher.deliver_once("flaky", notifier)
            await asyncio.sleep(0.03)
        [row] = await outbox_rows(flow)
        assert row["attempts"] == 3 and notifier.calls == 3
        # while open: nothing is claimed, no attempt is spent, the event stays pending
        for _ in range(5):
            assert await dispatcher.deliver_once("flaky", notifier) == 0
        [row] = await outbox_rows(flow)
        assert (row["attempts"], row["status"], notifier.calls) == (3, "pending", 3)
        assert breaker.snapshot()["state"] == "open"

        await deliver_until(flow, lambda r: r[0]["status"] == "dead")
        [row] = await outbox_rows(flow)
        assert row["attempts"] == 6, "dead only after the configured attempts"
        assert "destination unreachable" in row["last_error"]
        dead = await flow.dead_letters()
        assert [item["id"] for item in dead["items"]] == [row["id"]]

        notifier.fail_times = 0
        assert await flow.redeliver() == 1
        await deliver_until(flow, lambda r: r[0]["status"] == "delivered")
        assert len(notifier.delivered) == 1
        assert (await flow.dead_letters())["items"] == []


async def test_events_for_every_state_change_reach_the_destination(
    tmp_path: Path, database_url: str
) -> None:
    async with Flow.open(
        outbox_settings(tmp_path, database_url, fail_times=0), plugins=PLUGINS
    ) as flow:
        record = await flow.ingest("p1", "a.ok", aiter_bytes(b"x\n"))
        await flow.delete(record.id)
        await flow.restore(record.id)
        await flow.purge(record.id)
        await Dispatcher(flow.runtime).run_until_idle()
        delivered = flow.notifiers["flaky"].delivered
    assert [e.type for e in delivered] == [
        "file.stored",
        "file.deleted",
        "file.restored",
        "file.purged",
    ]
    assert len({e.id for e in delivered}) == 4
    assert "filename" not in delivered[-1].payload["file"], "purged events carry no name"


async def test_every_operation_is_observed(tmp_path: Path, database_url: str) -> None:
    from aecflow.jobs.worker import Worker

    engine_plugin.OBSERVED.clear()
    settings = outbox_settings(tmp_path, database_url, fail_times=3)
    async with Flow.open(settings, plugins=PLUGINS) as flow:
        await flow.ingest("p1", "a.ok", aiter_bytes(b"x\n"))
        await Worker(flow.runtime).run_until_idle()
        await deliver_until(flow, lambda r: all(row["status"] == "delivered" for row in r))
    seen = {}
    for observation in engine_plugin.OBSERVED:
        seen.setdefault(observation.name, []).append(observation)
    assert {
        "flow.ingest",
        "worker.job",
        "processing.run",
        "outbox.delivery",
        "breaker.transition",
    } <= set(seen)
    assert seen["processing.run"][0].outcome == "succeeded"
    assert seen["processing.run"][0].attributes["processor"] == "t-count"
    outcomes = [o.outcome for o in seen["outbox.delivery"]]
    # one observation per event and attempt: 3 failed calls, then each event delivered once
    # (file.stored, file.step_succeeded, file.processed)
    assert outcomes.count("retry") >= 3 and outcomes.count("delivered") == 3
    transitions = [(o.attributes["from"], o.attributes["to"]) for o in seen["breaker.transition"]]
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert all(o.duration_s >= 0 for o in engine_plugin.OBSERVED)
