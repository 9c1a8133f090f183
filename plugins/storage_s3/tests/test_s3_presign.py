"""Presigned downloads: the original filename, and an expiry that is signed and enforced.

moto serves presigned URLs but never checks their expiry, so the expiry is checked twice: in
the signed parameters, and through ``PresignGateway``, a server in front of moto that verifies
SigV4 query signatures and expiry with a clock the test moves forward.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from s3_support import Bucket, PresignGateway, chunked, started, storage_config

from aecflow.errors import StorageInvalid
from aecflow_storage_s3.presign import content_disposition

FILENAME = "Tower A \u2013 ground floor (v2).ifc"
DATA = b"ISO-10303-21;\nHEADER;\n" + bytes(range(256)) * 40


def params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = params(url)
    query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_presigned_url_serves_the_object_under_its_filename(bucket: Bucket) -> None:
    async with started(storage_config(bucket, prefix="models")) as storage:
        await storage.put("tower-a/f1", chunked(DATA, 1000))
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)
        url = await storage.download_url(
            "tower-a/f1", expires=dt.timedelta(minutes=15), filename=FILENAME
        )
    signed = params(url)
    assert urlsplit(url).path == f"/{bucket.name}/models/tower-a/f1"
    assert signed["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert signed["X-Amz-Expires"] == "900"
    signed_at = dt.datetime.strptime(signed["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert before <= signed_at <= dt.datetime.now(dt.UTC)
    assert signed["X-Amz-Credential"].split("/")[2:] == [bucket.region, "s3", "aws4_request"]
    assert signed["response-content-disposition"] == content_disposition(FILENAME)

    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-disposition"] == content_disposition(FILENAME)
    assert (
        "filename*=UTF-8''Tower%20A%20%E2%80%93%20ground%20floor%20%28v2%29.ifc"
        in (response.headers["content-disposition"])
    )


@pytest.mark.parametrize(
    ("maximum", "asked", "signed"),
    [(None, dt.timedelta(minutes=15), 900), (None, dt.timedelta(days=30), 7 * 24 * 3600),
     (3600, dt.timedelta(hours=5), 3600), (3600, dt.timedelta(seconds=59.9), 59)],
)  # fmt: skip
async def test_expiry_is_bounded_by_the_configuration(
    bucket: Bucket, maximum: int | None, asked: dt.timedelta, signed: int
) -> None:
    overrides = {} if maximum is None else {"max_url_expiry_s": maximum}
    async with started(storage_config(bucket, **overrides)) as storage:
        url = await storage.download_url("p/k", expires=asked)
    assert params(url)["X-Amz-Expires"] == str(signed)
    assert "response-content-disposition" not in params(url)


async def test_non_positive_expiry_is_refused(bucket: Bucket) -> None:
    async with started(storage_config(bucket)) as storage:
        with pytest.raises(StorageInvalid):
            await storage.download_url("p/k", expires=dt.timedelta(0))


async def test_a_server_that_enforces_expiry_refuses_the_url_once_expired(bucket: Bucket) -> None:
    async with PresignGateway(bucket.moto.endpoint) as gateway:
        config = storage_config(bucket, endpoint_url=gateway.url)
        async with started(config) as storage:
            await storage.put("p/k", chunked(DATA, 1000))
            url = await storage.download_url(
                "p/k", expires=dt.timedelta(seconds=60), filename=FILENAME
            )
        async with httpx.AsyncClient() as client:

            async def fetch(target: str) -> httpx.Response:
                return await client.get(target)

            gateway.clock_offset = dt.timedelta(seconds=55)
            fresh = await fetch(url)
            assert fresh.status_code == 200, fresh.text
            assert fresh.content == DATA
            assert fresh.headers["content-disposition"] == content_disposition(FILENAME)

            gateway.clock_offset = dt.timedelta(seconds=65)
            expired = await fetch(url)
            assert expired.status_code == 403 and "expired" in expired.text

            # The expiry and the filename are signed: changing either breaks the signature.
            gateway.clock_offset = dt.timedelta(0)
            longer = await fetch(with_param(url, "X-Amz-Expires", "604800"))
            assert longer.status_code == 403 and "signature" in longer.text
            renamed = with_param(url, "response-content-disposition", "attachment; filename=x")
            assert (await fetch(renamed)).status_code == 403
