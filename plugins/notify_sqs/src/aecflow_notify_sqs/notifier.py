"""The SQS notifier: events as messages, sent with SendMessageBatch, one attempt per call.

Retries, backoff, circuit breaking and dead letters are the core's; this only sends and
reports per event. SendMessageBatch can answer 200 with some entries failed: only the
entries SQS lists as successful count as delivered, the others are retried by the core, so
a partial failure never duplicates the messages that did arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aecflow.errors import ConfigError
from aecflow.notify import DeliveryOutcome, DeliveryStatus, Event, Notifier
from aecflow_notify_sqs.config import SqsConfig
from aecflow_notify_sqs.messages import Message, batches, build_message

log = logging.getLogger(__name__)

#: Error codes meaning the queue is gone: the destination is disabled, its events kept.
QUEUE_GONE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
#: Error codes that may mean the queue's limits changed since we read them.
LIMITS_CHANGED = frozenset(
    {"InvalidParameterValue", "BatchRequestTooLong", "MessageTooLong", "InvalidMessageContents"}
)
#: SQS's default and largest ``MaximumMessageSize``, used until the queue says otherwise.
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024


def client_error(exc: Exception) -> tuple[str, str] | None:
    """``(code, message)`` of a botocore ``ClientError``; ``None`` for any other error."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict) or "Error" not in response:
        return None
    error = response["Error"]
    return str(error.get("Code", "")), str(error.get("Message", ""))


