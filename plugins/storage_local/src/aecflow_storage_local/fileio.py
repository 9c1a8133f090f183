"""Blocking filesystem work for the local backend; every function here runs in a worker thread.

Keeping all syscalls in one module makes the rule easy to check: ``storage.py`` never touches
the disk on the event loop, and every ``OSError`` leaves this module already mapped to an
:mod:`aecflow.errors` storage error.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from aecflow.errors import (
    ObjectNotFound,
    StorageAccessDenied,
    StorageError,
    StorageInvalid,
    StorageUnavailable,
)
from aecflow.storage import ObjectInfo
from aecflow_storage_local.keys import is_inside, is_valid_segment

#: How often ``commit`` retries when a concurrent ``delete`` removed the parent directory
#: between creating it and renaming into it.
_PUBLISH_ATTEMPTS = 5


# -- errors --------------------------------------------------------------------------------


def map_os_error(exc: OSError, key: str, *, reading: bool) -> StorageError:
    """Translate ``exc`` into the storage error a caller can act on.

    Reads treat a missing path as a missing object. For writes a missing path means the root
    itself vanished (an outage), and a name clash with a directory is a bad key.
    """
    code = exc.errno
    reason = f"[{errno.errorcode.get(code or 0, code)}] {exc.strerror or exc}"
    what = f"key {key!r}" if key else "the storage root"
    if reading and code in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        return ObjectNotFound(f"object {key!r} not found")
    if code in (errno.EACCES, errno.EPERM):
        return StorageAccessDenied(f"local storage was denied access to {what}: {reason}")
    if code == errno.ENAMETOOLONG:
        return StorageInvalid(f"storage {what} is too long for the filesystem")
    if not reading and code in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY):
        return StorageInvalid(f"storage {what} clashes with an existing object: {reason}")
    return StorageUnavailable(f"local storage failed on {what}: {reason}")


@contextmanager
def os_errors(key: str, *, reading: bool) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise map_os_error(exc, key, reading=reading) from exc


# -- small helpers -------------------------------------------------------------------------


def write_fully(fd: int, data: bytes | bytearray | memoryview) -> None:
    """``os.write`` may write less than asked; loop until everything is on its way to disk."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable; tolerated where unsupported."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def remove_empty_parents(directory: Path, objects_dir: Path) -> None:
    """Remove ``directory`` and its ancestors while empty, stopping at ``objects_dir``."""
    while directory != objects_dir and objects_dir in directory.parents:
        try:
            os.rmdir(directory)
        except OSError:
            return  # not empty (or already gone, or busy): leave it
        directory = directory.parent


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


# -- writing -------------------------------------------------------------------------------


