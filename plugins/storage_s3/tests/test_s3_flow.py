"""The whole journey over HTTP with S3 as the backend, and S3 going away and coming back."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
from s3_support import MIB, Bucket, MotoServer, host_settings, live_host

TINY_IFC = (
    b"ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('ViewDefinition [CoordinationView]'),'2;1');\n"
    b"FILE_NAME('t.ifc','2024-01-01T00:00:00',('a'),('o'),'pre','app','');\n"
    b"FILE_SCHEMA(('IFC4'));\nENDSEC;\nDATA;\n"
    b"#1=IFCPERSON($,$,'A',$,$,$,$,$);\n#2=IFCORGANIZATION($,'O',$,$,$);\n"
    b"#3=IFCPERSONANDORGANIZATION(#1,#2,$);\n"
    b"#4=IFCPROJECT('0000000000000000000001',$,'Tiny',$,$,$,$,$,$);\n"
    b"ENDSEC;\nEND-ISO-10303-21;\n"
)


def s3_table(bucket: Bucket, **extra: Any) -> dict[str, Any]:
    return {
        "bucket": bucket.name,
        "endpoint_url": bucket.moto.endpoint,
        "prefix": "aecflow",
        "region": bucket.region,
        "pin_region": True,
        "part_size": 5 * MIB,
        "max_retries": 1,
        "retry_timeout_s": 5,
        **extra,
    }


async def poll(client: httpx.AsyncClient, path: str, until: Any, attempts: int = 600) -> Any:
    """GET ``path`` until ``until(response)``; a bounded number of tries, not a time limit."""
    for _ in range(attempts):
        response = await client.get(path)
        if until(response):
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path}: {response.status_code} {response.text}")


async def test_the_whole_journey_with_s3(tmp_path: Path, bucket: Bucket, database_url: str) -> None:
    big = b"first line\n" + os.urandom(7 * MIB) + b"\nlast line\n"  # two parts of 5 MiB
    settings = host_settings(tmp_path / "data", database_url, s3_table(bucket))
    async with (
        live_host(settings) as (url, _app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text

        response = await client.post(
            "/v1/projects/tower-a/files?filename=Tower%20A.ifc",
            content=TINY_IFC,
            headers={"X-Aecflow-Meta-Phase": "design", "Content-Type": "application/x-step"},
        )
        assert response.status_code == 201, response.text
        model = response.json()
        response = await client.post(
            "/v1/projects/tower-a/files?filename=scan.bin",
            content=big,
            headers={"Content-SHA256": hashlib.sha256(big).hexdigest()},
        )
        assert response.status_code == 201, response.text
        scan = response.json()
        assert scan["size"] == len(big) and scan["sha256"] == hashlib.sha256(big).hexdigest()

        # The worker read the model back from S3 into its child process and processed it.
        done = await poll(
            client,
            f"/v1/files/{model['id']}",
            lambda r: r.json()["processing"]["outcome"] is not None,
        )
        processing = done.json()["processing"]
        assert processing["outcome"] == "succeeded", processing
        assert processing["result"]["schema"] == "IFC4"

        # Stored in the bucket under the prefix, encrypted, with the core's metadata.
        key = f"aecflow/tower-a/{scan['id']}"
        head = bucket.s3.head_object(Bucket=bucket.name, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        assert head["Metadata"] == {"project": "tower-a", "file-id": scan["id"]}
        assert head["ContentLength"] == len(big)
        assert bucket.multipart_uploads() == []

        content = await client.get(f"/v1/files/{scan['id']}/content")
        assert content.status_code == 200 and content.content == big
        partial = await client.get(
            f"/v1/files/{scan['id']}/content", headers={"Range": "bytes=5242870-5242889"}
        )
        assert partial.status_code == 206 and partial.content == big[5242870:5242890]

        redirect = await client.get(f"/v1/files/{model['id']}/download?expires=600")
        assert redirect.status_code == 307
        location = redirect.headers["location"]
        assert location.startswith(f"{bucket.moto.endpoint}/{bucket.name}/aecflow/tower-a/")
        assert "X-Amz-Expires=600" in location
        async with httpx.AsyncClient() as outside:
            downloaded = await outside.get(location)
        assert downloaded.content == TINY_IFC
        assert 'filename="Tower A.ifc"' in downloaded.headers["content-disposition"]

        purged = await client.delete(f"/v1/files/{scan['id']}?purge=true")
        assert purged.status_code == 200, purged.text
        assert key not in bucket.object_keys()
        assert (await client.get(f"/v1/files/{scan['id']}/content")).status_code == 404


async def test_s3_going_away_opens_the_breaker_and_service_resumes(
    tmp_path: Path, moto: MotoServer, bucket: Bucket
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'aecflow.db'}"
    settings = host_settings(tmp_path / "data", database, s3_table(bucket))
    upload = "/v1/projects/p/files?filename=a.bin"
    async with (
        live_host(settings) as (url, app),
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert (await client.post(upload, content=b"before")).status_code == 201
        moto.stop()
        try:
            ready = await client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["storage"]["status"] == "error"

            # The failed readiness check counted against the breaker (threshold 2), and so
            # does the next upload ...
            failed = await client.post(upload, content=b"during")
            assert failed.status_code == 503
            assert failed.json()["error"]["code"] == "storage_unavailable"
            # ... then requests fail fast, without reaching S3, until the cool-down ends.
            refused = await client.post(upload, content=b"during")
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "circuit_open"
            assert "retry-after" in refused.headers
            ready = await client.get("/ready")
            breaker = next(b for b in ready.json()["breakers"] if b["name"] == "storage")
            assert ready.status_code == 503 and breaker["state"] == "open"
        finally:
            moto.start()  # the endpoint returns on the same port, with the same bucket

        # The first call after the cool-down probes; it succeeds and closes the circuit.
        for _ in range(1000):  # a bound on tries, not a time limit
            stored = await client.post(upload, content=b"after")
            if stored.status_code != 503:
                break
            assert stored.json()["error"]["code"] == "circuit_open"
            await asyncio.sleep(0.05)
        assert stored.status_code == 201, stored.text
        assert app.state.flow.breakers["storage"].state.value == "closed"
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert len(bucket.object_keys()) == 2
