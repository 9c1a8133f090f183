"""Settings, message building and batching, and `aecflow sqs config` against moto."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqs_support import REGION

from aecflow.config import validate
from aecflow.errors import ConfigError
from aecflow.loading.plugins import PluginHost
from aecflow.notify import Event
from aecflow_notify_sqs import SqsConfig, SqsNotifier
from aecflow_notify_sqs.cli import sqs as sqs_group
from aecflow_notify_sqs.messages import MAX_ENTRIES, Message, batches, build_message
from aecflow_notify_sqs.queues import QueuePlan

AWS_URL = "https://sqs.eu-central-1.amazonaws.com/123456789012/aecflow-events"


def test_registered_through_its_entry_point() -> None:
    host = PluginHost(environ={"AECFLOW_LOAD_PLUGINS": "notify_sqs"}).load()
    [info] = [p for p in host.plugins if p.name == "notify_sqs"]
    assert (info.status, sorted(info.hooks)) == (
        "loaded",
        ["register_commands", "register_notifiers"],
    )
    registration = host.registries.notifiers.get("sqs")
    assert registration is not None
    assert (registration.factory, registration.config) == (SqsNotifier, SqsConfig)


def test_config_defaults_and_what_it_reads_from_the_queue_url() -> None:
    config = SqsConfig(queue_url=AWS_URL)
    assert (config.queue_name, config.account, config.region_name()) == (
        "aecflow-events", "123456789012", "eu-central-1"
    )  # fmt: skip
    assert (config.group_by, config.max_batch, config.max_concurrency, config.timeout_s) == (
        "project", 100, 4, 15.0
    )  # fmt: skip
    assert SqsConfig(queue_url=AWS_URL, region="us-west-2").region_name() == "us-west-2"
    local = SqsConfig(queue_url="http://127.0.0.1:4566/000000000000/q.fifo")
    assert local.region_name() is None and local.queue_name == "q.fifo"
    assert SqsNotifier(local).fifo
    filtered = SqsNotifier(SqsConfig(queue_url=AWS_URL, events=["file.process*"]))
    assert filtered.wants("file.processed") and not filtered.wants("file.stored")
    for bad in [
        {"queue_url": "aecflow-events"},
        {"queue_url": "https://sqs.eu-central-1.amazonaws.com/aecflow-events"},
        {"queue_url": AWS_URL, "group_by": "tenant"},
        {"queue_url": AWS_URL, "max_batch": 0},
        {"queue_url": AWS_URL, "queue": "typo"},
    ]:
        with pytest.raises(ConfigError):
            validate(SqsConfig, bad, where="[[notifiers]][0]")


def event(n: int, *, project: str = "p1", size: int = 10, **attributes: str) -> Event:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    payload = {"id": f"e{n}", "type": "file.stored", "project": project,
               "file": {"id": f"f{n}", "note": "é" + "x" * size}}  # fmt: skip
    return Event(f"e{n}", "file.stored", now, project, f"f{n}", payload, attributes)


def test_messages_carry_attributes_and_fifo_ids() -> None:
    plain = build_message(event(1, traceparent="00-abc-def-01"), fifo=False, group_by="project")
    assert set(plain.entry) == {"MessageBody", "MessageAttributes"}
    attributes = {k: v["StringValue"] for k, v in plain.entry["MessageAttributes"].items()}
    assert attributes == {
        "event_type": "file.stored",
        "event_id": "e1",
        "traceparent": "00-abc-def-01",
    }
    assert plain.entry["MessageBody"].isascii() and "\\u00e9" in plain.entry["MessageBody"]
    body = len(plain.entry["MessageBody"])
    assert plain.size == body + sum(len(k) + len("String") + len(v) for k, v in attributes.items())

    fifo = build_message(event(2, project="tower-a"), fifo=True, group_by="project")
    assert (fifo.entry["MessageGroupId"], fifo.entry["MessageDeduplicationId"]) == ("tower-a", "e2")
    per_file = build_message(event(3), fifo=True, group_by="file")
    assert per_file.entry["MessageGroupId"] == "f3"


def test_batches_hold_ten_entries_and_stay_under_the_byte_limit() -> None:
    def message(n: int, size: int) -> Message:
        return Message(f"e{n}", {}, size)

    groups = batches([message(n, 100) for n in range(25)], max_bytes=1_000_000)
    assert [len(g) for g in groups] == [10, 10, 5] and MAX_ENTRIES == 10
    groups = batches([message(n, 400) for n in range(5)], max_bytes=1000)
    assert [len(g) for g in groups] == [2, 2, 1]
    order = [m.event_id for g in batches([message(n, 300) for n in range(7)], 1000) for m in g]
    assert order == [f"e{n}" for n in range(7)]
    assert batches([], max_bytes=10) == []


def test_plan_names_the_dlq_and_its_arn() -> None:
    plan = QueuePlan.for_queue("events.fifo", region="eu-west-1", account="111122223333")
    described = plan.describe()
    assert described["dead_letter_queue"]["QueueName"] == "events-dlq.fifo"
    assert described["dead_letter_queue"]["Attributes"]["FifoQueue"] == "true"
    assert described["redrive_policy"] == {
        "deadLetterTargetArn": "arn:aws:sqs:eu-west-1:111122223333:events-dlq.fifo",
        "maxReceiveCount": 5,
    }
    policy = json.loads(described["queue"]["Attributes"]["RedrivePolicy"])
    assert policy == described["redrive_policy"]
    assert QueuePlan.for_queue("q").dlq_arn() == "arn:aws:sqs:<region>:<account-id>:q-dlq"
    assert QueuePlan.for_queue("q", region="cn-north-1").dlq_arn().startswith("arn:aws-cn:")


def write_config(tmp_path: Path, queue_url: str, endpoint: str) -> Path:
    path = tmp_path / "aecflow.toml"
    path.write_text(
        f"""
