"""Processing pipelines over HTTP: several isolated steps per file, artifacts, one-step
reprocessing, purge. FZK-Haus through ifc, ifc-validate, ifc-ids, ifc-csv and a crashing step;
a step past its time limit; duplex (IFC2X3) through ifc, ifc-validate and ifc-csv."""

from __future__ import annotations

import asyncio
import csv as csv_module
import hashlib
import io
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import aecflow
from aecflow.config import Settings
from aecflow.errors import ObjectNotFound
from aecflow.testing.live import live_host

from . import isolation_processors
from .conftest import SAMPLES, make_settings

pytestmark = pytest.mark.skipif(not SAMPLES.exists(), reason=f"no samples at {SAMPLES}")

FZK = SAMPLES / "AC20-FZK-Haus.ifc"
OPEN_HOUSE = SAMPLES / "IfcOpenHouse_IFC4.ifc"
DUPLEX = SAMPLES / "duplex.ifc"
#: A requirement FZK-Haus fails: every wall must have a property it does not have.
IDS = """<?xml version="1.0" encoding="UTF-8"?>
<ids xmlns="http://standards.buildingsmart.org/IDS"
     xmlns:xs="http://www.w3.org/2001/XMLSchema"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:schemaLocation="http://standards.buildingsmart.org/IDS http://standards.buildingsmart.org/IDS/1.0/ids.xsd">
  <info><title>walls need a fire rating</title></info>
  <specifications>
    <specification name="Walls have AecflowTest.FireCode" ifcVersion="IFC4">
      <applicability minOccurs="1" maxOccurs="unbounded">
        <entity><name><simpleValue>IFCWALL</simpleValue></name></entity>
      </applicability>
      <requirements>
        <property dataType="IFCLABEL">
          <propertySet><simpleValue>AecflowTest</simpleValue></propertySet>
          <baseName><simpleValue>FireCode</simpleValue></baseName>
        </property>
      </requirements>
    </specification>
  </specifications>
</ids>
"""
STEPS = ["ifc", "ifc-validate", "ifc-ids", "ifc-csv"]


class FaultyStepsPlugin:
    """Steps that fail on purpose (only where a pipeline names them): one crashes, one stalls."""

    @staticmethod
    @aecflow.hookimpl
    def register_processors(registry) -> None:
        no_config = isolation_processors.NoConfig
        registry.add("t-ifc-crash", isolation_processors.IfcCrash, config=no_config)
        registry.add("t-ifc-stall", isolation_processors.IfcStall, config=no_config)


def _pipeline_settings(tmp_path: Path, database_url: str, **processing: Any) -> Settings:
    """No auth, an embedded worker polling fast, one attempt per step, two steps at a time."""
    return make_settings(
        tmp_path,
        database_url,
        auth={"mode": "none"},
        worker={"embedded": True, "poll_interval_s": 0.05},
        processing={"max_attempts": 1, "concurrency": 2, **processing},
    )


async def _upload_settled(
    client: httpx.AsyncClient, project: str, filename: str, data: bytes
) -> tuple[str, dict[str, Any]]:
    """Upload over HTTP and wait until every step ended: the file id and its record."""
    created = await client.post(f"/v1/projects/{project}/files?filename={filename}", content=data)
    assert created.status_code == 201, created.text
    file_id = created.json()["id"]
    return file_id, await _settled(client, file_id)


async def _settled(
    client: httpx.AsyncClient, file_id: str, within_s: float = 300
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while True:
        record = (await client.get(f"/v1/files/{file_id}")).json()
        if record["status"] in ("processed", "failed") and all(
            s["outcome"] is not None for s in record["steps"].values()
        ):
            return record
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.3)


async def _assert_artifacts_byte_identical(
    client: httpx.AsyncClient, flow: Any, file_id: str, listed: list[dict[str, Any]]
) -> None:
    """Each artifact downloads over HTTP as the bytes in storage, with the listed size and hash."""
    for artifact in listed:
        content = await client.get(f"/v1/files/{file_id}/artifacts/{artifact['name']}/content")
        assert content.status_code == 200
        assert hashlib.sha256(content.content).hexdigest() == artifact["sha256"]
        assert len(content.content) == artifact["size"]
        row = await flow.artifact(file_id, artifact["name"])
        stored = b"".join([c async for c in flow.storage.open(row.storage_key)])
        assert stored == content.content


