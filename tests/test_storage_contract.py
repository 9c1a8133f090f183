"""The storage contract suite: MemoryStorage passes it, and deliberately broken backends fail
it, in the tests that name what they broke (run through pytest's own ``pytester``)."""

from __future__ import annotations

import pytest

from aecflow.storage import Storage
from aecflow.testing import MemoryStorage, StorageContract

pytest_plugins = ["pytester"]


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> Storage:
        return MemoryStorage()


BROKEN = '''
import pytest

from aecflow.errors import ObjectNotFound
from aecflow.testing import MemoryStorage, StorageContract


class DropsLastChunk(MemoryStorage):
    async def put(self, key, chunks, **kwargs):
        received = [bytes(chunk) async for chunk in chunks]

        async def all_but_last():
            for chunk in received[:-1]:
                yield chunk

        return await super().put(key, all_but_last(), **kwargs)


class LeavesPartial(MemoryStorage):
    """Appends every chunk to the published object as it arrives."""

    async def put(self, key, chunks, **kwargs):
        written = b""
        async for chunk in chunks:
            written += bytes(chunk)

            async def one(data=written):
                yield data

            await super().put(key, one(), **kwargs)
        if not written:
            return await super().put(key, chunks, **kwargs)
        return await self.stored(key)

    async def stored(self, key):
        from aecflow.storage import StoredObject

        info = await self.stat(key)
        return StoredObject(key, info.size, info.etag)


class MissingIsKeyError(MemoryStorage):
    async def stat(self, key):
        try:
            return self.objects[key][1]
        except KeyError:
            raise KeyError(key) from None


class TestDropsLastChunk(StorageContract):
    @pytest.fixture
    def storage(self):
        return DropsLastChunk()


class TestLeavesPartial(StorageContract):
    @pytest.fixture
    def storage(self):
        return LeavesPartial()


class TestMissingIsKeyError(StorageContract):
    @pytest.fixture
    def storage(self):
        return MissingIsKeyError()
'''


def failed_by_class(pytester: pytest.Pytester) -> dict[str, set[str]]:
    """Run the broken backends' contract; ``{class: {failed test names}}``."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_broken=BROKEN)
    recorder = pytester.inline_run("-p", "no:cacheprovider")
    failed: dict[str, set[str]] = {}
    for report in recorder.getfailures():
        _, cls, name = report.nodeid.split("::")
        failed.setdefault(cls, set()).add(name)
    return failed


def test_broken_backends_fail_the_contract_where_they_break_it(pytester: pytest.Pytester) -> None:
    failed = failed_by_class(pytester)

    round_trips = {
        f"test_round_trip_is_byte_identical[{shape}]"
        for shape in ("one-byte", "many-small", "uneven", "buffers", "large")
    }
    dropped = failed["TestDropsLastChunk"]
    assert round_trips <= dropped
    # Empty objects have no last chunk to lose: those round trips pass.
    assert "test_round_trip_is_byte_identical[empty]" not in dropped
    assert {"test_range_reads", "test_put_replaces_an_existing_object"} <= dropped

    assert failed["TestLeavesPartial"] == {
        "test_put_whose_source_fails_leaves_nothing[some]",
        "test_put_whose_source_fails_leaves_nothing[large]",
        "test_failed_put_keeps_the_previous_version",
        "test_cancelled_put_leaves_nothing",
    }
    assert "test_missing_keys_raise_object_not_found" in failed["TestMissingIsKeyError"]
