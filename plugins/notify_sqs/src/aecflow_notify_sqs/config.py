"""Settings of one SQS destination: a `[[notifiers]]` entry with `backend = "sqs"`."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Literal
from urllib.parse import urlsplit

import pydantic

#: ``https://sqs.<region>.amazonaws.com[.cn]/<account>/<name>`` (also the legacy
#: ``<region>.queue.amazonaws.com`` host).
_AWS_HOST = re.compile(r"^(?:sqs\.)?(?P<region>[a-z0-9-]+)\.(?:queue\.)?amazonaws\.com(?:\.cn)?$")


class SqsConfig(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    #: The queue, as SQS names it: ``https://sqs.<region>.amazonaws.com/<account>/<name>``.
    queue_url: str
    #: AWS region; default: taken from an AWS queue URL, else the standard AWS chain.
    region: str | None = None
    #: For SQS-compatible servers and tests; credentials come from the standard AWS chain.
    endpoint_url: str | None = None
    #: A named profile of the shared AWS config files.
    profile: str | None = None
    #: Event types (or patterns such as ``file.*``) this queue receives; empty = all.
    events: list[str] = []
    #: FIFO queues: ``MessageGroupId`` is the project (order per project) or the file.
    group_by: Literal["project", "file"] = "project"
    #: Events handed over per delivery round; sent as SendMessageBatch calls of up to 10.
    max_batch: int = pydantic.Field(100, ge=1, le=1000)
    #: SendMessageBatch calls in flight at once (a FIFO queue always gets one at a time).
    max_concurrency: int = pydantic.Field(4, ge=1, le=64)
    #: Deadline of one SQS call.
    timeout_s: float = pydantic.Field(15.0, gt=0, le=300)

    @pydantic.field_validator("queue_url")
    @classmethod
    def _queue_url(cls, value: str) -> str:
        parts = urlsplit(value)
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme not in ("http", "https") or not parts.hostname or len(segments) != 2:
            raise ValueError("must look like https://sqs.<region>.amazonaws.com/<account>/<name>")
        return value

    @property
    def queue_name(self) -> str:
        return urlsplit(self.queue_url).path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def account(self) -> str:
        return next(s for s in urlsplit(self.queue_url).path.split("/") if s)

    def region_name(self) -> str | None:
        """The configured region, else the one an AWS queue URL names, else ``None``."""
        if self.region:
            return self.region
        match = _AWS_HOST.match(urlsplit(self.queue_url).hostname or "")
        return match["region"] if match else None

    def wants(self, event_type: str) -> bool:
        return not self.events or any(fnmatchcase(event_type, p) for p in self.events)
