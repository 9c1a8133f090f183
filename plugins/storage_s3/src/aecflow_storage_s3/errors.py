"""Map obstore and botocore failures to the core's storage errors.

The host turns those into 404/403/503/400 and the circuit breaker counts only
``StorageUnavailable`` as a health failure, so the mapping decides both what a client sees and
whether the backend is considered down:

- ``ObjectNotFound``: a read found no object (404).
- ``StorageAccessDenied``: 401/403, or no credentials at all.
- ``StorageInvalid``: any other 4xx, a bad range, a refused key: S3 answered, so it is up.
- ``StorageUnavailable``: connection errors, timeouts, 5xx, 429 and throttling, and a write or
  bucket call answered with 404 (the bucket itself is gone: nothing the caller can fix).

Messages keep the first line of the original error (operation and URL, never credentials).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import botocore.exceptions
import obstore.exceptions as obs

from aecflow.errors import (
    AecflowError,
    ObjectNotFound,
    StorageAccessDenied,
    StorageError,
    StorageInvalid,
    StorageUnavailable,
)

_STATUS_RE = re.compile(r"(?:status code|status):? (\d{3})")
_THROTTLING = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)
_MAX_MESSAGE = 300
_NO_CREDENTIALS = (
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line[:_MAX_MESSAGE]


def _by_status(status: int | None, *, missing_is_down: bool) -> type[StorageError]:
    if status is None or status >= 500 or status == 429:
        return StorageUnavailable
    if status in (401, 403):
        return StorageAccessDenied
    if status == 404:
        return StorageUnavailable if missing_is_down else ObjectNotFound
    return StorageInvalid


def map_error(exc: BaseException, what: str, *, missing_is_down: bool = False) -> StorageError:
    """The storage error for ``exc``, raised while doing ``what`` (e.g. "put 'p/k'").

    ``missing_is_down``: a 404 means the bucket is missing (writes, bucket checks), which is an
    outage of the backend, not a missing object.
    """
    if isinstance(exc, StorageError):
        return exc
    message = f"S3 {what} failed: {_first_line(exc)}"
    kind: type[StorageError]
    if isinstance(exc, FileNotFoundError | obs.NotFoundError):
        kind = StorageUnavailable if missing_is_down else ObjectNotFound
        if missing_is_down:
            message = f"S3 {what} failed: the bucket does not exist ({_first_line(exc)})"
    elif isinstance(exc, obs.PermissionDeniedError | obs.UnauthenticatedError):
        kind = StorageAccessDenied
    elif isinstance(
        exc,
        obs.InvalidPathError
        | obs.NotSupportedError
        | obs.AlreadyExistsError
        | obs.PreconditionError
        | obs.NotModifiedError
        | obs.UnknownConfigurationKeyError
        | ValueError,
    ):
        kind = StorageInvalid
    elif isinstance(exc, obs.GenericError):
        match = _STATUS_RE.search(str(exc))
        status = int(match.group(1)) if match else None
        kind = _by_status(status, missing_is_down=missing_is_down)
    elif isinstance(exc, botocore.exceptions.ClientError):
        kind = _client_error(exc, missing_is_down=missing_is_down)
    elif isinstance(exc, _NO_CREDENTIALS):
        kind = StorageAccessDenied
        message = f"S3 {what} failed: no usable AWS credentials were found ({_first_line(exc)})"
    elif isinstance(exc, botocore.exceptions.ParamValidationError):
        kind = StorageInvalid
    else:  # connection errors, timeouts, anything unknown: treat the backend as unhealthy
        kind = StorageUnavailable
    return kind(message)


def _client_error(
    exc: botocore.exceptions.ClientError, *, missing_is_down: bool
) -> type[StorageError]:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _THROTTLING:
        return StorageUnavailable
    if code in ("NoSuchKey", "NoSuchVersion", "NoSuchUpload"):
        return ObjectNotFound
    if code == "NoSuchBucket":
        return StorageUnavailable
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        return StorageAccessDenied
    if code == "InvalidRange":
        return StorageInvalid
    return _by_status(status if isinstance(status, int) else None, missing_is_down=missing_is_down)


@contextlib.contextmanager
def translated(what: str, *, missing_is_down: bool = False) -> Iterator[None]:
    """Re-raise any backend failure inside the block as the core's storage error."""
    try:
        yield
    except AecflowError:
        raise
    except Exception as exc:
        raise map_error(exc, what, missing_is_down=missing_is_down) from exc


def is_retryable(exc: Exception) -> bool:
    """Whether a whole operation that failed with ``exc`` may succeed if tried again."""
    return isinstance(exc, StorageUnavailable)
