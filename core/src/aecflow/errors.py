"""Errors that callers can act on.

Every error the core raises on purpose carries a stable snake_case ``code`` (the same code the
HTTP host puts in ``{"error": {"code": ...}}``) and an ``exit_code`` for the CLI, so scripts
never have to parse messages.
"""

from __future__ import annotations


class AecflowError(Exception):
    """Base class: a problem with a stable code, a status for HTTP and an exit code for the CLI."""

    code = "aecflow_error"
    http_status = 500
    exit_code = 1

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(AecflowError):
    """The caller sent something we refuse (bad name, empty file, malformed metadata)."""

    code = "invalid_input"
    http_status = 400
    exit_code = 2


class NotFound(AecflowError):
    code = "not_found"
    http_status = 404
    exit_code = 3


class Conflict(AecflowError):
    """The request contradicts the current state (e.g. restoring a purged file)."""

    code = "conflict"
    http_status = 409
    exit_code = 4


class TooLarge(InvalidInput):
    code = "too_large"
    http_status = 413


class ConfigError(AecflowError):
    """The configuration is invalid; the message names the section, plugin and key."""

    code = "config_error"
    exit_code = 78  # EX_CONFIG


class PluginError(AecflowError):
    """A plugin could not be loaded or registered, or two plugins claim the same name."""

    code = "plugin_error"
    exit_code = 78


class StorageError(AecflowError):
    """Base for errors a storage backend maps its own failures to."""

    code = "storage_error"
    http_status = 502


class ObjectNotFound(StorageError, NotFound):
    code = "object_not_found"
    http_status = 404


class StorageAccessDenied(StorageError):
    code = "storage_access_denied"
    http_status = 403


class StorageUnavailable(StorageError):
    """The backend cannot be reached or answered 5xx/429: a health failure for the breaker."""

    code = "storage_unavailable"
    http_status = 503
    exit_code = 69  # EX_UNAVAILABLE


class StorageInvalid(StorageError):
    """The backend refused the request as malformed (bad key, bad range)."""

    code = "storage_invalid"
    http_status = 400


class InsufficientStorage(StorageError):
    """Writing would take the backend's free space below its reserve: refused, not a health
    failure (reads and deletes still work, and deleting is how an operator recovers)."""

    code = "insufficient_storage"
    http_status = 507
    exit_code = 73  # EX_CANTCREAT
