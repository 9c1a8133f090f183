"""Object keys: which keys are allowed and how they map to S3 keys under the prefix.

obstore refuses some keys (empty, ``.`` and ``..`` segments, control characters) and quietly
drops a leading or trailing ``/``, while the control-plane client (aioboto3) sends keys as they
are. A key the two would treat differently could be written by one and not found by the other,
so such keys are refused here, before any request, with the core's ``StorageInvalid``.
"""

from __future__ import annotations

from aecflow.errors import StorageInvalid

#: S3's limit is 1024 bytes for the whole key; leave room for the configured prefix.
MAX_KEY_BYTES = 900


def _problem(text: str) -> str | None:
    if not isinstance(text, str) or not text:
        return "it is empty"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        return "control characters are not allowed"
    if text.startswith("/") or text.endswith("/"):
        return "it must not start or end with '/'"
    if any(segment in ("", ".", "..") for segment in text.split("/")):
        return "empty, '.' and '..' segments are not allowed"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if len(text.encode("utf-8")) > MAX_KEY_BYTES:
        return f"it is longer than {MAX_KEY_BYTES} bytes"
    return None


def check_key(key: str) -> str:
    """``key`` itself when it is a valid object key; ``StorageInvalid`` otherwise."""
    problem = _problem(key)
    if problem:
        raise StorageInvalid(f"invalid storage key {key!r}: {problem}")
    return key


def normalize_prefix(prefix: str) -> str:
    """The configured prefix without surrounding slashes; ``ValueError`` if it is unusable."""
    prefix = prefix.strip("/")
    if not prefix:
        return ""
    problem = _problem(prefix)
    if problem:
        raise ValueError(f"invalid prefix {prefix!r}: {problem}")
    return prefix


def full_key(prefix: str, key: str) -> str:
    """The S3 key of ``key``: ``prefix/key``, or ``key`` when there is no prefix."""
    return f"{prefix}/{key}" if prefix else key


def list_scope(prefix: str) -> tuple[str | None, str]:
    """Where to list for a string ``prefix``: (the directory obstore lists, the filter).

    obstore lists whole path segments (``a/b`` does not match ``a/bc``), while the storage
    contract matches string prefixes, so the parent directory is listed and filtered.
    """
    if not prefix:
        return None, ""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in prefix):
        raise StorageInvalid(f"invalid list prefix {prefix!r}")
    directory, _, _ = prefix.rpartition("/")
    if directory:
        check_key(directory)
    return directory or None, prefix
