"""Retries of whole operations, for the few that may safely run twice.

obstore already retries each request and each part (``max_retries``, ``retry_timeout_s``), and
the core's circuit breaker stops calls while S3 is down. stamina is used only around
control-plane operations that are idempotent as a whole: the start-up checks, sweeping a
failed upload's multipart uploads, and ``aecflow s3 config --apply``. A streamed ``put`` is
never retried: its chunks cannot be read twice.
"""

from __future__ import annotations

from typing import Any

import stamina

# The core sets stamina's retry hooks once (its defaults would log call arguments, which may
# include keys and URLs); importing it here makes sure that has happened.
from aecflow import retries as _core_retries  # noqa: F401
from aecflow_storage_s3.errors import is_retryable


def whole_operation(*, attempts: int = 4, timeout_s: float = 20.0) -> Any:
    """``async for attempt in whole_operation(): with attempt: ...`` on ``StorageUnavailable``."""
    return stamina.retry_context(
        on=is_retryable,
        attempts=attempts,
        timeout=timeout_s,
        wait_initial=0.2,
        wait_max=2.0,
        wait_jitter=0.2,
    )
