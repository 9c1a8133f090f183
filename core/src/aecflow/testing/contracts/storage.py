"""``StorageContract``: what the core relies on from every storage backend, as tests.

Subclass it and provide a ``storage`` fixture that yields a started, empty backend (one per
test, closed afterwards)::

    class TestMyStorage(StorageContract):
        @pytest.fixture
        async def storage(self, tmp_path):
            backend = MyStorage(MyConfig(root=tmp_path))
            await backend.start()
            yield backend
            await backend.close()

Optional knobs: the ``storage_leftovers`` fixture (what the backend keeps outside its objects:
temporary files, unfinished multipart uploads; must be empty after a failed write), the class
attributes ``large_object_size`` (make it exceed any internal part or buffer size),
``min_part_size`` (the smallest multipart part but the last) and ``fetch_download_urls`` (GET
the URLs ``download_url`` returns and compare the bytes). Multipart uploads are tested through
``put_part`` or, for backends that set ``direct_upload``, through the requests ``part_url``
returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import pytest

from aecflow.errors import ObjectNotFound
from aecflow.storage import PartInfo, Storage

KIB = 1024
MIB = 1024 * KIB

#: Chunk shapes every round trip is tried with (``large`` uses ``large_object_size``).
SHAPES = ("empty", "one-empty-chunk", "one-byte", "many-small", "uneven", "buffers", "large")

Leftovers = Callable[[], "list[str] | Awaitable[list[str]]"]


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic incompressible bytes (so a failure is reproducible)."""
    return random.Random(seed).randbytes(size)


