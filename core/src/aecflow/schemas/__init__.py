"""Pydantic models of every JSON shape the API answers with or accepts (the contract layer).

The records, the CLI's ``--json``, the client, request validation and OpenAPI's
``components.schemas`` all come from these, so each shape is written once. This package
imports only pydantic, the standard library and aecflow's other contract modules.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from aecflow.schemas.common import REF_TEMPLATE
from aecflow.schemas.files import (
    FILE_STATUSES,
    PROCESSING_KEYS,
    Artifact,
    ArtifactList,
    Failure,
    FilePage,
    FileRecord,
    Page,
    Pipeline,
    PipelineUpdate,
    Processing,
    Step,
)
from aecflow.schemas.ops import (
    AuditPage,
    AuditRow,
    Breaker,
    Check,
    DeadLetter,
    DeadLetterPage,
    Error,
    Health,
    Me,
    Plugin,
    PluginPage,
    Ready,
    Redelivered,
    TokenInfo,
)
from aecflow.schemas.uploads import (
    SESSION_STATUSES,
    NewUploadSession,
    PartReceipt,
    UploadPart,
    UploadSession,
    UploadSessionList,
)

__all__ = [
    "FILE_STATUSES",
    "PROCESSING_KEYS",
    "SESSION_STATUSES",
    "Artifact",
    "ArtifactList",
    "AuditPage",
    "AuditRow",
    "Breaker",
    "Check",
    "DeadLetter",
    "DeadLetterPage",
    "Error",
    "Failure",
    "FilePage",
    "FileRecord",
    "Health",
    "Me",
    "NewUploadSession",
    "Page",
    "PartReceipt",
    "Pipeline",
    "PipelineUpdate",
    "Plugin",
    "PluginPage",
    "Processing",
    "Ready",
    "Redelivered",
    "Step",
    "TokenInfo",
    "UploadPart",
    "UploadSession",
    "UploadSessionList",
    "components",
]

#: What the HTTP API documents, in the order ``/docs`` shows them; requests are validated.
RESPONSES: tuple[type[BaseModel], ...] = (
    FileRecord,
    Processing,
    FilePage,
    Step,
    Artifact,
    ArtifactList,
    Pipeline,
    Error,
    DeadLetter,
    DeadLetterPage,
    UploadSession,
    UploadSessionList,
    UploadPart,
    PartReceipt,
    Redelivered,
    AuditRow,
    AuditPage,
    Plugin,
    PluginPage,
    Check,
    Breaker,
    Ready,
    Health,
    Me,
)
REQUESTS: tuple[type[BaseModel], ...] = (NewUploadSession, PipelineUpdate)


def components() -> dict[str, dict[str, Any]]:
    """OpenAPI ``components.schemas``: every model and every model it uses, by class name."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "serialization") for model in RESPONSES),
        *((model, "validation") for model in REQUESTS),
    ]
    _, found = models_json_schema(wanted, ref_template=REF_TEMPLATE)
    defs: dict[str, dict[str, Any]] = found.get("$defs", {})
    order = [model.__name__ for model, _ in wanted]
    ordered = {name: defs[name] for name in order} | {
        name: schema for name, schema in defs.items() if name not in order
    }
    return {name: _tidy(schema) for name, schema in ordered.items()}


def _tidy(node: Any) -> Any:
    """Without pydantic's generated ``title``s (the names are the keys already) and ``null``
    defaults (an optional key is left out, not sent as ``null``)."""
    if isinstance(node, dict):
        return {k: _tidy(v) for k, v in node.items() if not _generated(k, v)}
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    return node


def _generated(key: str, value: Any) -> bool:
    return (key == "title" and isinstance(value, str)) or (key == "default" and value is None)
