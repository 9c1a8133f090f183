"""aecflow storage on S3 and S3-compatible servers.

obstore data plane, server-side encryption, presigned downloads and data-residency checks.
"""

from __future__ import annotations

from aecflow_storage_s3.config import S3StorageConfig
from aecflow_storage_s3.storage import S3Storage

__all__ = ["S3Storage", "S3StorageConfig"]
