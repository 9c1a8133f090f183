"""Value types shared by the models: one place for each pattern, limit and format.

Each is an ``Annotated`` type, so a field states what it holds once and both the validation
and the JSON Schema (OpenAPI ``components.schemas``) follow from it. Patterns are written for
ECMA-262, since the schema is read by JSON Schema tools, not only by Python.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from aecflow.validation import (
    MAX_FILENAME_BYTES,
    MAX_METADATA_ENTRIES,
    MAX_METADATA_VALUE,
    METADATA_KEY_RE,
    PROJECT_RE,
)

#: Where the models' schemas live in the OpenAPI document.
REF_TEMPLATE = "#/components/schemas/{model}"

#: ASCII and C1 control characters; the server also refuses Unicode format characters (Cf).
CONTROLS = "\\u0000-\\u001f\\u007f-\\u009f"
#: Not empty, ``.`` or ``..``; no control character, slash or backslash; no space at either end.
FILENAME_PATTERN = (
    f"^(?!\\.\\.?$)[^{CONTROLS}/\\\\\\s](?:[^{CONTROLS}/\\\\]*[^{CONTROLS}/\\\\\\s])?$"
)
META_VALUE: dict[str, Any] = {
    "type": "string",
    "maxLength": MAX_METADATA_VALUE,
    "pattern": f"^[^{CONTROLS}]*$",
}
METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": METADATA_KEY_RE.pattern, "maxLength": 64},
    "additionalProperties": META_VALUE,
    "maxProperties": MAX_METADATA_ENTRIES,
}
META_RULES = (
    f"Keys are 1-64 lower-case letters, digits, `_`, `.` or `-`; values at most "
    f"{MAX_METADATA_VALUE} characters without control characters; at most "
    f"{MAX_METADATA_ENTRIES} entries."
)
SHA256_PATTERN = "^[0-9a-f]{64}$"
#: A SHA-256 the client declares: hex in either case; the server trims surrounding whitespace.
DECLARED_SHA256_PATTERN = "^\\s*[0-9a-fA-F]{64}\\s*$"

#: Documented, not enforced on output: what the server wrote it already checked.
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Project = Annotated[
    str,
    Field(json_schema_extra={"pattern": PROJECT_RE.pattern, "minLength": 1, "maxLength": 64}),
]
Metadata = Annotated[dict[str, str], Field(json_schema_extra=METADATA_SCHEMA)]
Sha256 = Annotated[str, Field(json_schema_extra={"pattern": SHA256_PATTERN})]
DateTime = dt.datetime
#: A time already written as ISO 8601 text (inside stored JSON), passed on as it is.
IsoTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
MAX_FILENAME = MAX_FILENAME_BYTES


class Shape(BaseModel):
    """A JSON object the API answers with: exactly these keys (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid")