class AtomicWriter:
    """Writes one object: a temp file in ``tmp/``, hashed as written, renamed into place.

    Each method runs in a worker thread and holds a lock, so ``abort`` (scheduled when the
    put fails or is cancelled) waits for a write still running in another thread instead of
    closing its file descriptor under it.
    """

    def __init__(
        self,
        *,
        key: str,
        final_path: Path,
        objects_dir: Path,
        real_objects_dir: str,
        tmp_dir: Path,
        fsync: bool,
    ) -> None:
        self._key = key
        self._final = final_path
        self._objects_dir = objects_dir
        self._real_objects_dir = real_objects_dir
        self._tmp_dir = tmp_dir
        self._fsync = fsync
        self._lock = threading.Lock()
        self._hash = hashlib.sha256()
        self._size = 0
        self._fd: int | None = None
        self._tmp_path: Path | None = None
        self._published: Path | None = None
        self._aborted = False

    def open(self, size_hint: int | None) -> None:
        with self._lock, os_errors(self._key, reading=False):
            if self._aborted:
                raise StorageUnavailable(f"put of {self._key!r} was aborted")
            if size_hint:
                self._check_free_space(size_hint)
            path = self._tmp_dir / f"{uuid.uuid4().hex}.part"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            self._tmp_path = path

    def append(self, path: Path, start: int, length: int, block_size: int) -> None:
        """Copy ``length`` bytes of the file at ``path`` from ``start`` onto the end (joining
        the parts of an upload session); a file that is shorter is an error."""
        with self._lock, os_errors(self._key, reading=False):
            fd = self._ensure_live()
            source = os.open(path, os.O_RDONLY)
            try:
                position, stop = start, start + length
                while position < stop:
                    block = os.pread(source, min(block_size, stop - position), position)
                    if not block:
                        raise StorageInvalid(f"a part of {self._key!r} is shorter than recorded")
                    write_fully(fd, block)
                    self._hash.update(block)
                    self._size += len(block)
                    position += len(block)
            finally:
                os.close(source)

    def write(self, block: bytes | bytearray) -> None:
        with self._lock, os_errors(self._key, reading=False):
            fd = self._ensure_live()
            write_fully(fd, block)
            self._hash.update(block)  # releases the GIL for large blocks
            self._size += len(block)

    def commit(self) -> tuple[int, str]:
        """fsync, rename into place, fsync the directories; returns (size, sha256 hex)."""
        with self._lock, os_errors(self._key, reading=False):
            fd = self._ensure_live()
            if self._fsync:
                os.fsync(fd)
            self._fd = None
            os.close(fd)
            changed = self._publish()
            if self._fsync:
                for directory in dict.fromkeys([self._final.parent, *changed]):
                    fsync_dir(directory)
            return self._size, self._hash.hexdigest()

    def abort(self) -> None:
        """Remove every trace of this put: the temp file, or the object if already renamed."""
        with self._lock:
            self._aborted = True
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
            if self._tmp_path is not None:
                self._tmp_path.unlink(missing_ok=True)
                self._tmp_path = None
            if self._published is not None:
                self._published.unlink(missing_ok=True)
                remove_empty_parents(self._published.parent, self._objects_dir)
                self._published = None

    # -- internals --

    def _ensure_live(self) -> int:
        if self._aborted or self._fd is None:
            raise StorageUnavailable(f"put of {self._key!r} was aborted")
        return self._fd

    def _check_free_space(self, size_hint: int) -> None:
        """Fail before streaming gigabytes that cannot fit; the real limit is ENOSPC."""
        vfs = os.statvfs(self._tmp_dir)
        if size_hint > vfs.f_bavail * vfs.f_frsize:
            raise OSError(errno.ENOSPC, "not enough free space for the announced size")

    def _make_parents(self) -> list[Path]:
        """Create the key's missing directories; returns the directories that gained one."""
        changed: list[Path] = []
        current = self._objects_dir
        for part in self._final.relative_to(self._objects_dir).parts[:-1]:
            if current != self._objects_dir:
                # Before creating anything inside it: a symlinked directory must not let us
                # create directories outside the root.
                check_inside(self._key, current, self._real_objects_dir)
            child = current / part
            try:
                os.mkdir(child)
                changed.append(current)
            except FileExistsError:
                pass  # already there, or a file (then the rename reports ENOTDIR)
            current = child
        return changed

    def _publish(self) -> list[Path]:
        assert self._tmp_path is not None
        changed: list[Path] = []
        for attempt in range(_PUBLISH_ATTEMPTS):
            changed += self._make_parents()
            check_inside(self._key, self._final, self._real_objects_dir)
            try:
                os.replace(self._tmp_path, self._final)
            except FileNotFoundError:
                if attempt + 1 == _PUBLISH_ATTEMPTS or not self._tmp_path.exists():
                    raise
                continue  # a concurrent delete removed the now-empty parent: recreate it
            break
        self._published, self._tmp_path = self._final, None
        return changed


class PartWriter:
    """Writes one attempt at one part of an upload session into a file of its own.

    No other writer ever opens that file, and completion copies the attempts the core
    recorded into a fresh object: a slow or superseded attempt can only ever change its own
    file, never another attempt's bytes or a published object. Hashed as it is written.
    """

    def __init__(self, path: Path, legacy: Path, key: str, fsync: bool) -> None:
        self._path = path
        self._legacy = legacy
        self._key = key
        self._fsync = fsync
        self._fd: int | None = None
        self.size = 0
        self.hash = hashlib.sha256()

    def open(self) -> None:
        """Create the attempt's file in the session's directory, which completion and abort
        remove: then the session is gone and this attempt has nowhere to go."""
        with os_errors(self._key, reading=False):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            try:
                self._fd = os.open(self._path, flags, 0o644)
            except FileNotFoundError:
                if not self._legacy.exists():  # a session opened before part directories
                    raise ObjectNotFound(f"the upload session of {self._key!r} is gone") from None
                self._path.parent.mkdir(exist_ok=True)
                self._fd = os.open(self._path, flags, 0o644)

    def write(self, block: bytes | bytearray) -> None:
        assert self._fd is not None
        with os_errors(self._key, reading=False):
            write_fully(self._fd, block)
            self.size += len(block)
        self.hash.update(block)

    def finish(self) -> None:
        """Make the attempt durable before the core records it as received."""
        assert self._fd is not None
        with os_errors(self._key, reading=False):
            if self._fsync:
                os.fsync(self._fd)
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def remove(self) -> None:
        """Close and delete the attempt (it failed, or was cancelled)."""
        self.close()
        self._path.unlink(missing_ok=True)


def remove_session(directory: Path, legacy: Path) -> None:
    """Delete an upload session's attempts and its directory; missing ones are fine."""
    with os_errors("", reading=False):
        legacy.unlink(missing_ok=True)
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return
        for entry in entries:
            Path(entry.path).unlink(missing_ok=True)
        with suppress(FileNotFoundError, OSError):
            os.rmdir(directory)  # an attempt created meanwhile is discarded by the core


# -- reading -------------------------------------------------------------------------------


