"""Joining a session's parts into its file, and checking that file against the session.

Completion may run again after a failure at any step: when the parts are already joined (the
backend has the file), the file is found rather than joined twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib

from aecflow.breaker import admitted
from aecflow.errors import Conflict, InvalidInput, ObjectNotFound
from aecflow.loading.runtime import Runtime
from aecflow.storage import AssembledObject, PartInfo, Storage
from aecflow.store.uploads import UploadRow
from aecflow.streams import HEAD_BYTES
from aecflow.uploads import parts


async def assemble(runtime: Runtime, row: UploadRow) -> AssembledObject:
    """Join the verified parts into the file, or find the file an earlier call joined
    before its publication failed."""
    storage, key = runtime.storage, row.storage_key
    with admitted(runtime.breakers["storage"]):
        try:
            info = await storage.stat(key)
        except ObjectNotFound:
            info = None
    if info is not None:  # the parts are gone (joined); the file is what they made
        direct = row.transport == "direct"
        sha256 = row.sha256 if direct and row.sha256 else await sha256_of(storage, key)
        return AssembledObject(key, info.size, sha256, info.etag)
    joined = verified(row, await parts.held(runtime, row))
    with admitted(runtime.breakers["storage"]):
        assembled = await storage.complete_multipart(
            key,
            row.storage_upload_id,
            joined,
            content_type=row.content_type,
            metadata={"project": row.project, "file-id": row.file_id},
        )
    if assembled.sha256 is None and row.sha256 is None:  # a direct session nobody declared
        with admitted(runtime.breakers["storage"]):
            digest = await sha256_of(storage, key)
        assembled = dataclasses.replace(assembled, sha256=digest)
    return assembled


def verified(row: UploadRow, received: dict[int, PartInfo]) -> list[PartInfo]:
    """Every part present with its exact size (and declared checksum, when the backend
    reports one); raises what the client must fix, leaving the session open."""
    missing = [n for n in range(1, row.part_count + 1) if n not in received]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        raise Conflict(
            f"{len(missing)} of {row.part_count} parts are missing: {shown}",
            code="upload_incomplete",
        )
    parts = []
    for number in range(1, row.part_count + 1):
        part = received[number]
        expected = row.part_length(number)
        if part.size != expected:
            raise InvalidInput(
                f"part {number} has {part.size} bytes, expected {expected}; send it again",
                code="part_size_mismatch",
            )
        declared = row.declared_part(number)
        if declared and part.sha256 and part.sha256 != declared:
            raise InvalidInput(
                f"part {number}'s SHA-256 is {part.sha256}, the client declared "
                f"{declared}; send it again",
                code="checksum_mismatch",
            )
        if declared and part.sha256 is None:  # S3 lists checksums; moto does not
            part = dataclasses.replace(part, sha256=declared)
        parts.append(part)
    return parts


async def sha256_of(storage: Storage, key: str) -> str:
    digest = hashlib.sha256()
    async for chunk in storage.open(key):
        await asyncio.to_thread(digest.update, chunk)
    return digest.hexdigest()


def checked(row: UploadRow, assembled: AssembledObject) -> AssembledObject:
    """The assembled file as it is published (at the session's key, with its SHA-256), if it
    is the file the session declared."""
    if assembled.size != row.size:
        raise InvalidInput(
            f"the assembled file has {assembled.size} bytes, the session declared {row.size}",
            code="size_mismatch",
        )
    declared = row.sha256
    if declared and assembled.sha256 and assembled.sha256 != declared:
        raise InvalidInput(
            f"SHA-256 mismatch: the client said {declared}, the server assembled "
            f"{assembled.sha256}; nothing was published",
            code="checksum_mismatch",
        )
    sha256 = assembled.sha256 or declared
    assert sha256 is not None  # direct sessions require a declared checksum
    return AssembledObject(
        row.storage_key, assembled.size, sha256, assembled.etag, assembled.version
    )


async def head(storage: Storage, key: str) -> bytes:
    """The first bytes of the assembled file, for processors that sniff."""
    first = bytearray()
    async for chunk in storage.open(key, start=0, end=HEAD_BYTES):
        first += chunk
    return bytes(first)
