"""The statuses each table's rows move through: one ``StrEnum`` per table family.

They are ``str`` subclasses, so they compare equal to the plain strings stored in the database
and appear in JSON as those strings (the names scripts rely on; see DESIGN.md).
"""

from __future__ import annotations

from enum import StrEnum


class FileStatus(StrEnum):
    """``stored`` (bytes and row committed, job queued), ``processing``, then the outcome."""

    STORED = "stored"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class UploadStatus(StrEnum):
    OPEN = "open"
    COMPLETING = "completing"
    COMPLETED = "completed"
    ABORTED = "aborted"
    EXPIRED = "expired"
