"""Behaviour of the local storage backend on a real filesystem (``tmp_path``), no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import hashlib
import importlib.metadata
import os
import random
import shutil
import stat
import subprocess
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import psutil
import pydantic
import pytest

from aecflow.errors import (
    ConfigError,
    InsufficientStorage,
    ObjectNotFound,
    StorageAccessDenied,
    StorageInvalid,
    StorageUnavailable,
)
from aecflow.registry import StorageRegistry
from aecflow.storage import Storage
from aecflow.testing import StorageContract
from aecflow_storage_local import LocalStorage, LocalStorageConfig
from aecflow_storage_local.fileio import map_os_error

KIB = 1024
MIB = 1024 * KIB


# -- helpers -------------------------------------------------------------------------------


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def read_all(storage: LocalStorage, key: str, **kwargs: int | None) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key, **kwargs)])


async def keys(storage: LocalStorage, prefix: str = "") -> list[str]:
    return [info.key async for info in storage.list(prefix)]


def files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def names_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def make(root: Path, **settings: object) -> LocalStorage:
    return LocalStorage(LocalStorageConfig(root=root, **settings))


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    backend = make(tmp_path / "store")
    yield backend
    await backend.close()


def assert_nothing_left(storage: LocalStorage) -> None:
    assert files_under(storage.objects_dir) == []
    assert files_under(storage.tmp_dir) == []


# -- the storage contract (round trips, ranges, missing keys, failed writes, listing) -----


class TestLocalStorageContract(StorageContract):
    """What the core relies on; temporary files and upload sessions' parts are leftovers."""

    @pytest.fixture
    async def storage(self, tmp_path: Path) -> AsyncIterator[LocalStorage]:
        backend = make(tmp_path / "store")
        yield backend
        await backend.close()

    @pytest.fixture
    def storage_leftovers(self, storage: LocalStorage) -> Callable[[], list[str]]:
        return lambda: files_under(storage.tmp_dir) + files_under(storage.uploads_dir)


# -- round trip ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, MIB + 1])
async def test_objects_are_plain_files_and_delete_leaves_no_trace(
    storage: LocalStorage, size: int
) -> None:
    data = random_bytes(size, seed=size)
    await storage.put("project-1/file-abc", chunked(data, MIB), size=size)

    path = await storage.local_path("project-1/file-abc")
    assert path == storage.objects_dir / "project-1" / "file-abc"
    assert path.read_bytes() == data
    assert files_under(storage.tmp_dir) == []

    await storage.delete("project-1/file-abc")

    assert_nothing_left(storage)
    assert storage.objects_dir.is_dir()


async def test_read_chunks_stay_near_chunk_size(tmp_path: Path) -> None:
    backend = make(tmp_path, chunk_size=64 * KIB)
    data = random_bytes(MIB + 3)
    await backend.put("k", chunked(data, 5 * MIB))

    sizes = [len(chunk) async for chunk in backend.open("k")]

    assert sum(sizes) == len(data)
    assert max(sizes) == 64 * KIB
    await backend.close()


# -- ranges --------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 5), (0, -1)])
async def test_malformed_ranges_are_refused(
    storage: LocalStorage, start: int, end: int | None
) -> None:
    await storage.put("r", chunked(b"0123456789", 10))

    with pytest.raises(StorageInvalid):
        storage.open("r", start=start, end=end)


async def test_range_starting_beyond_the_end_is_refused(storage: LocalStorage) -> None:
    await storage.put("r", chunked(b"0123456789", 10))

    with pytest.raises(StorageInvalid):
        await read_all(storage, "r", start=11)


async def test_missing_objects_are_reported(storage: LocalStorage) -> None:
    await storage.put("dir/obj", chunked(b"x", 1))

    for key in ("nope", "dir/nope", "dir", "dir/obj/deeper"):
        with pytest.raises(ObjectNotFound):
            await read_all(storage, key)
        with pytest.raises(ObjectNotFound):
            await storage.stat(key)
        with pytest.raises(ObjectNotFound):
            await storage.local_path(key)


async def test_abandoned_read_closes_its_file(storage: LocalStorage) -> None:
    await storage.put("k", chunked(random_bytes(3 * MIB), MIB))
    process = psutil.Process()
    before = process.num_fds()

    reader = storage.open("k")
    first = await anext(reader)
    await reader.aclose()

    assert len(first) == MIB
    assert process.num_fds() == before


# -- failures ------------------------------------------------------------------------------


