"""Direct uploads: clients send the parts of a multipart upload straight to S3.

The host opens the multipart upload, hands out presigned ``UploadPart`` URLs (SigV4, local
computation, no request to S3), asks S3 which parts arrived, and completes or aborts: control
calls only, through the aioboto3 client. The bytes never pass through the host.

When the client declares each part's SHA-256, the upload is created with
``ChecksumAlgorithm=SHA256`` and every URL is signed with the part's ``x-amz-checksum-sha256``
header: S3 then refuses a part whose bytes do not match, and a client cannot send other bytes
under that URL.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import botocore.exceptions

from aecflow.errors import Conflict
from aecflow.storage import PartInfo, PartTarget


def b64_of_hex(digest: str) -> str:
    return base64.b64encode(bytes.fromhex(digest)).decode("ascii")


def hex_of_b64(value: str | None) -> str | None:
    return base64.b64decode(value).hex() if value else None


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


async def create(
    client: Any,
    bucket: str,
    key: str,
    *,
    encryption: Mapping[str, str],
    attributes: Mapping[str, str],
    part_checksums: bool,
) -> str:
    """Open a multipart upload of ``key`` with the bucket's encryption; returns its UploadId."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key, **encryption}
    metadata = {name: value for name, value in attributes.items() if name != "Content-Type"}
    if metadata:
        params["Metadata"] = metadata
    if "Content-Type" in attributes:
        params["ContentType"] = attributes["Content-Type"]
    if part_checksums:
        params["ChecksumAlgorithm"] = "SHA256"
    answer = await client.create_multipart_upload(**params)
    return str(answer["UploadId"])


async def part_target(
    client: Any,
    bucket: str,
    key: str,
    upload_id: str,
    number: int,
    *,
    expires_s: int,
    sha256: str | None,
) -> PartTarget:
    """A presigned PUT for part ``number``; with ``sha256`` the checksum header is signed."""
    params: dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "UploadId": upload_id,
        "PartNumber": number,
    }
    headers: dict[str, str] = {}
    if sha256 is not None:
        params["ChecksumSHA256"] = headers["x-amz-checksum-sha256"] = b64_of_hex(sha256)
    url: str = await client.generate_presigned_url(
        "upload_part", Params=params, ExpiresIn=expires_s, HttpMethod="PUT"
    )
    return PartTarget(url=url, method="PUT", headers=headers)


async def parts(client: Any, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
    """Every part S3 holds for the upload (ListParts pages through 1,000 at a time)."""
    found: list[PartInfo] = []
    marker: dict[str, Any] = {}
    while True:
        page = await client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, **marker)
        for part in page.get("Parts", []):
            found.append(
                PartInfo(
                    number=part["PartNumber"],
                    size=part["Size"],
                    sha256=hex_of_b64(part.get("ChecksumSHA256")),
                    etag=_etag(part.get("ETag")),
                )
            )
        if not page.get("IsTruncated"):
            return found
        marker = {"PartNumberMarker": page["NextPartNumberMarker"]}


async def complete(
    client: Any, bucket: str, key: str, upload_id: str, listed: Sequence[PartInfo]
) -> dict[str, Any]:
    """Join the parts; S3 checks each part's etag (and checksum, when the upload has them)."""
    manifest = []
    for part in listed:
        entry: dict[str, Any] = {"PartNumber": part.number, "ETag": f'"{part.etag}"'}
        if part.sha256:
            entry["ChecksumSHA256"] = b64_of_hex(part.sha256)
        manifest.append(entry)
    try:
        answer: dict[str, Any] = await client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": manifest}
        )
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidPart":
            raise
        # A part was sent again after the core listed it: S3 holds other bytes than the
        # etags name, and publishes nothing. Listing again picks up what S3 holds now.
        raise Conflict(
            "a part was sent again while the upload was being completed; complete it again",
            code="upload_parts_changed",
        ) from exc
    return answer


async def abort(client: Any, bucket: str, key: str, upload_id: str) -> None:
    """Abort the upload; S3 frees its parts. A missing upload (already gone) is fine."""
    try:
        await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except client.exceptions.NoSuchUpload:
        return
