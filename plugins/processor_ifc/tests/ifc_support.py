"""Helpers shared by the IFC processor tests (a plain module: no conftest name clashes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from aecflow.processing import ProcessingContext
from aecflow_processor_ifc import IfcProcessor, IfcProcessorConfig

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = Path(os.environ.get("AECFLOW_IFC_SAMPLES", ROOT.parent / "shared" / "samples" / "ifc"))

HEADER = (
    b"ISO-10303-21;\n"
    b"HEADER;\n"
    b"FILE_DESCRIPTION(('ViewDefinition [CoordinationView]'),'2;1');\n"
    b"FILE_NAME('t.ifc','2024-01-01T00:00:00',('a'),('o'),'pre','app','');\n"
    b"FILE_SCHEMA(('IFC4'));\n"
    b"ENDSEC;\n"
    b"DATA;\n"
)
BODY = (
    b"#1=IFCPERSON($,$,'A',$,$,$,$,$);\n"
    b"#2=IFCORGANIZATION($,'O',$,$,$);\n"
    b"#3=IFCPERSONANDORGANIZATION(#1,#2,$);\n"
    b"#4=IFCPROJECT('0000000000000000000001',$,'Tiny',$,$,$,$,$,$);\n"
)
FOOTER = b"ENDSEC;\nEND-ISO-10303-21;\n"
TINY = HEADER + BODY + FOOTER


def sample(name: str) -> Path:
    """A sample model by name; skips loudly when the shared samples are not there."""
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"IFC sample {path} is missing (set AECFLOW_IFC_SAMPLES)")
    return path


def context(path: Path) -> ProcessingContext:
    return ProcessingContext(
        file_id="f1", project="p", filename=path.name, size=path.stat().st_size
    )


def run(path: Path, config: IfcProcessorConfig | None = None) -> dict[str, Any]:
    """Process ``path`` in this process and return the result data."""
    return IfcProcessor(config).process(path, context(path)).data


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