async def feed(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` as the async iterator ``put`` consumes."""
    for chunk in chunks:
        yield chunk


async def read_all(storage: Storage, key: str, *, start: int = 0, end: int | None = None) -> bytes:
    """Every byte ``open`` yields for ``key`` (and the range)."""
    return b"".join([bytes(chunk) async for chunk in storage.open(key, start=start, end=end)])


async def keys_of(storage: Storage, prefix: str = "") -> list[str]:
    return sorted([info.key async for info in storage.list(prefix)])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StorageContract:
    """Base class of a backend's contract tests (no ``Test`` prefix: collected via subclasses)."""

    #: Bytes of the ``large`` round trip: more than any part or buffer size of the backend.
    large_object_size: int = 3 * MIB + 7
    #: The smallest part (but the last) the backend's multipart uploads take (S3: 5 MiB).
    min_part_size: int = 64 * KIB
    #: GET the URLs ``download_url`` returns (absolute URLs served without the aecflow host).
    fetch_download_urls: bool = False

    @pytest.fixture
    def storage(self) -> Storage:
        """The backend under test: started, empty, one per test. Override it."""
        raise NotImplementedError(f"{type(self).__name__} must define a `storage` fixture")

    @pytest.fixture
    def storage_leftovers(self) -> Leftovers:
        """A callable listing what the backend keeps besides its objects (temporary files,
        unfinished multipart uploads); the contract expects none after failed writes."""
        return list

    # -- helpers ---------------------------------------------------------------------------

    def chunks_for(self, shape: str) -> list[bytes]:
        large = random_bytes(self.large_object_size, seed=3)
        shapes: dict[str, list[Any]] = {
            "empty": [],
            "one-empty-chunk": [b""],
            "one-byte": [b"\x00"],
            "many-small": [random_bytes(7, seed=n) for n in range(500)],
            "uneven": [random_bytes(size, seed=size) for size in (1, 65535, 3, 0, 100_001, 17)],
            "buffers": [bytearray(b"abc"), memoryview(b"def"), b"", b"ghi"],
            "large": [large[i : i + 65536 + 1] for i in range(0, len(large), 65536 + 1)],
        }
        return shapes[shape]

    async def assert_nothing_left(
        self, storage: Storage, leftovers: Leftovers, *, keep: Iterable[str] = ()
    ) -> None:
        assert await keys_of(storage) == sorted(keep), "a failed write left an object behind"
        found = leftovers()
        if inspect.isawaitable(found):
            found = await found
        assert list(found) == [], f"a failed write left something behind: {found}"

    # -- round trips -----------------------------------------------------------------------

    @pytest.mark.asyncio
    @pytest.mark.parametrize("shape", SHAPES)
    async def test_round_trip_is_byte_identical(self, storage: Storage, shape: str) -> None:
        chunks = self.chunks_for(shape)
        data = b"".join(bytes(chunk) for chunk in chunks)
        key = "proj-a/0190b2d4-contract-round-trip"

        stored = await storage.put(key, feed(chunks), size=len(data))

        assert (stored.key, stored.size, stored.sha256) == (key, len(data), sha256(data))
        assert await read_all(storage, key) == data
        info = await storage.stat(key)
        assert (info.key, info.size) == (key, len(data))
        assert info.last_modified is None or info.last_modified.tzinfo is not None
        assert [(i.key, i.size) async for i in storage.list()] == [(key, len(data))]

    @pytest.mark.asyncio
    async def test_put_replaces_an_existing_object(self, storage: Storage) -> None:
        await storage.put("proj-a/k", feed([b"first version"]))
        stored = await storage.put("proj-a/k", feed([b"sec", b"ond"]))

        assert await read_all(storage, "proj-a/k") == b"second"
        assert (stored.size, stored.sha256) == (6, sha256(b"second"))
        assert (await storage.stat("proj-a/k")).size == 6

    @pytest.mark.asyncio
    async def test_objects_are_independent(self, storage: Storage) -> None:
        one, two = random_bytes(1000, seed=1), random_bytes(1001, seed=2)
        await asyncio.gather(
            storage.put("proj-a/one", feed([one[:10], one[10:]])),
            storage.put("proj-b/two", feed([two])),
        )

        assert await read_all(storage, "proj-a/one") == one
        assert await read_all(storage, "proj-b/two") == two

    # -- ranges ----------------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_range_reads(self, storage: Storage) -> None:
        data = random_bytes(200_003, seed=9)
        n = len(data)
        await storage.put("proj-a/r", feed([data[:65536], data[65536:]]))
        ranges = [(0, None), (0, 0), (7, 7), (10, 20), (65535, 65537), (5, None)]
        ranges += [(n - 1, None), (n - 3, n + 100), (0, n), (1, n - 1)]

        for start, end in ranges:
            got = await read_all(storage, "proj-a/r", start=start, end=end)
            assert got == data[start:end], f"range start={start} end={end}"

    # -- missing keys ----------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_missing_keys_raise_object_not_found(self, storage: Storage) -> None:
        await storage.put("proj-a/there", feed([b"x"]))

        for key in ("proj-a/missing", "proj-b/there", "proj-a/there-not"):
            with pytest.raises(ObjectNotFound):
                await storage.stat(key)
            with pytest.raises(ObjectNotFound):
                await read_all(storage, key)

    # -- failed and cancelled writes leave nothing -----------------------------------------

    @pytest.mark.asyncio
    @pytest.mark.parametrize("fail_after", ["nothing", "some", "large"])
    async def test_put_whose_source_fails_leaves_nothing(
        self, storage: Storage, storage_leftovers: Leftovers, fail_after: str
    ) -> None:
        sizes = {"nothing": 0, "some": 1000, "large": self.large_object_size}
        data = random_bytes(sizes[fail_after], seed=5)

        async def failing() -> AsyncIterator[bytes]:
            for offset in range(0, len(data), 65536):
                yield data[offset : offset + 65536]
            raise ConnectionResetError("the client went away")

        with pytest.raises(ConnectionResetError):
            await storage.put("proj-a/failed", failing(), size=len(data) + 1)

        with pytest.raises(ObjectNotFound):
            await storage.stat("proj-a/failed")
        await self.assert_nothing_left(storage, storage_leftovers)

    @pytest.mark.asyncio
    async def test_failed_put_keeps_the_previous_version(
        self, storage: Storage, storage_leftovers: Leftovers
    ) -> None:
        await storage.put("proj-a/k", feed([b"old"]))

        async def failing() -> AsyncIterator[bytes]:
            yield b"new bytes"
            raise ValueError("size limit exceeded")

        with pytest.raises(ValueError):
            await storage.put("proj-a/k", failing())

        assert await read_all(storage, "proj-a/k") == b"old"
        await self.assert_nothing_left(storage, storage_leftovers, keep=["proj-a/k"])

    @pytest.mark.asyncio
    async def test_cancelled_put_leaves_nothing(
        self, storage: Storage, storage_leftovers: Leftovers
    ) -> None:
        data = random_bytes(self.large_object_size, seed=6)
        fed = asyncio.Event()

        async def stalled() -> AsyncIterator[bytes]:
            for offset in range(0, len(data), 65536):
                yield data[offset : offset + 65536]
            fed.set()
            await asyncio.Event().wait()  # the client stops sending
            yield b"never"

        task = asyncio.create_task(storage.put("proj-a/cancelled", stalled()))
        await fed.wait()
        for _ in range(20):  # let the backend act on what it got (start an upload, flush)
            await asyncio.sleep(0.01)
        task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(ObjectNotFound):
            await storage.stat("proj-a/cancelled")
        await self.assert_nothing_left(storage, storage_leftovers)

    # -- listing and deletion --------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_list_matches_string_prefixes(self, storage: Storage) -> None:
        layout = {"a/b": 1, "a-c": 2, "a0": 3, "p/x/1": 4, "p/x/2": 5, "p/y": 6, "q": 7}
        for key, size in layout.items():
            await storage.put(key, feed([b"z" * size]))

        listed = sorted([(i.key, i.size) async for i in storage.list()])

        assert listed == sorted(layout.items())
        assert await keys_of(storage, "p/") == ["p/x/1", "p/x/2", "p/y"]
        assert await keys_of(storage, "p/x") == ["p/x/1", "p/x/2"]
        assert await keys_of(storage, "p/x/2") == ["p/x/2"]
        assert await keys_of(storage, "a") == ["a-c", "a/b", "a0"]
        assert await keys_of(storage, "zzz") == []
        assert await keys_of(storage, "q/") == []

    @pytest.mark.asyncio
    async def test_delete_is_idempotent(self, storage: Storage) -> None:
        await storage.put("proj-a/1", feed([b"1"]))
        await storage.put("proj-a/2", feed([b"2"]))

        await storage.delete("proj-a/never-existed")
        await storage.delete("proj-a/1")
        await storage.delete("proj-a/1")

        with pytest.raises(ObjectNotFound):
            await storage.stat("proj-a/1")
        with pytest.raises(ObjectNotFound):
            await read_all(storage, "proj-a/1")
        assert await keys_of(storage) == ["proj-a/2"]
        assert await read_all(storage, "proj-a/2") == b"2"

    # -- download URLs ---------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_download_urls(self, storage: Storage) -> None:
        data = random_bytes(3000, seed=4)
        await storage.put("proj-a/d", feed([data]))
        await storage.put("proj-a/e", feed([b"other"]))
        expires = dt.timedelta(minutes=5)

        url = await storage.download_url("proj-a/d", expires=expires, filename="Tower A.ifc")
        if url is None:
            pytest.skip(f"{type(storage).__name__} offers no download URLs")

        assert isinstance(url, str) and url
        assert url != await storage.download_url("proj-a/e", expires=expires)
        if self.fetch_download_urls:
            import httpx

            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.get(url)
            assert response.status_code == 200, response.text
            assert response.content == data

    # -- multipart uploads -----------------------------------------------------------------

    async def send_part(
        self, storage: Storage, key: str, upload_id: str, number: int, data: bytes, offset: int
    ) -> PartInfo | None:
        """Send one part as the core would: to ``put_part`` or, for ``direct_upload``
        backends, as the client would, with the request ``part_url`` describes."""
        if not storage.direct_upload:
            return await storage.put_part(key, upload_id, number, feed([data]), offset=offset)
        import httpx

        target = await storage.part_url(
            key, upload_id, number, expires=dt.timedelta(minutes=10), sha256=sha256(data)
        )
        assert target is not None, "direct_upload backends must answer part_url"
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.request(
                target.method, target.url, content=data, headers=dict(target.headers)
            )
        assert response.is_success, f"part {number}: {response.status_code} {response.text}"
        return None

    @pytest.mark.asyncio
    async def test_multipart_upload_round_trip(self, storage: Storage) -> None:
        key = "proj-a/0190b2d4-contract-multipart"
        first = random_bytes(self.min_part_size, seed=11)
        second = random_bytes(1001, seed=12)
        upload_id = await storage.create_multipart(key, part_checksums=storage.direct_upload)

        sent = [
            await self.send_part(storage, key, upload_id, 2, second, len(first)),
            await self.send_part(storage, key, upload_id, 1, first, 0),
        ]

        if storage.direct_upload:  # the core asks the backend which parts it holds
            parts = await storage.list_parts(key, upload_id)
            assert [(p.number, p.size) for p in parts] == [(1, len(first)), (2, len(second))]
        else:  # the core keeps the record of what ``put_part`` answered
            parts = sorted([p for p in sent if p is not None], key=lambda p: p.number)
            assert [(p.number, p.size) for p in parts] == [(1, len(first)), (2, len(second))]
            assert [p.sha256 for p in parts] == [sha256(first), sha256(second)]
        with pytest.raises(ObjectNotFound):
            await storage.stat(key)  # nothing is published before completion

        assembled = await storage.complete_multipart(key, upload_id, parts)

        data = first + second
        assert (assembled.key, assembled.size) == (key, len(data))
        assert assembled.sha256 in (None, sha256(data))
        assert await read_all(storage, key) == data
        assert await keys_of(storage) == [key]

    @pytest.mark.asyncio
    async def test_multipart_part_attempts_are_kept_apart(self, storage: Storage) -> None:
        if storage.direct_upload:
            pytest.skip("parts go straight to the backend: the backend keeps the last attempt")
        key = "proj-a/0190b2d4-contract-attempts"
        upload_id = await storage.create_multipart(key)
        stale = await storage.put_part(key, upload_id, 1, feed([b"stale bytes"]), offset=0)
        fresh = await storage.put_part(key, upload_id, 1, feed([b"fresh"]), offset=0)
        assert stale.etag != fresh.etag

        await storage.discard_part(key, upload_id, stale)
        await storage.discard_part(key, upload_id, stale)
        assembled = await storage.complete_multipart(key, upload_id, [fresh])

        assert assembled.size == 5
        assert await read_all(storage, key) == b"fresh"
        assert await keys_of(storage) == [key]

    @pytest.mark.asyncio
    async def test_aborted_multipart_upload_leaves_nothing(
        self, storage: Storage, storage_leftovers: Leftovers
    ) -> None:
        key = "proj-a/0190b2d4-contract-aborted"
        upload_id = await storage.create_multipart(key)
        await self.send_part(storage, key, upload_id, 1, random_bytes(self.min_part_size), 0)

        await storage.abort_multipart(key, upload_id)
        await storage.abort_multipart(key, upload_id)

        with pytest.raises(ObjectNotFound):
            await storage.stat(key)
        await self.assert_nothing_left(storage, storage_leftovers)