async def test_fzk_haus_through_a_pipeline_over_http(tmp_path: Path, database_url: str) -> None:
    ids_file = tmp_path / "walls.ids"
    ids_file.write_text(IDS, encoding="utf-8")
    settings = _pipeline_settings(
        tmp_path,
        database_url,
        pipeline=["ifc"],
        projects={"fzk": {"pipeline": [*STEPS, "t-ifc-crash"]}},
        processors={"ifc-ids": {"projects": {"fzk": [str(ids_file)]}}},
    )
    async with (
        live_host(settings, plugins=[("faulty", FaultyStepsPlugin)]) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=120) as client,
    ):
        flow = app.state.flow
        got = (await client.get("/v1/projects/fzk/pipeline")).json()
        assert got == {
            "project": "fzk",
            "pipeline": [*STEPS, "t-ifc-crash"],
            "source": "project_config",
        }
        other = (await client.get("/v1/projects/other/pipeline")).json()
        assert (other["pipeline"], other["source"]) == (["ifc"], "config")

        file_id, record = await _upload_settled(
            client, "fzk", "AC20-FZK-Haus.ifc", FZK.read_bytes()
        )

        # every step ran and has its own outcome; the crash fails the file, naming itself
        steps = record["steps"]
        assert list(steps) == [*STEPS, "t-ifc-crash"]
        assert {n: steps[n]["outcome"] for n in STEPS} == dict.fromkeys(STEPS, "succeeded")
        assert steps["t-ifc-crash"]["outcome"] == "crashed"
        assert record["status"] == "failed"
        assert record["failure"]["step"] == "t-ifc-crash"
        assert "exited with code 3" in record["failure"]["error"]
        # the primary step is still the record's processing
        assert (record["processing"]["processor"], record["processing"]["outcome"]) == (
            "ifc",
            "succeeded",
        )
        assert record["processing"]["result"]["product_count"] == 127

        # the IDS the model fails is reported as a failed specification
        ids_result = steps["ifc-ids"]["result"]
        assert ids_result["ids"][0]["ids"] == "walls.ids", ids_result
        spec = ids_result["ids"][0]["specifications"][0]
        assert spec["status"] == "failed", spec

        # artifacts: listed, and downloaded byte-identical to what the step wrote
        listed = (await client.get(f"/v1/files/{file_id}/artifacts")).json()["items"]
        by_step = {a["step"] for a in listed}
        assert {"ifc-validate", "ifc-ids", "ifc-csv"} <= by_step, listed
        names = {a["name"] for a in listed}
        assert "elements.csv" in names
        await _assert_artifacts_byte_identical(client, flow, file_id, listed)
        csv = (await client.get(f"/v1/files/{file_id}/artifacts/elements.csv/content")).text
        assert csv.splitlines()[0] == "global_id,class,name,storey,type,material"
        missing = await client.get(f"/v1/files/{file_id}/artifacts/nope.json/content")
        assert missing.status_code == 404

        # reprocess one step: only that one runs again; the others keep their runs
        before = steps["ifc-csv"]["finished_at"]
        csv_before = steps["ifc-validate"]["finished_at"]
        again = await client.post(f"/v1/files/{file_id}/reprocess?step=ifc-csv")
        assert again.status_code == 202, again.text
        assert again.json()["steps"]["ifc-csv"]["outcome"] is None
        record = await _settled(client, file_id)
        assert record["steps"]["ifc-csv"]["outcome"] == "succeeded"
        assert record["steps"]["ifc-csv"]["finished_at"] != before
        assert record["steps"]["ifc-validate"]["finished_at"] == csv_before
        unknown = await client.post(f"/v1/files/{file_id}/reprocess?step=nope")
        assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_step"

        # the API overrides the configuration, and DELETE falls back to it
        put = await client.put("/v1/projects/fzk/pipeline", json={"pipeline": ["ifc", "ifc-csv"]})
        assert put.json() == {"project": "fzk", "pipeline": ["ifc", "ifc-csv"], "source": "api"}
        bad = await client.put("/v1/projects/fzk/pipeline", json={"pipeline": ["nope"]})
        assert bad.status_code == 400
        gone = await client.delete("/v1/projects/fzk/pipeline")
        assert gone.json()["source"] == "project_config"

        # step events beside the file-level ones
        import sqlalchemy as sa

        from aecflow.store.schema import outbox

        async with flow.engine.connect() as conn:
            events = (
                await conn.execute(
                    sa.select(outbox.c.event_type, outbox.c.payload)
                    .where(outbox.c.file_id == file_id)
                    .order_by(outbox.c.id)
                )
            ).all()
        kinds = [kind for kind, _ in events]
        assert kinds.count("file.step_succeeded") == len(STEPS) + 1  # ifc-csv ran twice
        failed = [p for kind, p in events if kind == "file.step_failed"]
        assert [p["step"] for p in failed] == ["t-ifc-crash"]
        assert kinds.count("file.processing_failed") == 2  # the first run and the rerun

        # purge removes the artifacts, rows and objects
        keys = [(await flow.artifact(file_id, a["name"])).storage_key for a in listed[:1]]
        purged = await client.delete(f"/v1/files/{file_id}?purge=true")
        assert purged.status_code == 200, purged.text
        assert (await client.get(f"/v1/files/{file_id}/artifacts")).status_code == 404
        async with flow.engine.connect() as conn:
            from aecflow.store import pipelines as pipeline_rows

            assert await pipeline_rows.list_artifacts(conn, file_id) == []
        for key in keys:
            with pytest.raises(ObjectNotFound):
                async for _ in flow.storage.open(key):
                    pass


