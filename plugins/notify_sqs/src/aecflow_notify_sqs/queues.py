"""A queue with its dead-letter queue: the plan `aecflow sqs config` prints, and applying it.

The SQS dead-letter queue (redrive policy) catches messages that *consumers* fail to process
``maxReceiveCount`` times. It is separate from aecflow's own dead letters, which are events
that could not be *sent* to the queue (`aecflow events dead`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DAY_S = 24 * 3600
#: Error codes of a queue that does not exist.
NO_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass(frozen=True, slots=True)
class QueuePlan:
    name: str
    dlq_name: str
    fifo: bool
    max_receive_count: int = 5
    retention_days: int = 4
    dlq_retention_days: int = 14
    region: str | None = None
    account: str | None = None

    @classmethod
    def for_queue(cls, name: str, *, dlq_name: str | None = None, **options: Any) -> QueuePlan:
        fifo = name.endswith(".fifo")
        base = name.removesuffix(".fifo")
        default_dlq = f"{base}-dlq.fifo" if fifo else f"{base}-dlq"
        return cls(name=name, dlq_name=dlq_name or default_dlq, fifo=fifo, **options)

    def dlq_arn(self) -> str:
        """The DLQ's ARN as far as it is known without asking AWS (``<...>`` placeholders)."""
        region = self.region or "<region>"
        partition = "aws-cn" if region.startswith("cn-") else (
            "aws-us-gov" if region.startswith("us-gov-") else "aws"
        )  # fmt: skip
        return f"arn:{partition}:sqs:{region}:{self.account or '<account-id>'}:{self.dlq_name}"

    def queue_attributes(self, dlq_arn: str) -> dict[str, str]:
        return self._base(self.retention_days) | {"RedrivePolicy": self.redrive_policy(dlq_arn)}

    def dlq_attributes(self) -> dict[str, str]:
        return self._base(self.dlq_retention_days)

    def redrive_policy(self, dlq_arn: str) -> str:
        return json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receive_count}
        )

    def _base(self, days: int) -> dict[str, str]:
        attributes = {"MessageRetentionPeriod": str(days * DAY_S)}
        if self.fifo:
            attributes["FifoQueue"] = "true"
        return attributes

    def describe(self) -> dict[str, Any]:
        """The plan as the SQS API takes it (CreateQueue requests), DLQ first."""
        arn = self.dlq_arn()
        return {
            "dead_letter_queue": {"QueueName": self.dlq_name, "Attributes": self.dlq_attributes()},
            "queue": {"QueueName": self.name, "Attributes": self.queue_attributes(arn)},
            "redrive_policy": json.loads(self.redrive_policy(arn)),
        }


async def apply(client: Any, plan: QueuePlan) -> dict[str, Any]:
    """Create what is missing: the DLQ, then the queue pointing at it. An existing queue keeps
    its other settings and only gets the redrive policy; an existing DLQ is left as it is."""
    dlq_url, dlq_created = await _ensure(client, plan.dlq_name, plan.dlq_attributes())
    dlq_arn = await _arn(client, dlq_url)
    attributes = plan.queue_attributes(dlq_arn)
    url, created = await _ensure(client, plan.name, attributes)
    if not created:
        await client.set_queue_attributes(
            QueueUrl=url, Attributes={"RedrivePolicy": attributes["RedrivePolicy"]}
        )
    return {
        "dead_letter_queue": await _describe(client, dlq_url, dlq_created),
        "queue": await _describe(client, url, created),
        "redrive_policy": json.loads(attributes["RedrivePolicy"]),
    }


async def _ensure(client: Any, name: str, attributes: dict[str, str]) -> tuple[str, bool]:
    try:
        return (await client.get_queue_url(QueueName=name))["QueueUrl"], False
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code not in NO_QUEUE:
            raise
    answer = await client.create_queue(QueueName=name, Attributes=attributes)
    return answer["QueueUrl"], True


async def _arn(client: Any, url: str) -> str:
    answer = await client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return answer["Attributes"]["QueueArn"]


async def _describe(client: Any, url: str, created: bool) -> dict[str, Any]:
    answer = await client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["QueueArn", "MessageRetentionPeriod", "FifoQueue", "RedrivePolicy"],
    )
    return {"QueueUrl": url, "created": created, "Attributes": answer.get("Attributes", {})}
