"""The data plane against moto over real HTTP: round trips, SSE, metadata, failures, errors."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import AsyncIterator, Callable

import pytest
from s3_support import (
    MIB,
    Bucket,
    MotoServer,
    chunked,
    new_bucket,
    read_all,
    started,
    storage_config,
)

from aecflow.errors import (
    ObjectNotFound,
    StorageAccessDenied,
    StorageInvalid,
    StorageUnavailable,
)
from aecflow.registry import StorageRegistry
from aecflow.testing import StorageContract
from aecflow_storage_s3 import S3Storage, S3StorageConfig
from aecflow_storage_s3.errors import map_error
from aecflow_storage_s3.upload import blocks_of, part_size_for

META = {"project": "tower-a", "file-id": "0190b2d4-0000-7000-8000-000000000001"}


# -- round trips ---------------------------------------------------------------------------


class TestS3StorageContract(StorageContract):
    """What the core relies on, against moto over HTTP: objects bigger than a part go up as
    multipart uploads, and an unfinished multipart upload counts as a leftover."""

    large_object_size = 2 * 5 * MIB + 7  # three parts of the smallest size S3 allows
    min_part_size = 5 * MIB
    fetch_download_urls = True  # presigned GETs go straight to moto

    @pytest.fixture
    async def storage(self, bucket: Bucket) -> AsyncIterator[S3Storage]:
        async with started(storage_config(bucket, prefix="aecflow/contract")) as storage:
            yield storage

    @pytest.fixture
    def storage_leftovers(self, bucket: Bucket) -> Callable[[], list[str]]:
        return lambda: [f"multipart upload {key}" for key in bucket.multipart_uploads()]


@pytest.mark.parametrize(("size", "feed"), [(1, 1), (12 * MIB + 7, 3 * MIB)], ids=["1B", "3-parts"])
async def test_objects_land_under_the_prefix_encrypted_with_metadata(
    bucket: Bucket, size: int, feed: int
) -> None:
    data = os.urandom(size)
    key = "tower-a/0190b2d4-0000-7000-8000-000000000001"
    async with started(storage_config(bucket, prefix="aecflow/prod")) as storage:
        stored = await storage.put(
            key, chunked(data, feed), size=size, content_type="application/x-step", metadata=META
        )
        assert stored.etag
        info = await storage.stat(key)
        assert (info.key, info.size, info.etag) == (key, size, stored.etag)
        assert info.content_type == "application/x-step"
        assert info.metadata == META

        # Under the configured prefix, encrypted, with the core's metadata: read back from S3.
        head = bucket.s3.head_object(Bucket=bucket.name, Key=f"aecflow/prod/{key}")
        assert head["ServerSideEncryption"] == "AES256"
        assert head["Metadata"] == META
        assert head["ContentLength"] == size
        parts = 1 if size <= 5 * MIB else -(-size // (5 * MIB))
        assert head["ETag"].strip('"').endswith(f"-{parts}") == (size > 5 * MIB)

        await storage.delete(key)
        assert bucket.object_keys() == []
        assert bucket.multipart_uploads() == []


async def test_reads_come_in_large_chunks_and_bad_ranges_are_refused(bucket: Bucket) -> None:
    data = os.urandom(3 * MIB + 11)
    async with started(storage_config(bucket)) as storage:
        await storage.put("p/k", chunked(data, MIB))
        sizes = [len(c) async for c in storage.open("p/k")]
        assert sum(sizes) == len(data) and min(sizes[:-1]) >= MIB
        with pytest.raises(StorageInvalid):
            storage.open("p/k", start=9, end=3)
        with pytest.raises(StorageInvalid):
            await read_all(storage, "p/k", start=len(data) + 5)


async def test_sse_kms_is_recorded(bucket: Bucket) -> None:
    kms = bucket.moto.client("kms", bucket.region)
    key_id = kms.create_key()["KeyMetadata"]["Arn"]
    config = storage_config(bucket, server_side_encryption="aws:kms", sse_kms_key_id=key_id)
    async with started(config) as storage:
        await storage.put("p/small", chunked(b"x" * 1000, 100), metadata=META)
        await storage.put("p/large", chunked(os.urandom(6 * MIB), MIB), metadata=META)
    for name in ("p/small", "p/large"):
        head = bucket.s3.head_object(Bucket=bucket.name, Key=name)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == key_id
        assert head["Metadata"] == META


async def test_versioned_bucket_reports_versions(bucket: Bucket) -> None:
    bucket.s3.put_bucket_versioning(
        Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"}
    )
    async with started(storage_config(bucket)) as storage:
        small = await storage.put("p/a", chunked(b"abc", 1))
        large = await storage.put("p/b", chunked(os.urandom(6 * MIB), MIB))
    for stored in (small, large):
        versions = bucket.s3.list_object_versions(Bucket=bucket.name, Prefix=stored.key)
        assert stored.version == versions["Versions"][0]["VersionId"]


async def test_list_sees_only_the_prefix_in_key_order(bucket: Bucket) -> None:
    async with started(storage_config(bucket, prefix="root")) as storage:
        for key in ("a/1", "a/2", "ab/1", "b/1"):
            await storage.put(key, chunked(key.encode(), 2))
        bucket.s3.put_object(Bucket=bucket.name, Key="elsewhere/x", Body=b"not ours")

        async def keys(prefix: str = "") -> list[str]:
            return [info.key async for info in storage.list(prefix)]

        assert await keys() == ["a/1", "a/2", "ab/1", "b/1"]
        assert await keys("a") == ["a/1", "a/2", "ab/1"]
        assert await keys("a/") == ["a/1", "a/2"]
        assert await keys("ab/1") == ["ab/1"]
        assert await keys("c") == []


# -- failures ------------------------------------------------------------------------------


async def test_missing_bucket_is_unavailable_not_missing_object(bucket: Bucket) -> None:
    async with started(storage_config(bucket)) as storage:
        bucket.s3.delete_bucket(Bucket=bucket.name)
        with pytest.raises(StorageUnavailable, match="bucket does not exist"):
            await storage.put("p/k", chunked(b"abc", 1))
        with pytest.raises(StorageUnavailable):
            await storage.put("p/big", chunked(os.urandom(6 * MIB), MIB))
        with pytest.raises(StorageUnavailable):
            await storage.check()
        with pytest.raises(ObjectNotFound):
            await storage.stat("p/k")


async def test_endpoint_down_is_unavailable(moto: MotoServer, bucket: Bucket) -> None:
    storage = S3Storage(storage_config(bucket, max_retries=0))
    await storage.start()
    moto.stop()
    try:
        with pytest.raises(StorageUnavailable):
            await storage.put("p/k", chunked(b"abc", 1))
        with pytest.raises(StorageUnavailable):
            await storage.put("p/big", chunked(os.urandom(6 * MIB), MIB))
        with pytest.raises(StorageUnavailable):
            await storage.stat("p/k")
        with pytest.raises(StorageUnavailable):
            await storage.check()
        with pytest.raises(StorageUnavailable):
            await read_all(storage, "p/k")
    finally:
        moto.start()
        await storage.close()
    async with started(storage_config(bucket)) as storage:
        await storage.check()


# -- keys, metadata and error mapping ------------------------------------------------------


@pytest.mark.parametrize("key", ["", "/a", "a/", "a//b", "a/./b", "a/../b", "a\x00b", "a\nb"])
async def test_bad_keys_are_refused_before_any_request(bucket: Bucket, key: str) -> None:
    async with started(storage_config(bucket)) as storage:
        with pytest.raises(StorageInvalid):
            await storage.put(key, chunked(b"abc", 1))
        with pytest.raises(StorageInvalid):
            await storage.stat(key)
        with pytest.raises(StorageInvalid):
            await storage.delete(key)
        with pytest.raises(StorageInvalid):
            storage.open(key)
    assert bucket.object_keys() == []


@pytest.mark.parametrize(
    "metadata", [{"Bad Name": "x"}, {"ok": "caf\u00e9"}, {"ok": "a\nb"}, {"k": "v" * 3000}]
)
async def test_metadata_s3_cannot_keep_is_refused(bucket: Bucket, metadata: dict) -> None:
    async with started(storage_config(bucket)) as storage:
        with pytest.raises(StorageInvalid):
            await storage.put("p/k", chunked(b"abc", 1), metadata=metadata)


def test_error_mapping() -> None:
    import botocore.exceptions
    import obstore.exceptions as obs

    def client_error(code: str, status: int) -> Exception:
        response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return botocore.exceptions.ClientError(response, "Op")  # type: ignore[arg-type]

    cases: list[tuple[Exception, bool, type]] = [
        (FileNotFoundError("gone"), False, ObjectNotFound),
        (FileNotFoundError("gone"), True, StorageUnavailable),
        (obs.PermissionDeniedError("no"), False, StorageAccessDenied),
        (obs.UnauthenticatedError("no"), False, StorageAccessDenied),
        (obs.GenericError("Server returned non-2xx status code: 503 Slow Down"), False,
         StorageUnavailable),
        (obs.GenericError("Server returned non-2xx status code: 416 Range"), False,
         StorageInvalid),
        (obs.GenericError("HTTP error: error sending request"), False, StorageUnavailable),
        (client_error("NoSuchKey", 404), False, ObjectNotFound),
        (client_error("NoSuchBucket", 404), False, StorageUnavailable),
        (client_error("AccessDenied", 403), False, StorageAccessDenied),
        (client_error("SlowDown", 503), False, StorageUnavailable),
        (client_error("InvalidArgument", 400), False, StorageInvalid),
        (botocore.exceptions.NoCredentialsError(), False, StorageAccessDenied),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), False,
         StorageUnavailable),
        (TimeoutError(), False, StorageUnavailable),
    ]  # fmt: skip
    for exc, missing_is_down, expected in cases:
        mapped = map_error(exc, "op", missing_is_down=missing_is_down)
        assert type(mapped) is expected, (exc, mapped)


# -- units of the upload path --------------------------------------------------------------


async def test_blocks_are_at_least_one_mib() -> None:
    async def source():
        for size in (10, MIB, 5, MIB - 20, 3 * MIB, 7):
            yield b"x" * size

    sizes = [len(block) async for block in blocks_of(source())]
    assert sum(sizes) == 10 + MIB + 5 + MIB - 20 + 3 * MIB + 7
    assert all(size >= MIB for size in sizes[:-1])


def test_part_size_grows_to_stay_under_ten_thousand_parts() -> None:
    assert part_size_for(8 * MIB, None) == 8 * MIB
    assert part_size_for(8 * MIB, 5 * 1024 * MIB) == 8 * MIB
    grown = part_size_for(5 * MIB, 100 * 1024 * MIB)
    assert grown % MIB == 0 and 100 * 1024 * MIB / grown <= 10_000


# -- registration --------------------------------------------------------------------------


def test_the_entry_point_registers_the_s3_backend() -> None:
    (entry,) = [
        e for e in importlib.metadata.entry_points(group="aecflow") if e.name == "storage_s3"
    ]
    registry = StorageRegistry()
    entry.load().register_storage(registry)
    registration = registry.get("s3")
    assert registration is not None and registration.config is S3StorageConfig


async def test_calls_before_start_are_unavailable(moto: MotoServer) -> None:
    storage = S3Storage(S3StorageConfig(bucket="never-started", endpoint_url=moto.endpoint))
    with pytest.raises(StorageUnavailable):
        await storage.stat("p/k")
    with pytest.raises(StorageUnavailable):
        await storage.check()


async def test_us_east_1_buckets_are_found(moto: MotoServer) -> None:
    bucket = new_bucket(moto, "us-east-1")
    async with started(storage_config(bucket)) as storage:
        assert storage.region == "us-east-1"
