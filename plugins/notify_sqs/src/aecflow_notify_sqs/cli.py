"""`aecflow sqs config`: print, or create, a destination queue with its dead-letter queue."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from aecflow.config import NotifierSettings, load_settings, resolve_secrets, validate
from aecflow.errors import AecflowError
from aecflow_notify_sqs.config import SqsConfig
from aecflow_notify_sqs.queues import QueuePlan, apply


class SqsUnavailable(AecflowError):
    """SQS refused or could not be reached while applying the plan."""

    code = "sqs_unavailable"
    exit_code = 69  # EX_UNAVAILABLE


def _configured(ctx: click.Context, name: str | None) -> SqsConfig:
    """The sqs destination of the configuration: the one named ``name``, or the only one."""
    settings = load_settings(ctx.find_root().params.get("config"))
    entries: list[tuple[str, NotifierSettings]] = [
        (dest, entry)
        for dest, entry in zip(settings.notifier_names(), settings.notifiers, strict=True)
        if entry.backend == "sqs" and (name is None or dest == name)
    ]
    if len(entries) != 1:
        which = f"named {name!r}" if name else "(give --notifier NAME when there are several)"
        raise click.UsageError(
            f"found {len(entries)} [[notifiers]] entries with backend 'sqs' {which}; "
            "or give --queue NAME"
        )
    dest, entry = entries[0]
    where = f"[[notifiers]] {dest!r}"
    return validate(SqsConfig, resolve_secrets(entry.options(), where), where=where)


@click.group("sqs")
def sqs() -> None:
    """Amazon SQS destinations: queues and their dead-letter queues."""


@sqs.command("config")
@click.option("--notifier", "notifier", help="The sqs [[notifiers]] entry, by name.")
@click.option("--queue", "queue", help="A queue name instead of a configured destination.")
@click.option("--dlq", "dlq", help="Dead-letter queue name.  [default: <queue>-dlq]")
@click.option(
    "--max-receive-count",
    default=5,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Receives before SQS moves a message to the dead-letter queue.",
)
@click.option("--retention-days", default=4, show_default=True, type=click.IntRange(1, 14))
@click.option(
    "--dlq-retention-days",
    default=14,
    show_default=True,
    type=click.IntRange(1, 14),
    help="Keep this longer than the queue's: SQS keeps a message's original age.",
)
@click.option("--region", help="AWS region (default: the destination's, else the AWS chain).")
@click.option("--endpoint-url", help="SQS-compatible endpoint.")
@click.option("--profile", help="AWS profile.")
@click.option(
    "--apply",
    "do_apply",
    is_flag=True,
    help="Create the DLQ and the queue (or add the redrive policy to an existing one).",
)
@click.pass_context
def config_command(
    ctx: click.Context,
    notifier: str | None,
    queue: str | None,
    dlq: str | None,
    max_receive_count: int,
    retention_days: int,
    dlq_retention_days: int,
    region: str | None,
    endpoint_url: str | None,
    profile: str | None,
    do_apply: bool,
) -> None:
    """Print the queue, its dead-letter queue and the redrive policy as JSON (the CreateQueue
    requests); with --apply, create them through the SQS API and print what exists."""
    account = None
    if queue is None:
        configured = _configured(ctx, notifier)
        queue, account = configured.queue_name, configured.account
        region = region or configured.region_name()
        endpoint_url = endpoint_url or configured.endpoint_url
        profile = profile or configured.profile
    plan = QueuePlan.for_queue(
        queue,
        dlq_name=dlq,
        max_receive_count=max_receive_count,
        retention_days=retention_days,
        dlq_retention_days=dlq_retention_days,
        region=region,
        account=account,
    )
    if not do_apply:
        click.echo(json.dumps(plan.describe(), indent=2))
        return
    result = asyncio.run(_apply(plan, region, endpoint_url, profile))
    click.echo(json.dumps(result, indent=2))


async def _apply(
    plan: QueuePlan, region: str | None, endpoint_url: str | None, profile: str | None
) -> dict[str, Any]:
    import aioboto3
    from aiobotocore.config import AioConfig

    # standard retries (3 attempts unless AWS_MAX_ATTEMPTS says otherwise), short connects
    config = AioConfig(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30)
    session = aioboto3.Session(profile_name=profile)
    client = session.client("sqs", region_name=region, endpoint_url=endpoint_url, config=config)
    try:
        async with client as sqs:
            return await apply(sqs, plan)
    except Exception as exc:
        raise SqsUnavailable(f"SQS: {type(exc).__name__}: {exc}") from exc