[[notifiers]]
backend = "sqs"
name = "events"
queue_url = "{queue_url}"
endpoint_url = "{endpoint}"
region = "{REGION}"
"""
    )
    return path


def test_sqs_config_prints_the_plan_for_the_configured_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str
) -> None:
    url = f"{moto_endpoint}/123456789012/orders-events"
    monkeypatch.setenv("AECFLOW_CONFIG", str(write_config(tmp_path, url, moto_endpoint)))
    result = CliRunner().invoke(sqs_group, ["config", "--max-receive-count", "7"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["queue"]["QueueName"] == "orders-events"
    assert plan["redrive_policy"] == {
        "deadLetterTargetArn": f"arn:aws:sqs:{REGION}:123456789012:orders-events-dlq",
        "maxReceiveCount": 7,
    }
    missing = CliRunner().invoke(sqs_group, ["config", "--notifier", "nope"])
    assert missing.exit_code == 2 and "--queue NAME" in missing.output


async def test_sqs_config_apply_through_the_aecflow_command(
    tmp_path: Path, moto_endpoint: str, sqs: Any
) -> None:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    url = f"{moto_endpoint}/123456789012/{name}"
    env = {**os.environ, "AECFLOW_CONFIG": str(write_config(tmp_path, url, moto_endpoint))}
    command = [sys.executable, "-m", "aecflow", "sqs", "config", "--apply"]
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    applied = json.loads(stdout)
    assert applied["queue"]["created"] and applied["dead_letter_queue"]["created"]

    queue_url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
    dlq_url = (await sqs.get_queue_url(QueueName=f"{name}-dlq"))["QueueUrl"]
    attributes = (await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"]))[
        "Attributes"
    ]
    dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5
    }  # fmt: skip
    assert applied["redrive_policy"]["deadLetterTargetArn"] == dlq_arn


def test_sqs_config_apply_is_idempotent_and_keeps_an_existing_queue(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"existing-{uuid.uuid4().hex[:8]}.fifo"
    args = ["config", "--queue", name, "--endpoint-url", moto_endpoint, "--region", REGION]
    runner = CliRunner()
    first = runner.invoke(sqs_group, [*args, "--apply", "--retention-days", "2"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(sqs_group, [*args, "--apply", "--max-receive-count", "9"])
    assert again.exit_code == 0, again.output
    result = json.loads(again.output)
    assert not result["queue"]["created"] and not result["dead_letter_queue"]["created"]
    queue = result["queue"]["Attributes"]
    assert queue["FifoQueue"] == "true" and queue["MessageRetentionPeriod"] == str(2 * 86400)
    assert json.loads(queue["RedrivePolicy"])["maxReceiveCount"] == 9
    assert result["dead_letter_queue"]["QueueUrl"].endswith(name.replace(".fifo", "-dlq.fifo"))

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # the command's own retries, not for this test
    down = runner.invoke(
        sqs_group, ["config", "--queue", "q", "--endpoint-url", "http://127.0.0.1:9", "--apply"]
    )
    assert down.exit_code != 0 and "SQS" in str(down.exception)