async def test_a_step_past_its_time_limit_times_out_and_fails_the_file(
    tmp_path: Path, database_url: str
) -> None:
    """Only the stalled step is cut off at its own limit; the steps beside it still succeed."""
    pipeline = ["ifc", "t-ifc-stall", "ifc-csv"]
    settings = _pipeline_settings(
        tmp_path,
        database_url,
        pipeline=pipeline,
        processors={"t-ifc-stall": {"timeout_s": 1.5}},
    )
    async with (
        live_host(settings, plugins=[("faulty", FaultyStepsPlugin)]) as (url, _app),
        httpx.AsyncClient(base_url=url, timeout=120) as client,
    ):
        _file_id, record = await _upload_settled(
            client, "p", "IfcOpenHouse_IFC4.ifc", OPEN_HOUSE.read_bytes()
        )

        steps = record["steps"]
        assert list(steps) == pipeline
        assert {n: steps[n]["outcome"] for n in pipeline} == {
            "ifc": "succeeded",
            "t-ifc-stall": "timed_out",
            "ifc-csv": "succeeded",
        }
        assert steps["t-ifc-stall"]["error"] == "exceeded the wall-clock limit of 1.5 s"
        assert record["status"] == "failed"
        assert record["failure"] == {
            "step": "t-ifc-stall",
            "outcome": "timed_out",
            "error": "exceeded the wall-clock limit of 1.5 s",
        }


async def test_duplex_through_ifc_validate_and_csv_over_http(
    tmp_path: Path, database_url: str
) -> None:
    """A second real model (IFC2X3, not FZK-Haus) through the artifact-writing steps."""
    pipeline = ["ifc", "ifc-validate", "ifc-csv"]
    settings = _pipeline_settings(tmp_path, database_url, pipeline=pipeline)
    async with (
        live_host(settings) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=120) as client,
    ):
        file_id, record = await _upload_settled(client, "p", "duplex.ifc", DUPLEX.read_bytes())

        steps = record["steps"]
        assert {n: steps[n]["outcome"] for n in steps} == dict.fromkeys(pipeline, "succeeded")
        assert record["status"] == "processed", record
        listed = (await client.get(f"/v1/files/{file_id}/artifacts")).json()["items"]
        assert {"ifc-validate", "ifc-csv"} <= {a["step"] for a in listed}, listed
        await _assert_artifacts_byte_identical(client, app.state.flow, file_id, listed)
        csv = (await client.get(f"/v1/files/{file_id}/artifacts/elements.csv/content")).text
        header, *rows = list(csv_module.reader(io.StringIO(csv)))
        assert header[:6] == ["global_id", "class", "name", "storey", "type", "material"]
        # the CSV holds the rows the step counted, each a distinct element of this model
        csv_result = steps["ifc-csv"]["result"]
        assert csv_result["schema"] == "IFC2X3"
        assert len(rows) == csv_result["rows"] > 100
        assert len({row[0] for row in rows}) == len(rows)
        assert {"IfcWallStandardCase", "IfcDoor", "IfcWindow"} <= {row[1] for row in rows}
