"""The JSON shapes are pydantic models (``aecflow.schemas``): the records, the session views,
the OpenAPI components and request validation all come from them, so each is written once."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from aecflow import schemas
from aecflow.errors import InvalidInput
from aecflow.host import openapi
from aecflow.host.sessions import _open_request
from aecflow.store import records
from aecflow.store.records import FileRecord, Page

#: What the contract layer may load: itself and the contract modules it builds on.
CONTRACT = {
    "aecflow",
    "aecflow.hookspecs",
    "aecflow.errors",
    "aecflow.processing",
    "aecflow.validation",
    "aecflow.parts",
}

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=dt.UTC)


def _row(**processing: object) -> dict[str, object]:
    return {
        "id": "0190a5a8-0000-7000-8000-000000000000",
        "project": "tower-a",
        "filename": "a.ifc",
        "size": 3,
        "sha256": "0" * 64,
        "content_type": None,
        "status": "processed",
        "meta": {"phase": "design"},
        "processing": processing,
        "created_at": NOW,
        "updated_at": NOW,
        "deleted_at": None,
        "purged_at": None,
        "storage_backend": "local",
        "storage_key": "tower-a/x",
    }


def test_the_openapi_components_are_the_models() -> None:
    components = openapi.document()["components"]["schemas"]
    assert components == schemas.components()
    record = components["FileRecord"]
    assert record["required"] == list(schemas.FileRecord.model_fields)
    assert record["additionalProperties"] is False
    assert components["Processing"]["required"] == list(schemas.PROCESSING_KEYS)
    assert components["FilePage"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/FileRecord"
    }
    assert "title" not in record and "title" not in record["properties"]["id"]


def test_a_record_is_dumped_by_its_model() -> None:
    data = FileRecord.from_row(_row(outcome="succeeded", result={"warnings": ["partial"]}))
    shown = data.as_dict()
    assert list(shown) == list(schemas.FileRecord.model_fields)
    assert shown["created_at"] == "2026-01-02T03:04:05.600000Z"
    assert shown["deleted_at"] is None
    assert list(shown["processing"]) == list(schemas.PROCESSING_KEYS)
    assert shown["processing"]["warnings"] == ["partial"]
    # a key a run wrote beyond the fixed ones is kept; one it did not write is not invented
    kept = FileRecord.from_row(_row(attempts=2, note="x")).as_dict()["processing"]
    assert (kept["attempts"], kept["note"]) == (2, "x")


def test_a_record_the_model_refuses_is_not_shown() -> None:
    with pytest.raises(ValidationError):
        FileRecord.from_row(_row() | {"status": "lost"}).as_dict()


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"size": 10}, "invalid_filename", "a filename is required"),
        ({"filename": "", "size": None}, "invalid_filename", "a filename is required"),
        ({"filename": 5, "size": 10}, "invalid_filename", "'filename' has the wrong type"),
        ({"filename": "a", "size": None}, "invalid_size", "size (in bytes) is required"),
        ({"filename": "a", "size": True}, "invalid_size", "'size' has the wrong type"),
        ({"filename": "a", "size": 1.0}, "invalid_size", "'size' has the wrong type"),
        ({"filename": "a", "size": 1, "part_size": "5"}, "invalid_part_size", None),
        ({"filename": "a", "size": 1, "metadata": []}, "invalid_metadata", None),
        ({"filename": "a", "size": 1, "b": 1, "a": 2}, "invalid_json", "unknown fields: a, b"),
    ],
)
def test_the_open_request_model_refuses_with_the_api_codes(
    body: dict[str, object], code: str, message: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        _open_request(body)
    assert caught.value.code == code
    if message is not None:
        assert caught.value.message == message


def test_the_open_request_model_passes_nulls_as_left_out() -> None:
    body = _open_request({"filename": "a", "size": 7, "sha256": None, "metadata": {"k": "v"}})
    assert (body.filename, body.size) == ("a", 7)
    assert body.arguments() == {
        "sha256": None,
        "part_size": None,
        "part_sha256": None,
        "content_type": None,
        "metadata": {"k": "v"},
    }


def test_the_schemas_import_only_the_contract_layer() -> None:
    code = (
        "import sys, aecflow.schemas; "
        "print('\\n'.join(m for m in sys.modules if m.split('.')[0] == 'aecflow'))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    outside = {m for m in loaded if not m.startswith("aecflow.schemas")} - CONTRACT
    assert not outside, outside


def test_the_host_s_json_bytes_are_the_record_s_dict() -> None:
    record = FileRecord.from_row(_row(outcome="succeeded", result={"names": ["é", 1.5, None]}))
    for item in (record, Page([record, record], "next")):
        assert json.loads(records.as_json(item)) == item.as_dict()