class Reader:
    """An open object: ``open`` once, then ``read`` at offsets, then ``close``.

    ``storage.open`` closes it only after the last read submitted to a thread has finished,
    so a cancelled download never closes a descriptor that a thread is still reading.
    """

    def __init__(self, key: str, path: Path, real_objects_dir: str) -> None:
        self._key = key
        self._path = path
        self._real_objects_dir = real_objects_dir
        self._fd: int | None = None

    def open(self) -> int:
        """Open the object and return its size."""
        with os_errors(self._key, reading=True):
            check_inside(self._key, self._path, self._real_objects_dir)
            # O_NONBLOCK: a FIFO planted under objects/ must not hang a worker thread forever.
            fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK)
            self._fd = fd
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ObjectNotFound(f"object {self._key!r} not found")
            return st.st_size

    def read(self, length: int, offset: int) -> bytes:
        with os_errors(self._key, reading=True):
            if self._fd is None:
                raise StorageUnavailable(f"read of {self._key!r} after close")
            return os.pread(self._fd, length, offset)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def check_inside(key: str, path: Path, real_objects_dir: str) -> None:
    """Refuse a key whose path leaves the objects directory through a symlink."""
    if not is_inside(real_objects_dir, path):
        raise StorageInvalid(f"storage key {key!r} resolves outside the storage root")


def stat_object(key: str, path: Path, real_objects_dir: str) -> ObjectInfo:
    with os_errors(key, reading=True):
        check_inside(key, path, real_objects_dir)
        st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ObjectNotFound(f"object {key!r} not found")
    return ObjectInfo(key=key, size=st.st_size, last_modified=_utc(st.st_mtime))


def existing_object(key: str, path: Path, real_objects_dir: str) -> Path:
    stat_object(key, path, real_objects_dir)
    return path


# -- deleting ------------------------------------------------------------------------------


def delete_object(
    key: str, path: Path, objects_dir: Path, real_objects_dir: str, fsync: bool
) -> None:
    """Unlink ``key`` if it exists, then drop directories it leaves empty."""
    with os_errors(key, reading=False):
        check_inside(key, path, real_objects_dir)
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                return  # a directory is a key prefix, not an object
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        if fsync:
            # A concurrent delete may have pruned the directory: the entry went with it.
            with suppress(FileNotFoundError):
                fsync_dir(path.parent)
    remove_empty_parents(path.parent, objects_dir)


# -- listing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    is_dir: bool
    size: int = 0
    mtime: float = 0.0

    @property
    def sort_key(self) -> str:
        # A directory sorts as "name/", so a depth-first walk yields keys in string order:
        # "a-c" < "a/b" < "a0" exactly as sorting the full keys would.
        return self.name + "/" if self.is_dir else self.name

    def info(self, key: str) -> ObjectInfo:
        return ObjectInfo(key=key, size=self.size, last_modified=_utc(self.mtime))


def scan_dir(directory: Path, name_prefix: str, prefix: str, real_objects_dir: str) -> list[Entry]:
    """Regular files and directories in ``directory`` whose names start with ``name_prefix``.

    Symlinks, special files and names that are not valid key segments are skipped: they are
    never objects this backend wrote.
    """
    entries: list[Entry] = []
    with os_errors(prefix, reading=False):
        if os.path.realpath(directory) != real_objects_dir and not is_inside(
            real_objects_dir, directory
        ):
            return entries
        try:
            iterator = os.scandir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return entries
        with iterator:
            for entry in iterator:
                if not entry.name.startswith(name_prefix) or not is_valid_segment(entry.name):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        entries.append(Entry(entry.name, True))
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        entries.append(Entry(entry.name, False, st.st_size, st.st_mtime))
                except FileNotFoundError:
                    continue  # deleted while we looked
    entries.sort(key=lambda e: e.sort_key)
    return entries


# -- health --------------------------------------------------------------------------------


def remove_stale_temp(tmp_dir: Path, older_than_s: float, now: float) -> int:
    """Delete temp files that a crashed process left behind; returns how many went.

    Only old files go: another process sharing this root may be writing a fresh one.
    """
    removed = 0
    with os_errors("", reading=False), os.scandir(tmp_dir) as iterator:
        for entry in iterator:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if now - entry.stat(follow_symlinks=False).st_mtime > older_than_s:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
    return removed


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on ``directory``'s filesystem."""
    with os_errors("", reading=False):
        vfs = os.statvfs(directory)
    return vfs.f_bavail * vfs.f_frsize


def make_dirs(*directories: Path) -> None:
    with os_errors("", reading=False):
        for directory in directories:
            directory.mkdir(parents=True, exist_ok=True)


def probe_writable(objects_dir: Path, tmp_dir: Path) -> None:
    """Create, write, fsync and remove a file in ``tmp/``: what every put needs to do.

    Missing directories are reported, not recreated: if the volume holding the root is not
    mounted, recreating them would quietly fill the wrong disk.
    """
    with os_errors("", reading=False):
        if not stat.S_ISDIR(os.stat(objects_dir).st_mode):
            raise OSError(errno.ENOTDIR, "objects is not a directory")
        if not os.access(objects_dir, os.W_OK | os.X_OK):
            raise OSError(errno.EACCES, "objects directory is not writable")
        probe = tmp_dir / f"check-{uuid.uuid4().hex}.part"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            write_fully(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
