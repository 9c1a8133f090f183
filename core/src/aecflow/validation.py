"""Validation of what users name: projects, filenames and metadata.

Filenames are only ever stored as data (storage keys are ``{project}/{file_id}``), but a name
that could be mistaken for a path, hide characters, or break a header is refused outright so
that no later consumer (a download's Content-Disposition, a shell script) trips over it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from aecflow.errors import InvalidInput

#: Used with ``fullmatch``: with ``match``, ``$`` lets a trailing newline through.
PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
METADATA_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_FILENAME_BYTES = 255
MAX_METADATA_ENTRIES = 50
MAX_METADATA_VALUE = 1024


def project_name(value: Any) -> str:
    if not isinstance(value, str) or not PROJECT_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid project name {_show(value)}: use 1-64 lower-case letters, digits, '.', "
            "'_' or '-', starting with a letter or digit",
            code="invalid_project",
        )
    return value


def _has_control(text: str) -> bool:
    """Control, format and separator characters, and lone surrogates ("Cs": "\\udc00" from a
    JSON escape or a non-UTF-8 name on disk), which no database or response can encode."""
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(value: Any) -> Any:
    """``value`` (a string or JSON data) with lone surrogates made U+FFFD.

    They are refused on every write, but a row an older version stored (SQLite) or a
    processor's error can still hold them, and no UTF-8 response, header or database can."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_surrogates(item) for item in value]
    return value


def encodable(value: str, what: str, code: str) -> str:
    """``value`` unchanged, or ``InvalidInput`` when it holds a lone surrogate.

    Said apart from other control characters because the cause is usually a file name in bytes
    that are not UTF-8 (Python reads those as surrogates); the client checks it before sending,
    since such a string cannot even be put in a request."""
    if _SURROGATE.search(value):
        raise InvalidInput(
            f"{what} {_show(value)} is not valid Unicode: it holds a lone surrogate, as a name "
            "in bytes that are not UTF-8 does; rename it or give a UTF-8 name",
            code=code,
        )
    return value


def filename(value: Any) -> str:
    """Return the NFC-normalised filename or raise ``InvalidInput`` saying what is wrong."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("a filename is required", code="invalid_filename")
    encodable(value, "filename", "invalid_filename")
    name = unicodedata.normalize("NFC", value)
    problem = None
    if _has_control(name):
        problem = "contains control characters"
    elif "/" in name or "\\" in name:
        problem = "contains a path separator; send the bare file name"
    elif name in (".", "..") or name != name.strip():
        problem = "is not a file name"
    elif len(name.encode()) > MAX_FILENAME_BYTES:
        problem = f"is longer than {MAX_FILENAME_BYTES} bytes"
    if problem:
        raise InvalidInput(f"filename {_show(value)} {problem}", code="invalid_filename")
    return name


def metadata(value: Any) -> dict[str, str]:
    """User metadata must be a flat mapping of short string keys to string values."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(
            "metadata must be an object of string keys to string values", code="invalid_metadata"
        )
    if len(value) > MAX_METADATA_ENTRIES:
        raise InvalidInput(
            f"at most {MAX_METADATA_ENTRIES} metadata entries are allowed", code="invalid_metadata"
        )
    clean: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not METADATA_KEY_RE.fullmatch(key):
            raise InvalidInput(
                f"metadata key {_show(key)} is invalid: use 1-64 lower-case letters, digits, "
                "'_', '.' or '-'",
                code="invalid_metadata",
            )
        if not isinstance(item, str):
            raise InvalidInput(
                f"metadata value for {key!r} must be a string, not {type(item).__name__}",
                code="invalid_metadata",
            )
        encodable(item, f"metadata value for {key!r}", "invalid_metadata")
        if len(item) > MAX_METADATA_VALUE or _has_control(item):
            raise InvalidInput(
                f"metadata value for {key!r} is too long or has control characters",
                code="invalid_metadata",
            )
        clean[key] = item
    return clean


def sha256_hex(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput("a SHA-256 must be 64 hexadecimal characters", code="invalid_checksum")
    text = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise InvalidInput("a SHA-256 must be 64 hexadecimal characters", code="invalid_checksum")
    return text


_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;[\x20-\x7e]*)?")


def content_type(value: Any) -> str | None:
    """A media type that can be sent back as a ``Content-Type`` header, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 255 or not _MEDIA_TYPE.fullmatch(value):
        raise InvalidInput(
            f"content_type must be a media type like application/octet-stream, got {_show(value)}",
            code="invalid_content_type",
        )
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
