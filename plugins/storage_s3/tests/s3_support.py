"""Helpers for the S3 plugin tests (a plain module: no conftest name clashes).

- ``MotoServer`` (from :mod:`aecflow.testing.aws`): moto's ThreadedMotoServer on a loopback
  port that can be stopped and started again on the same port (an S3 outage and its end).
- ``PresignGateway``: an HTTP server in front of moto that, unlike moto, enforces presigned
  URLs (SigV4 query signature and expiry), with a clock the test can move forward.
- ``live_host`` (from :mod:`aecflow.testing`): the aecflow host under uvicorn.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import uvicorn

from aecflow.config import Settings
from aecflow.testing import live_host
from aecflow.testing.aws import ACCESS_KEY, SECRET_KEY, MotoServer
from aecflow_storage_s3 import S3Storage, S3StorageConfig

__all__ = ["ACCESS_KEY", "SECRET_KEY", "MotoServer", "live_host"]

MIB = 1024 * 1024

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request otherwise


@dataclass
class Bucket:
    name: str
    region: str
    moto: MotoServer

    @property
    def s3(self) -> Any:
        return self.moto.client("s3", self.region)

    def multipart_uploads(self) -> list[str]:
        answer = self.s3.list_multipart_uploads(Bucket=self.name)
        return [upload["Key"] for upload in answer.get("Uploads", [])]

    def object_keys(self) -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=self.name)
        return [item["Key"] for item in answer.get("Contents", [])]


def new_bucket(moto: MotoServer, region: str) -> Bucket:
    name = f"aecflow-test-{uuid.uuid4().hex[:12]}"
    client = moto.client("s3", region)
    if region == "us-east-1":
        client.create_bucket(Bucket=name)
    else:
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return Bucket(name, region, moto)


def storage_config(bucket: Bucket, **overrides: Any) -> S3StorageConfig:
    """A config for ``bucket`` with the smallest part size S3 allows and quick retries."""
    raw: dict[str, Any] = {
        "bucket": bucket.name,
        "endpoint_url": bucket.moto.endpoint,
        "part_size": 5 * MIB,
        "max_concurrency": 2,
        "max_retries": 1,
        "retry_timeout_s": 5,
    }
    raw.update(overrides)
    return S3StorageConfig.model_validate(raw)


@contextlib.asynccontextmanager
async def started(config: S3StorageConfig) -> AsyncIterator[S3Storage]:
    storage = S3Storage(config)
    await storage.start()
    try:
        yield storage
    finally:
        await storage.close()


async def chunked(
    data: bytes, size: int, *, fail_at: int | None = None, pause: asyncio.Event | None = None
) -> AsyncIterator[bytes]:
    """``data`` in ``size`` pieces; raises ``ConnectionResetError`` at offset ``fail_at``;
    sets ``pause`` and then waits forever once ``fail_at`` is reached when ``pause`` is given."""
    for offset in range(0, len(data), size):
        if fail_at is not None and offset >= fail_at:
            if pause is not None:
                pause.set()
                await asyncio.Event().wait()
            raise ConnectionResetError("the client went away")
        yield data[offset : offset + size]


async def wait_for(predicate: Any, attempts: int = 1000) -> None:
    """Poll ``predicate`` until it is true (a bounded number of times, not a time limit)."""
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{predicate} never became true")


async def read_all(storage: S3Storage, key: str, **kwargs: int | None) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key, **kwargs)])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- a server that enforces presigned URLs -------------------------------------------------


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def presign_problem(
    method: str,
    url: str,
    host: str,
    secret_key: str,
    now: dt.datetime,
    headers: Mapping[str, str] | None = None,
) -> str | None:
    """Why a SigV4 presigned URL must be refused at ``now``, or ``None`` if it is good.

    An independent implementation of AWS's query-string authentication: the signature covers
    the method, path, every query parameter (expiry and response headers included), host and
    any other header the URL was signed with (``headers`` are the request's, lower-case).
    """
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(pairs)
    needed = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires")
    if any(name not in params for name in (*needed, "X-Amz-Signature")):
        return "not a presigned URL"
    if params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
        return "unknown algorithm"
    expires = int(params["X-Amz-Expires"])
    if not 1 <= expires <= 7 * 24 * 3600:
        return "expiry out of range"
    signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    if now > signed_at + dt.timedelta(seconds=expires):
        return "expired"
    signed = params.get("X-Amz-SignedHeaders", "").split(";")
    if signed[0] != "host" or signed != sorted(signed):
        return "unexpected signed headers"
    values = {**(headers or {}), "host": host}
    if any(name not in values for name in signed):
        return "a signed header is missing from the request"
    query = "&".join(
        f"{_encode(k)}={_encode(v)}"
        for k, v in sorted((k, v) for k, v in pairs if k != "X-Amz-Signature")
    )
    canonical_headers = "".join(f"{name}:{values[name].strip()}\n" for name in signed)
    canonical = "\n".join(
        [method, parts.path, query, canonical_headers, ";".join(signed), "UNSIGNED-PAYLOAD"]
    )
    _access, date, region, service, terminal = params["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{terminal}"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + secret_key).encode(), date)
    for part in (region, service, terminal):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        return "signature does not match"
    return None


class PresignGateway:
    """Forwards everything to moto, but refuses presigned requests that S3 would refuse.

    ``clock_offset`` moves the gateway's clock forward, to check expiry without waiting.
    """

    def __init__(self, upstream: str, secret_key: str = SECRET_KEY) -> None:
        self.upstream = upstream
        self.secret_key = secret_key
        self.clock_offset = dt.timedelta(0)
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        hop_by_hop = {"connection", "transfer-encoding", "content-length", "content-encoding"}

        async def forward(request: Request) -> Response:
            if "X-Amz-Signature" in request.query_params:
                now = dt.datetime.now(dt.UTC) + self.clock_offset
                problem = presign_problem(
                    request.method,
                    str(request.url),
                    request.headers["host"],
                    self.secret_key,
                    now,
                    dict(request.headers),
                )
                if problem:
                    return Response(f"<Error><Code>AccessDenied</Code>{problem}</Error>", 403)
            if checksum := request.headers.get("x-amz-checksum-sha256"):
                # S3 verifies a declared part checksum; moto does not
                actual = base64.b64encode(hashlib.sha256(await request.body()).digest()).decode()
                if actual != checksum:
                    return Response("<Error><Code>BadDigest</Code></Error>", 400)
            async with httpx.AsyncClient() as client:
                upstream = await client.request(
                    request.method,
                    self.upstream + request.url.path,
                    params=list(request.query_params.multi_items()),
                    headers=[(k, v) for k, v in request.headers.items() if k != "host"],
                    content=await request.body(),
                )
            headers = {k: v for k, v in upstream.headers.items() if k not in hop_by_hop}
            if request.method == "HEAD" and "content-length" in upstream.headers:
                headers["content-length"] = upstream.headers["content-length"]
            return Response(upstream.content, upstream.status_code, headers=headers)

        methods = ["GET", "HEAD", "PUT", "POST", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])

    async def __aenter__(self) -> PresignGateway:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=0, log_level="warning")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task


# -- the aecflow host ----------------------------------------------------------------------


def host_settings(data_dir: Any, database_url: str, storage: Mapping[str, Any]) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": str(data_dir),
            "database": {"url": database_url},
            "storage": {"backend": "s3", **storage},
            "notifiers": [],
            "worker": {"embedded": True, "poll_interval_s": 0.05},
            "breakers": {"failure_threshold": 2, "reset_timeout_s": 1.0},
            "auth": {"mode": "none"},  # a loopback test server; auth has its own tests
        }
    )