async def test_a_put_in_progress_writes_only_temporary_files(storage: LocalStorage) -> None:
    fed = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield random_bytes(MIB)
        fed.set()
        await asyncio.Event().wait()  # the client stops sending
        yield b"never"

    task = asyncio.create_task(storage.put("p/k", stalled()))
    await fed.wait()
    assert files_under(storage.tmp_dir) != []  # the upload really was in progress
    assert files_under(storage.objects_dir) == []
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert_nothing_left(storage)


async def test_put_clashing_with_an_object_fails_cleanly(storage: LocalStorage) -> None:
    await storage.put("a", chunked(b"file", 4))
    await storage.put("d/b", chunked(b"file", 4))

    with pytest.raises(StorageInvalid):
        await storage.put("a/b", chunked(b"under a file", 4))
    with pytest.raises(StorageInvalid):
        await storage.put("d", chunked(b"over a directory", 4))

    assert files_under(storage.tmp_dir) == []
    assert await keys(storage) == ["a", "d/b"]


async def test_put_when_the_root_vanished_is_unavailable(tmp_path: Path) -> None:
    backend = make(tmp_path / "store")
    shutil.rmtree(tmp_path / "store")

    with pytest.raises(StorageUnavailable):
        await backend.put("k", chunked(b"x", 1))
    with pytest.raises(StorageUnavailable):
        await backend.check()
    assert not (tmp_path / "store").exists()  # check() must not recreate a missing volume
    await backend.close()


async def test_closed_storage_is_unavailable(tmp_path: Path) -> None:
    backend = make(tmp_path)
    await backend.close()

    with pytest.raises(StorageUnavailable):
        await backend.stat("k")
    with pytest.raises(StorageUnavailable):
        await backend.put("k", chunked(b"x", 1))
    assert files_under(backend.tmp_dir) == []


# -- keys ----------------------------------------------------------------------------------

