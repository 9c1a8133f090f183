"""Turn object keys into paths without ever leaving the objects directory.

Keys come from the core (``{project}/{file_id}``), but a key is still data: this module refuses
anything that could name a file outside ``objects/`` or that two spellings could alias
(``a//b``, ``a/./b``), before any filesystem call is made.
"""

from __future__ import annotations

import os
from pathlib import Path

from aecflow.errors import StorageInvalid


def _refuse(key: str, why: str) -> StorageInvalid:
    return StorageInvalid(f"invalid storage key {key!r}: {why}")


def _check_chars(key: str) -> None:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(key, "it is not valid UTF-8") from None
    if "\\" in key:
        raise _refuse(key, "backslashes are not allowed")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise _refuse(key, "control characters (including NUL) are not allowed")


def key_segments(key: str) -> list[str]:
    """The ``/``-separated parts of a valid key; raises ``StorageInvalid`` otherwise."""
    if not isinstance(key, str) or not key:
        raise _refuse(key, "it is empty")
    _check_chars(key)
    if key.startswith("/"):
        raise _refuse(key, "absolute keys are not allowed")
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise _refuse(key, "empty, '.' and '..' segments are not allowed")
    return segments


def is_valid_segment(name: str) -> bool:
    """Whether a file name found on disk can be one segment of a key (used when listing)."""
    try:
        return key_segments(name) == [name]
    except StorageInvalid:
        return False


def object_path(objects_dir: Path, key: str) -> Path:
    """Where ``key`` lives under ``objects_dir`` (lexically; symlinks are checked later)."""
    return objects_dir.joinpath(*key_segments(key))


def prefix_start(objects_dir: Path, prefix: str) -> tuple[Path, str]:
    """The directory to scan for ``prefix`` and the name prefix to match inside it.

    ``"proj/ab"`` scans ``objects/proj`` for names starting with ``"ab"``; ``"proj/"`` scans
    ``objects/proj`` entirely; ``""`` scans everything.
    """
    if not prefix:
        return objects_dir, ""
    _check_chars(prefix)
    if prefix.startswith("/"):
        raise StorageInvalid(f"invalid prefix {prefix!r}: absolute prefixes are not allowed")
    directory, _, name = prefix.rpartition("/")
    if not directory:
        return objects_dir, name
    try:
        return objects_dir.joinpath(*key_segments(directory)), name
    except StorageInvalid:
        raise StorageInvalid(
            f"invalid prefix {prefix!r}: empty, '.' and '..' segments are not allowed"
        ) from None


def is_inside(real_objects_dir: str, path: Path) -> bool:
    """Whether ``path`` still lies under the objects directory once symlinks are resolved."""
    real = os.path.realpath(path)
    return real.startswith(real_objects_dir + os.sep)
