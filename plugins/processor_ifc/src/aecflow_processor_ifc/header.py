"""The STEP header: is this an IFC file at all, and in a schema IfcOpenShell reads?

Checked from the raw bytes before IfcOpenShell sees the file, for two reasons: IfcOpenShell's
own errors ("Unable to parse IFC SPF header") tell a person nothing about what they uploaded,
and a file in an unsupported schema should be refused by name without parsing anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aecflow.processing import InvalidInput

MAGIC = b"ISO-10303-21;"
BOM = b"\xef\xbb\xbf"
ZIP_MAGIC = b"PK\x03\x04"
#: How far into the file the header may reach (long FILE_DESCRIPTIONs exist, 1 MiB do not).
HEADER_LIMIT = 1 << 20

_COMMENT = re.compile(rb"/\*.*?(?:\*/|\Z)", re.S)
_FILE_SCHEMA = re.compile(rb"FILE_SCHEMA\s*\(\s*\((.*?)\)\s*\)\s*;", re.S)
_STRING = re.compile(rb"'((?:[^']|'')*)'")


@dataclass(frozen=True)
class HeaderCheck:
    """What the raw header says; ``schema`` is upper-case, as IfcOpenShell names schemas."""

    schema: str
    bom: bool


def is_step(head: bytes) -> bool:
    """Whether ``head`` starts like a STEP physical file (a UTF-8 BOM tolerated)."""
    return head.removeprefix(BOM).startswith(MAGIC)


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)


def describe_content(head: bytes) -> str:
    """A few words on what a non-IFC file looks like, for the error message."""
    text = head.removeprefix(BOM).lstrip()
    lowered = text[:256].lower()
    if not head:
        return "the file is empty"
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return "it is an HTML page (an error page saved instead of the model?)"
    if lowered.startswith(b"<?xml") or lowered.startswith(b"<"):
        return "it is XML (IFC-XML is not supported; export IFC as STEP, .ifc)"
    if text.startswith(b"%PDF"):
        return "it is a PDF document"
    if text[:1] in (b"{", b"["):
        return "it looks like JSON"
    if MAGIC in head[:4096]:
        return "'ISO-10303-21;' appears, but not at the start"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head[:512])
    if printable < 0.9 * min(len(head), 512):
        return "it is binary data"
    preview = head[:40].decode("ascii", errors="replace")
    return f"it starts with {preview!r}"


def check_header(path: Path) -> HeaderCheck:
    """Read the header of ``path`` and refuse what IfcOpenShell cannot read, by name."""
    with path.open("rb") as f:
        head = f.read(HEADER_LIMIT)
    if not is_step(head):
        what = describe_content(head)
        raise InvalidInput(f"not an IFC file: an IFC file starts with 'ISO-10303-21;', but {what}")
    bom = head.startswith(BOM)
    text = _COMMENT.sub(b" ", head)
    end = text.find(b"ENDSEC")
    header = text[: end if end >= 0 else len(text)]
    match = _FILE_SCHEMA.search(header)
    if match is None:
        where = "before ENDSEC" if end >= 0 else f"in the first {HEADER_LIMIT >> 20} MiB"
        raise InvalidInput(f"broken IFC header: no FILE_SCHEMA(('...')) {where}")
    names = [s.decode("ascii", errors="replace").strip() for s in _STRING.findall(match.group(1))]
    if not names or not names[0]:
        raise InvalidInput("broken IFC header: FILE_SCHEMA names no schema")
    schema = names[0].upper()
    supported = supported_schemas()
    if schema not in supported:
        from aecflow_processor_ifc.header_text import readable

        raise InvalidInput(
            f"{schema} is not supported; supported: {', '.join(supported)} "
            "(IfcOpenShell 0.9 reads these schemas only)",
            result=readable(header, head, schema),
        )
    return HeaderCheck(schema=schema, bom=bom)


def supported_schemas() -> list[str]:
    """The IFC schemas the installed IfcOpenShell reads (asked, not hard-coded)."""
    from ifcopenshell import ifcopenshell_wrapper

    return [s.upper() for s in ifcopenshell_wrapper.schema_names() if s.upper().startswith("IFC")]


def header_summary(model: Any) -> dict[str, Any]:
    """FILE_DESCRIPTION and FILE_NAME as IfcOpenShell decoded them (strings unescaped)."""
    header = model.header
    out: dict[str, Any] = {}
    try:
        description = header.file_description
        out["description"] = [str(s) for s in description.description]
        out["implementation_level"] = str(description.implementation_level)
    except Exception:  # a broken header entity costs its fields, not the summary
        pass
    try:
        name = header.file_name
        out.update(
            name=str(name.name),
            time_stamp=str(name.time_stamp),
            author=[str(s) for s in name.author],
            organization=[str(s) for s in name.organization],
            preprocessor_version=str(name.preprocessor_version),
            originating_system=str(name.originating_system),
            authorization=str(name.authorization),
        )
    except Exception:  # as above
        pass
    return out