class SqsNotifier(Notifier):
    def __init__(self, config: SqsConfig) -> None:
        self.config = config
        self.max_batch = config.max_batch
        self.fifo = config.queue_name.endswith(".fifo")
        self.max_message_size = DEFAULT_MAX_MESSAGE_SIZE
        self.client: Any = None  # aiobotocore's SQS client, kept for the notifier's lifetime
        self._stack = contextlib.AsyncExitStack()
        self._limits_stale = False

    def wants(self, event_type: str) -> bool:
        return self.config.wants(event_type)

    async def start(self) -> None:
        """Open the client and check the queue: it must exist; read its real limits."""
        import aioboto3  # heavy: imported only when an SQS destination is configured
        from aiobotocore.config import AioConfig

        config = AioConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},  # the core retries
            connect_timeout=min(self.config.timeout_s, 10.0),
            read_timeout=self.config.timeout_s,
            max_pool_connections=max(10, self.config.max_concurrency),
        )
        session = aioboto3.Session(profile_name=self.config.profile)
        self.client = await self._stack.enter_async_context(
            session.client(
                "sqs",
                region_name=self.config.region_name(),
                endpoint_url=self.config.endpoint_url,
                config=config,
            )
        )
        try:
            await self._read_limits()
        except Exception as exc:
            error = client_error(exc)
            if error and error[0] in QUEUE_GONE:
                raise ConfigError(
                    f"SQS queue {self.config.queue_url} does not exist; create it, e.g. with "
                    "`aecflow sqs config --apply`"
                ) from None
            raise

    async def close(self) -> None:
        await self._stack.aclose()
        self.client = None

    async def _read_limits(self) -> None:
        answer = await self.client.get_queue_attributes(
            QueueUrl=self.config.queue_url, AttributeNames=["MaximumMessageSize", "FifoQueue"]
        )
        attributes = answer.get("Attributes", {})
        self.max_message_size = int(attributes.get("MaximumMessageSize", self.max_message_size))
        self.fifo = attributes.get("FifoQueue", "false") == "true"
        self._limits_stale = False

    async def deliver(self, events: Sequence[Event]) -> Mapping[str, DeliveryOutcome]:
        if self.client is None:
            raise RuntimeError("the SQS notifier was not started")
        outcomes: dict[str, DeliveryOutcome] = {}
        messages: list[Message] = []
        for event in events:
            try:
                messages.append(build_message(event, fifo=self.fifo, group_by=self.config.group_by))
            except (TypeError, ValueError) as exc:
                outcomes[event.id] = DeliveryOutcome(
                    DeliveryStatus.REJECTED, f"payload is not JSON: {exc}"
                )
        if self._limits_stale or any(m.size > self.max_message_size for m in messages):
            await self._refresh_limits()  # the queue's limit may have changed either way
        sendable = []
        for message in messages:
            if message.size > self.max_message_size:
                outcomes[message.event_id] = DeliveryOutcome(
                    DeliveryStatus.REJECTED,
                    f"the message is {message.size} bytes; the queue's MaximumMessageSize is "
                    f"{self.max_message_size}",
                )
            else:
                sendable.append(message)
        slots = asyncio.Semaphore(1 if self.fifo else self.config.max_concurrency)
        halted: list[DeliveryOutcome] = []  # why the queue cannot take more this round

        async def send(group: list[Message]) -> dict[str, DeliveryOutcome]:
            async with slots:  # FIFO: one call at a time, so groups keep their order
                if halted:  # not sent: retried with the others (FIFO order is kept too)
                    error = halted[0].error or ""
                    if halted[0].status is DeliveryStatus.RETRY:
                        error = f"not sent: {error} (earlier in this round)"
                    return _all(group, halted[0].status, error)
                result, whole_call_failed = await self._send(group)
                if whole_call_failed and not halted:
                    halted.append(next(iter(result.values())))
                return result

        for result in await asyncio.gather(*map(send, batches(sendable, self.max_message_size))):
            outcomes.update(result)
        return outcomes

    async def _refresh_limits(self) -> None:
        try:
            await self._read_limits()
        except Exception as exc:  # keep the last known limits; the send will tell
            log.warning("SQS %s: could not re-read the queue's limits: %s", self.name, exc)

    async def _send(self, group: list[Message]) -> tuple[dict[str, DeliveryOutcome], bool]:
        """One SendMessageBatch call; also says whether the queue refused the call as a whole
        for a reason that holds for the rest of the round (unreachable, gone, throttled)."""
        entries = [{"Id": str(n), **m.entry} for n, m in enumerate(group)]
        try:
            async with asyncio.timeout(self.config.timeout_s):
                answer = await self.client.send_message_batch(
                    QueueUrl=self.config.queue_url, Entries=entries
                )
        except TimeoutError:
            error = f"no answer within {self.config.timeout_s:g}s"
            return _all(group, DeliveryStatus.RETRY, error), True
        except Exception as exc:
            error = client_error(exc)
            if error is None:  # connection refused, reset, timed out: the queue is unreachable
                return _all(group, DeliveryStatus.RETRY, f"{type(exc).__name__}: {exc}"), True
            code, text = error
            if code in QUEUE_GONE:
                log.error("SQS queue %s is gone: destination disabled", self.config.queue_url)
                return _all(group, DeliveryStatus.DISABLED, f"SQS {code}: {text}"), True
            if code in LIMITS_CHANGED:  # about this call's messages: the others may pass
                self._limits_stale = True
                return _all(group, DeliveryStatus.RETRY, f"SQS {code}: {text}"), False
            return _all(group, DeliveryStatus.RETRY, f"SQS {code}: {text}"), True
        outcomes: dict[str, DeliveryOutcome] = {}
        for ok in answer.get("Successful", []):
            outcomes[group[int(ok["Id"])].event_id] = DeliveryOutcome(DeliveryStatus.DELIVERED)
        for failed in answer.get("Failed", []):
            # SenderFault or not, retry: the core dead-letters it once attempts run out, and a
            # changed queue limit is re-read first.
            self._limits_stale = True
            fault = " (sender fault)" if failed.get("SenderFault") else ""
            outcomes[group[int(failed["Id"])].event_id] = DeliveryOutcome(
                DeliveryStatus.RETRY, f"SQS {failed.get('Code')}: {failed.get('Message')}{fault}"
            )
        return outcomes, False  # an entry SQS did not mention counts as RETRY in the core


def _all(group: list[Message], status: DeliveryStatus, error: str) -> dict[str, DeliveryOutcome]:
    return {m.event_id: DeliveryOutcome(status, error) for m in group}
