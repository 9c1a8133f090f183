"""``S3Storage``: the core's storage contract on S3.

Bytes go through obstore (streaming, multipart, per-request retries); the few calls obstore
cannot make (the bucket's region, presigning with a filename, sweeping multipart uploads) go
through an aioboto3 client. Both are opened in :meth:`S3Storage.start`, not in the factory,
so building the backend never touches the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any

import obstore

from aecflow.errors import StorageAccessDenied, StorageInvalid, StorageUnavailable
from aecflow.storage import (
    AssembledObject,
    ObjectInfo,
    PartInfo,
    PartTarget,
    Storage,
    StoredObject,
)
from aecflow_storage_s3 import direct, presign, residency
from aecflow_storage_s3.config import S3StorageConfig
from aecflow_storage_s3.errors import translated
from aecflow_storage_s3.keys import check_key, full_key, list_scope
from aecflow_storage_s3.retries import whole_operation
from aecflow_storage_s3.upload import Uploader

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: Chunks that ``open`` yields are at least this big (the last may be shorter).
READ_CHUNK = 1 * MIB
#: S3 keeps at most 2 KiB of user metadata per object (names and values together).
MAX_METADATA_BYTES = 2048
#: How long ``close`` waits for cleanup of failed uploads before leaving it to the lifecycle rule.
CLOSE_DRAIN_S = 10.0

_META_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
#: obstore attributes that are HTTP headers, not user metadata.
_STANDARD_ATTRIBUTES = frozenset(
    {
        "Content-Type",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Cache-Control",
        "Storage-Class",
    }
)


def object_attributes(content_type: str | None, metadata: Mapping[str, str] | None) -> dict:
    """obstore attributes for a put: the content type and ``x-amz-meta-*`` user metadata.

    S3 sends user metadata as HTTP headers, so names must be lower-case tokens and values
    printable ASCII; anything else is refused rather than silently mangled.
    """
    attributes: dict[str, str] = {}
    total = 0
    for name, value in (metadata or {}).items():
        if not _META_KEY_RE.match(name):
            raise StorageInvalid(f"metadata name {name!r} cannot be stored as S3 user metadata")
        if not isinstance(value, str) or any(not 0x20 <= ord(ch) < 0x7F for ch in value):
            raise StorageInvalid(f"metadata value of {name!r} must be printable ASCII for S3")
        total += len(name) + len(value)
        attributes[name] = value
    if total > MAX_METADATA_BYTES:
        raise StorageInvalid(f"user metadata exceeds S3's limit of {MAX_METADATA_BYTES} bytes")
    if content_type:
        attributes["Content-Type"] = content_type
    return attributes


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


class S3Storage(Storage):
    """Objects in ``bucket`` under ``prefix``, encrypted at rest (SSE-S3 or SSE-KMS)."""

    #: Upload-session parts go straight to S3 through presigned URLs.
    direct_upload = True

    def __init__(self, config: S3StorageConfig) -> None:
        self.config = config
        #: The region requests are signed for, settled in :meth:`start`.
        self.region: str | None = None
        self._store: Any = None
        self._client: Any = None
        self._probe: Any = None
        self._uploader: Uploader | None = None
        self._stack = contextlib.AsyncExitStack()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Settle the region (refusing a pinned one that differs), open both clients, and
        check that the bucket answers."""
        # aioboto3 takes about a second to import: loading plugins (every CLI command does)
        # registers this class without it; only a started backend needs the clients.
        from aecflow_storage_s3 import clients

        config = self.config
        credentials = None
        if config.access_key_id is None:
            credentials = await asyncio.to_thread(clients.chain_credentials, config)
            if credentials is None:
                raise StorageAccessDenied(
                    "no AWS credentials found (looked in the environment, the shared config "
                    "files, and container and instance roles); configure one of those or set "
                    "[storage] access_key_id and secret_access_key"
                )
        session = clients.control_session(config)
        first_region = await asyncio.to_thread(clients.default_region, config)
        client = await self._stack.enter_async_context(
            session.client("s3", **clients.control_client_args(config, first_region))
        )
        region = first_region
        async for attempt in whole_operation():
            with attempt:
                region = await residency.discover(config, client)
        if region != first_region:  # SigV4 signs for one region: reopen for the bucket's
            await self._stack.aclose()
            client = await self._stack.enter_async_context(
                session.client("s3", **clients.control_client_args(config, region))
            )
        self.region, self._client = region, client
        with translated("configure the client"):
            self._store = clients.build_store(config, region, credentials)
            self._probe = clients.build_store(config, region, credentials, probe=True)
        self._uploader = Uploader(
            self._store,
            part_size=config.part_size,
            max_concurrency=config.max_concurrency,
            sweep=self._sweep,
            remove=self._remove,
        )
        async for attempt in whole_operation():
            with attempt:
                await self.check()
        log.info(
            "S3 storage: bucket %s, prefix %r, region %s, %s",
            config.bucket,
            config.prefix,
            self.region,
            config.server_side_encryption,
        )

    async def check(self) -> None:
        """Raise unless the bucket answers a listing under our prefix right now.

        Through obstore (the path data takes), once, without retries: readiness must answer
        within seconds. A listing needs only the permissions aecflow's IAM policy grants.
        """
        if self._probe is None:
            raise StorageUnavailable("S3 storage is not started (or already closed)")
        with translated(f"list bucket {self.config.bucket!r}", missing_is_down=True):
            await obstore.list_with_delimiter_async(self._probe)

    async def close(self) -> None:
        """Let cleanup of failed uploads finish (briefly), then close the clients."""
        if self._uploader is not None:
            try:
                await asyncio.wait_for(self._uploader.drain(), CLOSE_DRAIN_S)
            except TimeoutError:
                log.warning(
                    "cleanup of failed uploads did not finish; the lifecycle rule that aborts "
                    "incomplete multipart uploads will remove what is left"
                )
        await self._stack.aclose()
        self._client = self._probe = self._store = self._uploader = None

    def _started(self) -> Any:
        if self._store is None:
            raise StorageUnavailable("S3 storage is not started (or already closed)")
        return self._store

    # -- writing -------------------------------------------------------------------------

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        size: int | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Stream ``chunks`` into ``key`` with SSE and user metadata; atomic (see upload.py)."""
        check_key(key)
        attributes = object_attributes(content_type, metadata)
        self._started()
        assert self._uploader is not None
        written = await self._uploader.put(key, chunks, attributes=attributes, size_hint=size)
        return StoredObject(
            key=key,
            size=written.size,
            sha256=written.sha256,
            etag=_etag(written.etag),
            version=written.version,
        )

    async def delete(self, key: str) -> None:
        """Remove ``key``; S3 answers a delete of a missing key with success."""
        check_key(key)
        store = self._started()
        with translated(f"delete {key!r}", missing_is_down=True):
            await obstore.delete_async(store, key)

    async def _remove(self, key: str) -> None:
        await self.delete(key)

    async def _sweep(self, key: str) -> None:
        """Abort every multipart upload still open for exactly ``key``.

        Keys are unique per upload in aecflow (``{project}/{file_id}``), so no other writer's
        upload can be caught.
        """
        target = full_key(self.config.prefix, key)
        async for attempt in whole_operation(attempts=3, timeout_s=15.0):
            with attempt, translated(f"abort multipart uploads of {key!r}", missing_is_down=True):
                await self._abort_uploads(target)

    async def _abort_uploads(self, target: str) -> None:
        if self._client is None:
            return
        markers: dict[str, str] = {}
        while True:
            page = await self._client.list_multipart_uploads(
                Bucket=self.config.bucket, Prefix=target, **markers
            )
            for upload in page.get("Uploads", []):
                if upload["Key"] == target:
                    await self._client.abort_multipart_upload(
                        Bucket=self.config.bucket, Key=target, UploadId=upload["UploadId"]
                    )
                    log.info("aborted a leftover multipart upload of %s", target)
            if not page.get("IsTruncated"):
                return
            markers = {
                "KeyMarker": page.get("NextKeyMarker", ""),
                "UploadIdMarker": page.get("NextUploadIdMarker", ""),
            }

    # -- reading -------------------------------------------------------------------------

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``key`` from ``start`` to ``end`` (exclusive; clamped to the object's size).

        The key and range are checked here; a missing object is reported on first iteration.
        """
        check_key(key)
        if start < 0 or (end is not None and end < start):
            raise StorageInvalid(f"invalid byte range start={start} end={end} for {key!r}")
        return self._read(key, start, end)

    async def _read(self, key: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        store = self._started()
        if end == start:  # S3 cannot serve an empty range; an empty read only needs the object
            await self.stat(key)
            return
        options: dict[str, Any] = {}
        if end is not None:
            options["range"] = (start, end)
        elif start:
            options["range"] = {"offset": start}
        with translated(f"read {key!r}"):
            result = await obstore.get_async(store, key, options=options)
            async for chunk in result.stream(min_chunk_size=READ_CHUNK):
                yield bytes(chunk)

    async def stat(self, key: str) -> ObjectInfo:
        check_key(key)
        store = self._started()
        with translated(f"stat {key!r}"):
            result = await obstore.get_async(store, key, options={"head": True})
        meta = result.meta
        attributes = dict(result.attributes)
        return ObjectInfo(
            key=key,
            size=meta["size"],
            last_modified=meta["last_modified"],
            etag=_etag(meta.get("e_tag")),
            content_type=attributes.get("Content-Type"),
            metadata={k: v for k, v in attributes.items() if k not in _STANDARD_ATTRIBUTES},
        )

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order (S3's listing order)."""
        directory, wanted = list_scope(prefix)
        store = self._started()
        with translated(f"list {prefix!r}", missing_is_down=True):
            async for batch in obstore.list(store, directory, chunk_size=1000):
                for meta in batch:
                    path = meta["path"]
                    if path.startswith(wanted):
                        yield ObjectInfo(
                            key=path,
                            size=meta["size"],
                            last_modified=meta["last_modified"],
                            etag=_etag(meta.get("e_tag")),
                        )

    # -- presigned URLs ------------------------------------------------------------------

    async def download_url(
        self, key: str, *, expires: dt.timedelta, filename: str | None = None
    ) -> str:
        """A SigV4 presigned GET, clamped to ``max_url_expiry_s``, saving as ``filename``."""
        check_key(key)
        seconds = presign.expiry_seconds(expires, self.config.max_url_expiry_s)
        self._started()
        with translated(f"presign {key!r}"):
            return await presign.presigned_get(
                self._client,
                self.config.bucket,
                full_key(self.config.prefix, key),
                expires_s=seconds,
                filename=filename,
            )

    # -- direct uploads (upload sessions; see direct.py) ---------------------------------

    def _control(self) -> Any:
        self._started()
        return self._client

    async def create_multipart(
        self,
        key: str,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        part_checksums: bool = False,
    ) -> str:
        check_key(key)
        attributes = object_attributes(content_type, metadata)
        encryption = {"ServerSideEncryption": self.config.server_side_encryption}
        if self.config.sse_kms_key_id:
            encryption["SSEKMSKeyId"] = self.config.sse_kms_key_id
        with translated(f"create a multipart upload of {key!r}", missing_is_down=True):
            return await direct.create(
                self._control(),
                self.config.bucket,
                full_key(self.config.prefix, key),
                encryption=encryption,
                attributes=attributes,
                part_checksums=part_checksums,
            )

    async def put_part(
        self, key: str, upload_id: str, number: int, chunks: AsyncIterable[bytes], *, offset: int
    ) -> PartInfo:
        raise StorageInvalid("parts of S3 uploads are sent straight to S3 (part_url)")

    async def part_url(
        self,
        key: str,
        upload_id: str,
        number: int,
        *,
        expires: dt.timedelta,
        sha256: str | None = None,
    ) -> PartTarget:
        """A presigned UploadPart, valid until the session ends (at most ``max_url_expiry_s``)."""
        check_key(key)
        seconds = presign.expiry_seconds(
            max(expires, dt.timedelta(seconds=1)), self.config.max_url_expiry_s
        )
        with translated(f"presign part {number} of {key!r}"):
            return await direct.part_target(
                self._control(),
                self.config.bucket,
                full_key(self.config.prefix, key),
                upload_id,
                number,
                expires_s=seconds,
                sha256=sha256,
            )

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        check_key(key)
        with translated(f"list the parts of {key!r}"):
            return await direct.parts(
                self._control(), self.config.bucket, full_key(self.config.prefix, key), upload_id
            )

    async def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[PartInfo],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> AssembledObject:
        """Join the parts; the SHA-256 of the whole is unknown here (S3 got the bytes)."""
        check_key(key)
        with translated(f"complete the multipart upload of {key!r}"):
            answer = await direct.complete(
                self._control(),
                self.config.bucket,
                full_key(self.config.prefix, key),
                upload_id,
                parts,
            )
        return AssembledObject(
            key=key,
            size=sum(part.size for part in parts),  # S3 joined exactly these parts
            sha256=None,
            etag=_etag(answer.get("ETag")),
            version=answer.get("VersionId"),
        )

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        check_key(key)
        with translated(f"abort the multipart upload of {key!r}", missing_is_down=True):
            await direct.abort(
                self._control(), self.config.bucket, full_key(self.config.prefix, key), upload_id
            )
