"""Signed download URLs: the HMAC key on disk, and signing/verifying (key, expires, filename).

Local disk has no presigned URLs, so the backend signs its own and the host checks them before
serving bytes. The key is generated once per root and shared by every process using that root,
so a URL signed by one host process verifies in another.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import uuid
from pathlib import Path

from aecflow.errors import ConfigError
from aecflow_storage_local.fileio import fsync_dir, write_fully

log = logging.getLogger(__name__)

KEY_BYTES = 32
#: Bumped if the signed message ever changes, so old and new URLs can never be confused.
SIGNATURE_VERSION = "aecflow-local-download-v1"


def signed_message(key: str, expires: int, filename: str | None) -> bytes:
    """The exact bytes that are signed: unambiguous whatever the key or filename contain."""
    return json.dumps([SIGNATURE_VERSION, key, expires, filename], separators=(",", ":")).encode()


def sign(secret: bytes, key: str, expires: int, filename: str | None) -> str:
    return hmac.new(secret, signed_message(key, expires, filename), hashlib.sha256).hexdigest()


def signature_matches(
    secret: bytes, key: str, expires: int, filename: str | None, signature: str
) -> bool:
    """Constant-time comparison, so a forger learns nothing from response times."""
    if not isinstance(signature, str) or not signature.isascii():
        return False
    return hmac.compare_digest(sign(secret, key, expires, filename), signature)


def _read_key(path: Path) -> bytes:
    with open(path, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        secret = handle.read(KEY_BYTES + 1)
    if len(secret) != KEY_BYTES:
        raise ConfigError(
            f"storage signing key {path} holds {len(secret)} bytes, expected {KEY_BYTES}; "
            "delete it to generate a new one (download URLs already issued stop working)"
        )
    if stat.S_IMODE(mode) & 0o077:
        log.warning("storage signing key %s is readable by other users; chmod 600 it", path)
    return secret


def load_or_create_key(path: Path, scratch_dir: Path) -> bytes:
    """Read the key at ``path``, creating it first if it does not exist.

    Safe when several processes start at once: each writes a complete candidate in
    ``scratch_dir`` and hard-links it into place; ``link`` never replaces an existing file, so
    the first one wins and everybody reads that one back. Nobody can read a half-written key.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    candidate = scratch_dir / f".signing-key.{uuid.uuid4().hex}"
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # exact mode, whatever the umask
            write_fully(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass  # another process won the race; use its key
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            _create_exclusive(path, candidate)  # filesystems without hard links
        else:
            fsync_dir(path.parent)
    finally:
        candidate.unlink(missing_ok=True)
    return _read_key(path)


def _create_exclusive(path: Path, candidate: Path) -> None:
    """Fallback without hard links: O_EXCL still guarantees a single winner."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
        write_fully(fd, candidate.read_bytes())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
