"""Uppy's AwsS3 plugin against /v1/uppy: a client that makes exactly the calls
@uppy/aws-s3 makes with ``endpoint`` set (its request client's OPTIONS to learn the allowed
headers, ``POST s3/multipart``, ``GET s3/multipart/{uploadId}/{partNumber}?key=``, part PUTs
straight to S3 (moto) reading each ETag, ``GET s3/multipart/{uploadId}?key=`` when resuming,
``POST .../complete?key=`` with the ETags, ``DELETE`` to cancel), then the file is recorded
and processed like any other."""

from __future__ import annotations

import hashlib
import math
import os
import urllib.parse
from pathlib import Path

import httpx
from s3_support import MIB, Bucket, host_settings, live_host
from test_s3_flow import TINY_IFC, poll, s3_table

from aecflow.actor import Role

ENDPOINT = "/v1/uppy"


class UppyAwsS3:
    """The HTTP calls of @uppy/aws-s3 (``createMultipartUpload``, ``signPart``, ``listParts``,
    ``completeMultipartUpload``, ``abortMultipartUpload``) and its part upload."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.wanted = headers
        self.headers: dict[str, str] | None = None

    async def _headers(self) -> dict[str, str]:
        # companion-client's preflight: keep only the headers the server says it allows
        if self.headers is None:
            answer = await self.client.options(f"{ENDPOINT}/s3/multipart")
            allowed = {
                h.strip().lower()
                for h in answer.headers.get("access-control-allow-headers", "").split(",")
            }
            if not allowed or allowed == {""}:
                allowed = {"accept", "content-type", "uppy-auth-token"}
            self.headers = {k: v for k, v in self.wanted.items() if k.lower() in allowed}
        return self.headers

    async def call(self, method: str, path: str, json: object = None) -> httpx.Response:
        headers = {"Accept": "application/json", **await self._headers()}
        if json is not None:
            headers["Content-Type"] = "application/json"
        return await self.client.request(method, f"{ENDPOINT}/{path}", json=json, headers=headers)

    @staticmethod
    def chunk_size(size: int) -> int:
        return max(math.ceil(size / 10000), 5 * MIB)

    async def create(self, name: str, type_: str, meta: dict[str, str]) -> dict:
        answer = await self.call(
            "POST", "s3/multipart", {"filename": name, "type": type_, "metadata": meta}
        )
        assert answer.status_code < 300, answer.text
        return answer.json()

    async def sign(self, upload: dict, number: int) -> dict:
        key = urllib.parse.quote(upload["key"], safe="")
        answer = await self.call("GET", f"s3/multipart/{upload['uploadId']}/{number}?key={key}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def put(self, signed: dict, body: bytes) -> str:
        async with httpx.AsyncClient(timeout=30) as s3:
            answer = await s3.request(
                signed.get("method", "PUT"),
                signed["url"],
                content=body,
                headers=signed.get("headers") or {},
            )
        assert answer.status_code == 200, answer.text
        return answer.headers["etag"]

    async def list_parts(self, upload: dict) -> list[dict]:
        key = urllib.parse.quote(upload["key"], safe="")
        answer = await self.call("GET", f"s3/multipart/{upload['uploadId']}?key={key}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def complete(self, upload: dict, parts: list[dict]) -> httpx.Response:
        key = urllib.parse.quote(upload["key"], safe="")
        return await self.call(
            "POST", f"s3/multipart/{upload['uploadId']}/complete?key={key}", {"parts": parts}
        )

    async def abort(self, upload: dict) -> httpx.Response:
        key = urllib.parse.quote(upload["key"], safe="")
        return await self.call("DELETE", f"s3/multipart/{upload['uploadId']}?key={key}")


async def test_uppy_sends_parts_to_s3_resumes_and_the_file_is_processed(
    tmp_path: Path, bucket: Bucket, database_url: str
) -> None:
    data = TINY_IFC + b"/*" + os.urandom(12 * MIB) + b"*/\n"
    base = host_settings(tmp_path / "data", database_url, s3_table(bucket))
    settings = base.model_copy(update={"auth": base.auth.model_copy(update={"mode": "token"})})
    async with (
        live_host(settings) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        _, token = await app.state.flow.create_token(
            name="browser", role=Role.WRITER, projects=["tower-a"]
        )
        uppy = UppyAwsS3(client, {"Authorization": f"Bearer {token}"})
        meta = {"name": "Tower A.ifc", "type": "application/x-step", "project": "tower-a"}
        upload = await uppy.create("Tower A.ifc", "application/x-step", meta | {"phase": "design"})
        assert set(upload) == {"uploadId", "key"}
        assert uppy.headers == {"Authorization": f"Bearer {token}"}  # the token survived

        size = uppy.chunk_size(len(data))
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert len(chunks) == 3
        done = []
        for number in (1, 2):  # then the tab is closed; Uppy restores from its state
            signed = await uppy.sign(upload, number)
            assert signed["url"].startswith(bucket.moto.endpoint)
            done.append({"PartNumber": number, "ETag": await uppy.put(signed, chunks[number - 1])})
        listed = await uppy.list_parts(upload)
        assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, size), (2, size)]
        assert [p["ETag"] for p in listed] == [p["ETag"] for p in done]
        signed = await uppy.sign(upload, 3)
        done.append({"PartNumber": 3, "ETag": await uppy.put(signed, chunks[2])})

        completed = await uppy.complete(upload, done)
        assert completed.status_code in (200, 201), completed.text
        body = completed.json()
        assert body["location"] == f"/v1/files/{body['file']['id']}"
        client.headers["Authorization"] = f"Bearer {token}"
        answer = await poll(
            client,
            f"/v1/files/{body['file']['id']}",
            lambda r: r.json()["status"] in ("processed", "failed"),
        )
        record = answer.json()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()  # read back by the server
        assert record["size"] == len(data) and record["filename"] == "Tower A.ifc"
        assert record["metadata"] == {"phase": "design"}
        assert record["processing"]["result"]["schema"] == "IFC4"
        assert bucket.multipart_uploads() == []


async def test_uppy_cancel_and_refusals(tmp_path: Path, bucket: Bucket, database_url: str) -> None:
    settings = host_settings(tmp_path / "data", database_url, s3_table(bucket))
    async with (
        live_host(settings) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        uppy = UppyAwsS3(client, {})
        no_project = await uppy.call(
            "POST", "s3/multipart", {"filename": "a.ifc", "type": "", "metadata": {}}
        )
        assert no_project.status_code == 400
        assert no_project.json()["error"]["code"] == "project_required"
        upload = await uppy.create("a.ifc", "application/x-step", {"project": "tower-a"})
        await uppy.put(await uppy.sign(upload, 1), b"x" * (5 * MIB))
        assert len(bucket.multipart_uploads()) == 1
        cancelled = await uppy.abort(upload)
        assert cancelled.status_code == 200
        assert bucket.multipart_uploads() == []
        after = await uppy.call("GET", f"s3/multipart/{upload['uploadId']}/1?key=x")
        assert after.status_code == 409
        empty = await uppy.create("b.ifc", "application/x-step", {"project": "tower-a"})
        nothing = await uppy.complete(empty, [])
        assert nothing.status_code == 409
        assert nothing.json()["error"]["code"] == "upload_incomplete"


async def test_tus_says_it_cannot_use_s3(tmp_path: Path, bucket: Bucket, database_url: str) -> None:
    settings = host_settings(tmp_path / "data", database_url, s3_table(bucket))
    async with (
        live_host(settings) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        answer = await client.post(
            "/v1/tus/",
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Length": "5",
                "Upload-Metadata": "project dG93ZXItYQ==,filename YS5pZmM=",
            },
        )
        assert answer.status_code == 501
        assert answer.json()["error"]["code"] == "tus_unsupported_storage"
        assert bucket.multipart_uploads() == []
