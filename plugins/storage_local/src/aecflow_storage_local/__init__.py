"""aecflow storage on local disk: atomic, fsynced, streamed, with signed download URLs."""

from __future__ import annotations

from aecflow_storage_local.config import LocalStorageConfig
from aecflow_storage_local.storage import LocalStorage

__all__ = ["LocalStorage", "LocalStorageConfig"]
