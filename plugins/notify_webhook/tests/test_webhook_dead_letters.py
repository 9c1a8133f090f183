"""Dead letters: visible with their last error (HTTP API and CLI) and redeliverable once the
endpoint is fixed; and the documented example receiver works against the real sender."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from webhook_support import (
    Receiver,
    all_delivered,
    deliver_until,
    hook_settings,
    open_flow,
    sample_event,
    serve,
    webhook,
)

from aecflow.config import Settings
from aecflow.flow import Flow
from aecflow.notify import DeliveryStatus
from aecflow.outbox.dispatcher import Dispatcher
from aecflow.streams import aiter_bytes
from aecflow.testing import TESTING_PLUGIN, live_host
from aecflow_notify_webhook import WebhookConfig, WebhookNotifier

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "receiver.py"
#: The host on loopback without bearer tokens (where the core has token authentication).
NO_AUTH: dict[str, Any] = {"auth": {"mode": "none"}} if "auth" in Settings.model_fields else {}


def dead(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and all(row["status"] == "dead" for row in rows)


def broken_then_dead_settings(
    tmp_path: Path, url: str, receiver: Receiver, **overrides: Any
) -> Settings:
    outbox = {"max_attempts": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.02}
    return hook_settings(tmp_path, url, webhook(receiver), outbox=outbox, **overrides)


async def test_dead_letters_are_listed_over_http_and_redelivered(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
    receiver.default = 500
    settings = broken_then_dead_settings(tmp_path, database_url, receiver, **NO_AUTH)
    async with (
        live_host(settings, plugins=[TESTING_PLUGIN], worker=False) as (base, app),
        httpx.AsyncClient(base_url=base) as client,
    ):
        flow: Flow = app.state.flow  # type: ignore[attr-defined]
        for n in range(3):
            await flow.ingest("p1", f"m{n}.bin", aiter_bytes(b"data"))
        await deliver_until(flow, dead)

        listing = await client.get("/v1/events/dead")
        page = listing.json()
        assert listing.status_code == 200, page
        assert len(page["items"]) == 3 and page["next_cursor"] is None
        for item in page["items"]:
            assert (item["destination"], item["attempts"]) == ("webhook", 3)
            assert item["last_error"] == "HTTP 500: answer 500"

        receiver.default = 200  # the endpoint is fixed
        first = page["items"][0]
        answer = await client.post(f"/v1/events/dead/{first['id']}/redeliver")
        assert answer.status_code == 202
        await Dispatcher(flow.runtime).run_until_idle()
        assert receiver.delivered_ids() == [first["event_id"]]
        assert len((await client.get("/v1/events/dead")).json()["items"]) == 2

        assert await flow.redeliver() == 2
        await deliver_until(flow, all_delivered)
    assert sorted(receiver.delivered_ids()) == sorted(item["event_id"] for item in page["items"])
    # the same webhook-id on every attempt, failed or not
    assert {a.webhook_id for a in receiver.attempts} == set(receiver.delivered_ids())
    assert len(receiver.attempts) == 3 * 3 + 3


async def test_dead_letters_from_the_command_line(
    tmp_path: Path, sqlite_url: str, receiver: Receiver
) -> None:
    # the command line opens a flow on its own: with a storage backend that is installed
    pytest.importorskip("aecflow_storage_local", reason="the CLI's flow needs a real storage")
    receiver.default = 500
    settings = broken_then_dead_settings(
        tmp_path,
        sqlite_url,
        receiver,
        storage={"backend": "local", "root": str(tmp_path / "objects")},
    )
    async with open_flow(settings) as flow:
        await flow.ingest("p1", "m.bin", aiter_bytes(b"data"))
        await deliver_until(flow, dead)

    config = tmp_path / "aecflow.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[database]
url = "{sqlite_url}"
[storage]
backend = "local"
root = "{tmp_path / "objects"}"
[[notifiers]]
backend = "webhook"
url = "{receiver.url}"
secret = {{ env = "TEST_WEBHOOK_SECRET" }}
"""
    )
    env = {**os.environ, "AECFLOW_CONFIG": str(config), "TEST_WEBHOOK_SECRET": receiver.secrets[0]}

    def aecflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aecflow", *args],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    listed = aecflow("events", "dead", "--json")
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)["items"]
    assert item["last_error"] == "HTTP 500: answer 500"
    assert receiver.secrets[0] not in listed.stdout + listed.stderr
    queued = aecflow("events", "redeliver", "--all")
    assert queued.returncode == 0 and "1 event(s) queued" in queued.stdout

    receiver.default = 200
    async with open_flow(settings) as flow:
        await deliver_until(flow, all_delivered)
    assert receiver.delivered_ids() == [item["event_id"]]


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aecflow_example_receiver", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_documented_example_receiver(secret: str) -> None:
    handled: list[dict[str, Any]] = []
    app = load_example().create_app([secret], handle=handled.append)
    async with serve(app) as base:
        notifier = WebhookNotifier(WebhookConfig(url=f"{base}/hooks/aecflow", secret=secret))
        await notifier.start()
        try:
            event = sample_event("evt-example-1")
            for _ in range(2):  # a repeat is acknowledged but handled once
                outcome = (await notifier.deliver([event]))[event.id]
                assert outcome.status is DeliveryStatus.DELIVERED
        finally:
            await notifier.close()
        async with httpx.AsyncClient() as client:
            forged = await client.post(
                f"{base}/hooks/aecflow",
                content=b'{"type":"file.stored"}',
                headers={"webhook-id": "x", "webhook-timestamp": str(int(time.time())),
                         "webhook-signature": "v1,AAAA"},
            )  # fmt: skip
    assert [e["id"] for e in handled] == ["evt-example-1"]
    assert forged.status_code == 400 and "no matching signature" in forged.text