BAD_KEYS = [
    "",
    "/etc/passwd",
    "../escape",
    "a/../../escape",
    "a/./b",
    ".",
    "..",
    "a//b",
    "a/",
    "a\\b",
    "..\\escape",
    "a\0b",
    "a\nb",
    "bad\udcffsurrogate",
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_refused_everywhere(
    storage: LocalStorage, tmp_path: Path, key: str
) -> None:
    with pytest.raises(StorageInvalid):
        await storage.put(key, chunked(b"x", 1))
    with pytest.raises(StorageInvalid):
        await read_all(storage, key)
    with pytest.raises(StorageInvalid):
        await storage.stat(key)
    with pytest.raises(StorageInvalid):
        await storage.delete(key)
    with pytest.raises(StorageInvalid):
        await storage.local_path(key)
    with pytest.raises(StorageInvalid):
        await storage.download_url(key, expires=dt.timedelta(minutes=5))
    assert storage.verify_download(key, int(time.time()) + 60, None, "0" * 64) is False

    assert_nothing_left(storage)
    assert names_in(tmp_path) == ["store"]


@pytest.mark.parametrize("prefix", ["/abs", "../", "a/../", "a//", "a\\b", "x\0"])
async def test_bad_prefixes_are_refused(storage: LocalStorage, prefix: str) -> None:
    with pytest.raises(StorageInvalid):
        await keys(storage, prefix)


async def test_symlinks_cannot_lead_outside_the_root(storage: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (storage.objects_dir / "evil").symlink_to(outside, target_is_directory=True)
    (storage.objects_dir / "link").symlink_to(outside / "secret")

    for key in ("evil/planted", "evil/sub/planted"):
        with pytest.raises(StorageInvalid):
            await storage.put(key, chunked(b"x", 1))
    for key in ("evil/secret", "link"):
        with pytest.raises(StorageInvalid):
            await read_all(storage, key)
        with pytest.raises(StorageInvalid):
            await storage.stat(key)
        with pytest.raises(StorageInvalid):
            await storage.local_path(key)
        with pytest.raises(StorageInvalid):
            await storage.delete(key)

    assert names_in(outside) == ["secret"]
    assert await keys(storage) == []
    assert await keys(storage, "evil/") == []
    assert files_under(storage.tmp_dir) == []


async def test_keys_with_unusual_but_valid_characters(storage: LocalStorage) -> None:
    names = ["proj/ä ö ü.ifc", "proj/.hidden", "proj/..dots", "proj/a%2Fb?c#d"]
    for number, key in enumerate(names):
        await storage.put(key, chunked(str(number).encode(), 1))

    assert await keys(storage) == sorted(names)
    for number, key in enumerate(names):
        assert await read_all(storage, key) == str(number).encode()


# -- listing -------------------------------------------------------------------------------


async def test_list_never_shows_temp_files_or_the_signing_key(storage: LocalStorage) -> None:
    await storage.put("done", chunked(b"x", 1))
    (storage.tmp_dir / "stray.part").write_bytes(b"junk")
    fed = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield random_bytes(MIB)
        fed.set()
        await asyncio.Event().wait()
        yield b""

    task = asyncio.create_task(storage.put("in-progress", stalled()))
    await fed.wait()

    assert storage.signing_key_path.exists()
    assert await keys(storage) == ["done"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_list_skips_symlinks_and_special_names(storage: LocalStorage) -> None:
    await storage.put("real", chunked(b"x", 1))
    (storage.objects_dir / "alias").symlink_to(storage.objects_dir / "real")
    (storage.objects_dir / "back\\slash").write_bytes(b"not ours")
    os.mkfifo(storage.objects_dir / "fifo")

    assert await keys(storage) == ["real"]
    with pytest.raises(ObjectNotFound):
        await read_all(storage, "fifo")  # refused, and does not hang on the pipe


# -- delete --------------------------------------------------------------------------------


async def test_delete_is_idempotent_and_prunes_empty_directories(storage: LocalStorage) -> None:
    await storage.put("p/x/1", chunked(b"1", 1))
    await storage.put("p/y", chunked(b"2", 1))

    await storage.delete("never-existed/at/all")
    await storage.delete("p/x/1")
    await storage.delete("p/x/1")

    assert files_under(storage.objects_dir) == ["p", "p/y"]
    await storage.delete("p")  # a prefix, not an object: nothing happens
    assert await keys(storage) == ["p/y"]
    await storage.delete("p/y")
    assert files_under(storage.objects_dir) == []
    assert storage.objects_dir.is_dir()


async def test_concurrent_puts_and_deletes_in_one_directory(storage: LocalStorage) -> None:
    await asyncio.gather(*(storage.put(f"d/old{i}", chunked(b"o", 1)) for i in range(20)))

    await asyncio.gather(
        *(storage.put(f"d/new{i}", chunked(b"n" * i, 3)) for i in range(20)),
        *(storage.delete(f"d/old{i}") for i in range(20)),
    )

    assert await keys(storage) == sorted(f"d/new{i}" for i in range(20))
    assert files_under(storage.tmp_dir) == []


# -- signed URLs ---------------------------------------------------------------------------


def url_parts(url: str) -> tuple[str, str, str | None, str]:
    """(key, expires, filename, signature) the way the host will parse them."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    key = unquote(parts.path.removeprefix("/v1/storage/local/"))
    filename = query["filename"][0] if "filename" in query else None
    return key, query["expires"][0], filename, query["signature"][0]


async def test_signed_url_verifies(storage: LocalStorage) -> None:
    url = await storage.download_url(
        "proj/file 1", expires=dt.timedelta(hours=1), filename="Model (v2) ä+&=.ifc"
    )

    assert url.startswith("/v1/storage/local/proj/file%201?")
    key, expires, filename, signature = url_parts(url)
    assert (key, filename) == ("proj/file 1", "Model (v2) ä+&=.ifc")
    assert storage.verify_download(key, expires, filename, signature) is True
    assert storage.verify_download(key, int(expires), filename, signature) is True


async def test_tampered_or_expired_urls_fail(storage: LocalStorage) -> None:
    url = await storage.download_url("proj/f", expires=dt.timedelta(hours=1), filename="a.ifc")
    key, expires, filename, signature = url_parts(url)
    flipped = ("1" if signature[0] == "0" else "0") + signature[1:]
    at = int(expires)

    assert storage.verify_download(key, expires, "b.ifc", signature) is False
    assert storage.verify_download(key, expires, None, signature) is False
    assert storage.verify_download(key, expires, filename, flipped) is False
    assert storage.verify_download(key, expires, filename, signature.upper()) is False
    assert storage.verify_download(key, expires, filename, "é" * 64) is False
    assert storage.verify_download(key, expires, filename, "") is False
    assert storage.verify_download("proj/g", expires, filename, signature) is False
    assert storage.verify_download(key, at + 1, filename, signature) is False
    assert storage.verify_download(key, f"{at}x", filename, signature) is False
    assert storage.verify_download(key, f"+{at}", filename, signature) is False
    assert storage.verify_download(key, at, filename, signature, now=at) is True
    assert storage.verify_download(key, at, filename, signature, now=at + 1) is False


async def test_url_without_filename(storage: LocalStorage) -> None:
    url = await storage.download_url("k", expires=dt.timedelta(minutes=1))

    key, expires, filename, signature = url_parts(url)
    assert filename is None
    assert storage.verify_download(key, expires, None, signature) is True
    assert storage.verify_download(key, expires, "", signature) is False


async def test_url_expiry_is_clamped(tmp_path: Path) -> None:
    backend = make(tmp_path, max_url_expiry_s=3600)
    before = int(time.time())

    url = await backend.download_url("k", expires=dt.timedelta(days=365))

    after = int(time.time())
    key, expires, filename, signature = url_parts(url)
    assert before + 3600 - 1 <= int(expires) <= after + 3600
    assert backend.verify_download(key, expires, filename, signature) is True
    with pytest.raises(StorageInvalid):
        await backend.download_url("k", expires=dt.timedelta(0))
    await backend.close()


async def test_lowering_the_expiry_limit_shortens_issued_urls(tmp_path: Path) -> None:
    secret = pydantic.SecretStr("s" * 32)
    generous = make(tmp_path / "a", signing_secret=secret, max_url_expiry_s=7 * 86400)
    strict = make(tmp_path / "b", signing_secret=secret, max_url_expiry_s=3600)

    long_url = await generous.download_url("k", expires=dt.timedelta(days=7))
    short_url = await generous.download_url("k", expires=dt.timedelta(minutes=30))

    assert strict.verify_download(*url_parts(long_url)) is False
    assert strict.verify_download(*url_parts(short_url)) is True
    await generous.close()
    await strict.close()


async def test_urls_use_the_configured_base(tmp_path: Path) -> None:
    backend = make(tmp_path, public_base_url="https://files.example.com/dl/")

    url = await backend.download_url("p/k", expires=dt.timedelta(minutes=1))

    assert url.startswith("https://files.example.com/dl/p/k?expires=")
    await backend.close()


# -- signing key ---------------------------------------------------------------------------


async def test_signing_key_is_persisted_private_and_reused(tmp_path: Path) -> None:
    first = make(tmp_path)
    key_file = tmp_path / ".signing-key"
    secret = key_file.read_bytes()

    assert len(secret) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    url = await first.download_url("k", expires=dt.timedelta(minutes=5), filename="f")
    await first.close()

    second = make(tmp_path)

    assert key_file.read_bytes() == secret
    assert second.verify_download(*url_parts(url)) is True
    assert make(tmp_path / "elsewhere").verify_download(*url_parts(url)) is False
    await second.close()


def test_concurrent_start_ups_agree_on_one_key(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    backends: list[LocalStorage] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            backends.append(make(tmp_path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    signer = backends[0]
    url = asyncio.run(signer.download_url("k", expires=dt.timedelta(minutes=5)))
    assert all(b.verify_download(*url_parts(url)) for b in backends)
    assert files_under(tmp_path / "tmp") == []
    for backend in backends:
        asyncio.run(backend.close())


async def test_configured_secret_is_used_instead_of_a_key_file(tmp_path: Path) -> None:
    one = make(tmp_path / "one", signing_secret=pydantic.SecretStr("a" * 32))
    same = make(tmp_path / "same", signing_secret=pydantic.SecretStr("a" * 32))
    other = make(tmp_path / "other", signing_secret=pydantic.SecretStr("b" * 32))

    url = await one.download_url("k", expires=dt.timedelta(minutes=5))

    assert not (tmp_path / "one" / ".signing-key").exists()
    assert same.verify_download(*url_parts(url)) is True
    assert other.verify_download(*url_parts(url)) is False
    for backend in (one, same, other):
        await backend.close()


def test_a_damaged_key_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".signing-key").write_bytes(b"short")

    with pytest.raises(ConfigError, match="signing-key"):
        make(tmp_path)


# -- configuration and start-up ------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"chunksize": MIB},
        {"chunk_size": 1000},
        {"max_url_expiry_s": 0},
        {"signing_secret": "too short"},
    ],
)
def test_invalid_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        LocalStorageConfig.model_validate(settings)


def test_defaults() -> None:
    config = LocalStorageConfig()

    assert config.root == Path("aecflow-data/storage")
    assert config.chunk_size == MIB
    assert config.fsync is True
    assert config.signing_secret is None
    assert config.public_base_url == "/v1/storage/local"
    assert config.max_url_expiry_s == 7 * 24 * 3600


async def test_relative_root_is_fixed_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = LocalStorage(LocalStorageConfig(root=Path("data")))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")

    await backend.put("k", chunked(b"x", 1))

    assert backend.root == tmp_path / "data"
    assert (tmp_path / "data" / "objects" / "k").read_bytes() == b"x"
    await backend.close()


def test_start_up_removes_only_stale_temp_files(tmp_path: Path) -> None:
    make(tmp_path)
    stale = tmp_path / "tmp" / "crashed.part"
    fresh = tmp_path / "tmp" / "in-progress.part"
    stale.write_bytes(b"old")
    fresh.write_bytes(b"new")
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))

    make(tmp_path)

    assert not stale.exists()
    assert fresh.exists()


async def test_check_passes_on_a_writable_root(storage: LocalStorage) -> None:
    await storage.check()

    assert files_under(storage.tmp_dir) == []


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """Make ``directory`` refuse new files: chmod for users, the immutable flag for root."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        try:
            yield
        finally:
            directory.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(directory)]).returncode != 0:
        pytest.skip("root bypasses permissions and the immutable flag is unavailable here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


async def test_an_unwritable_root_is_access_denied(storage: LocalStorage) -> None:
    with unwritable(storage.tmp_dir):
        with pytest.raises(StorageAccessDenied):
            await storage.check()
        with pytest.raises(StorageAccessDenied):
            await storage.put("k", chunked(b"x", 1))
    assert_nothing_left(storage)


@pytest.mark.parametrize(
    ("code", "reading", "expected"),
    [
        (errno.ENOENT, True, ObjectNotFound),
        (errno.ENOTDIR, True, ObjectNotFound),
        (errno.ENOENT, False, StorageUnavailable),
        (errno.EACCES, True, StorageAccessDenied),
        (errno.EPERM, False, StorageAccessDenied),
        (errno.ENOSPC, False, StorageUnavailable),
        (errno.EIO, True, StorageUnavailable),
        (errno.EROFS, False, StorageUnavailable),
        (errno.ENAMETOOLONG, False, StorageInvalid),
        (errno.EISDIR, False, StorageInvalid),
    ],
)
def test_os_errors_map_to_storage_errors(code: int, reading: bool, expected: type) -> None:
    error = map_os_error(OSError(code, os.strerror(code)), "p/k", reading=reading)

    assert type(error) is expected
    assert "p/k" in error.message


async def test_put_refuses_an_announced_size_that_cannot_fit(storage: LocalStorage) -> None:
    vfs = os.statvfs(storage.tmp_dir)
    too_big = vfs.f_blocks * vfs.f_frsize * 2

    with pytest.raises(InsufficientStorage, match="bytes free"):  # 507, not a health failure
        await storage.put("k", chunked(b"x", 1), size=too_big)
    assert_nothing_left(storage)


async def test_too_long_key_segment_is_invalid(storage: LocalStorage) -> None:
    with pytest.raises(StorageInvalid):
        await storage.put("p/" + "x" * 300, chunked(b"x", 1))
    assert files_under(storage.tmp_dir) == []


# -- memory --------------------------------------------------------------------------------


async def test_memory_stays_bounded_for_a_large_put(storage: LocalStorage) -> None:
    """64 MiB fed in 1 MiB chunks: Python allocations and RSS both stay far below that."""
    await storage.put("warm-up", chunked(random_bytes(2 * MIB), MIB))
    process = psutil.Process()
    baseline_rss = process.memory_info().rss
    peak_rss = baseline_rss
    digest = hashlib.sha256()

    async def source() -> AsyncIterator[bytes]:
        nonlocal peak_rss
        for _ in range(64):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            peak_rss = max(peak_rss, process.memory_info().rss)
            yield chunk

    tracemalloc.start()
    try:
        stored = await storage.put("big", source())
        _, peak_traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stored.size == 64 * MIB
    assert stored.sha256 == digest.hexdigest()
    assert peak_traced < 32 * MIB
    assert peak_rss - baseline_rss < 32 * MIB


# -- plugin discovery ----------------------------------------------------------------------


def _entry_point(names: Iterable[importlib.metadata.EntryPoint]) -> importlib.metadata.EntryPoint:
    (entry,) = [ep for ep in names if ep.name == "storage_local"]
    return entry


async def test_plugin_registers_local_through_its_entry_point(tmp_path: Path) -> None:
    entry = _entry_point(importlib.metadata.entry_points(group="aecflow"))
    assert entry.value == "aecflow_storage_local.plugin"
    module = entry.load()
    registry = StorageRegistry()

    module.register_storage(registry)

    registration = registry.get("local")
    assert registration is not None
    assert registration.config is LocalStorageConfig
    backend = registration.factory(registration.config.model_validate({"root": str(tmp_path)}))
    assert isinstance(backend, LocalStorage)
    assert isinstance(backend, Storage)
    await backend.put("k", chunked(b"hello", 2))
    assert await read_all(backend, "k") == b"hello"
    await backend.close()
