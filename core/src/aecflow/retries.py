"""Retry policy: backoff for long retries, short retries of database work across a blip.

Long retries (minutes to days) are rows with a later ``available_at`` (jobs, outbox), spaced
by :func:`backoff`. Short retries of database work (a restart, a dropped connection) use
stamina; longer outages are left to the caller's loop, and leases keep the work safe.
stamina's retry hooks are set explicitly: its default hooks would log the call's arguments.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from typing import Any

import stamina
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

log = logging.getLogger(__name__)


def _log_retry(details: RetryDetails) -> None:
    log.warning(
        "retrying %s (retry %d in %.2fs) after %s",
        details.name,
        details.retry_num,
        details.wait_for,
        type(details.caused_by).__name__,
    )


set_on_retry_hooks([_log_retry])


def is_transient(exc: Exception) -> bool:
    """Connection-level failures that a reconnect may cure; never SQL or data errors."""
    # SQLAlchemy is imported here: plugins use this module's policy while the CLI loads them
    # for its commands, which must not cost SQLAlchemy's import (half a second)
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa.exc.OperationalError | sa.exc.InterfaceError
        )
    return isinstance(exc, ConnectionError | OSError | TimeoutError)


def db_retries(timeout_s: float = 30.0) -> Any:
    """``async for attempt in db_retries(): with attempt: ...``"""
    return stamina.retry_context(
        on=is_transient, attempts=10, timeout=timeout_s, wait_initial=0.1, wait_max=5.0
    )


def backoff(attempt: int, base_s: float, max_s: float) -> dt.timedelta:
    """Exponential backoff with jitter: half fixed (so waits grow), half random (so many
    retries of the same outage spread apart)."""
    cap = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return dt.timedelta(seconds=random.uniform(cap / 2, cap))
