"""Broken inputs end with the right outcome and a message a person understands.

Each case is followed by a good file through the same processor instance: a bad file must
never leave the processor unable to do the next one. The cases that need a memory cap to
end (parentheses nested to exhaust memory, a model larger than the cap) run in a subprocess
in ``test_ifc_limits.py``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from ifc_support import BODY, FOOTER, HEADER, TINY, context, run, sample, write

from aecflow.processing import InvalidInput
from aecflow_processor_ifc import IfcProcessor

INVALID = {
    "empty": (b"", "the file is empty"),
    "random bytes": (random.Random(7).randbytes(5000), "it is binary data"),
    "html": (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML page"),
    "json": (b'{"model": "nope"}', "JSON"),
    "pdf": (b"%PDF-1.7\n...", "PDF"),
    "magic not first": (b"\n\n" + TINY, "appears, but not at the start"),
    "unknown schema": (
        TINY.replace(b"('IFC4')", b"('IFC9')"),
        "IFC9 is not supported; supported: IFC2X3, IFC4, IFC4X3_ADD2",
    ),
    "no FILE_SCHEMA": (TINY.replace(b"FILE_SCHEMA(('IFC4'));\n", b""), "no FILE_SCHEMA"),
    "header cut short": (HEADER[:70], "no FILE_SCHEMA"),
    "nested parentheses": (
        HEADER + BODY + b"#5=IFCPROPERTYSINGLEVALUE('a',$," + b"(" * 200_000 + b")" * 200_000
        + b",$);\n" + FOOTER,
        "parentheses are nested at byte",
    ),
    "only garbage instances": (
        HEADER + b"#1=IFCNOSUCHTHING(1);\n#2=IFCNOREALLY(2);\n" + FOOTER,
        "IfcOpenShell could read none of the 2 entity instances",
    ),
}  # fmt: skip

PARTIAL = {
    "truncated mid-entity": (
        HEADER + BODY + b"#5=IFCWALL('0000000000000000000002',$,'W",
        "probably truncated",
        {"warnings": 1, "loaded_entities": 5, "scanned_entities": 5},
    ),
    "missing ENDSEC": (
        HEADER + BODY,
        "probably truncated",
        {"warnings": 0, "loaded_entities": 4, "scanned_entities": 4},
    ),
    "junk line swallows an instance": (
        HEADER + BODY + b"hello world\n#5=IFCWALL('0000000000000000000002',$,'W',$,$,$,$,$,$);\n"
        + FOOTER,
        "read only 4",
        {"warnings": 0, "loaded_entities": 4, "scanned_entities": 5},
    ),
    "unknown entity": (
        HEADER + BODY + b"#5=IFCFOO(1);\n" + FOOTER,
        "Entity with name 'IFCFOO' not found",
        {"errors": 1, "loaded_entities": 4, "scanned_entities": 5},
    ),
    "duplicate instance name": (
        HEADER + BODY + b"#4=IFCPROJECT('0000000000000000000009',$,'Again',$,$,$,$,$,$);\n"
        + FOOTER,
        "Overwriting instance with name #4",
        {"warnings": 1, "loaded_entities": 4, "scanned_entities": 5},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def processor() -> IfcProcessor:
    """One processor for every case, as a worker would reuse it."""
    return IfcProcessor()


def process_good(processor: IfcProcessor, tmp_path: Path) -> None:
    """The next file after a bad one is summarised normally."""
    good = write(tmp_path / "good.ifc", TINY)
    data = processor.process(good, context(good)).data
    assert (data["project_name"], data["entity_count"], data["parse"]["partial"]) == (
        "Tiny",
        4,
        False,
    )


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_input(case: str, processor: IfcProcessor, tmp_path: Path) -> None:
    content, message = INVALID[case]
    path = write(tmp_path / "bad.ifc", content)
    with pytest.raises(InvalidInput) as caught:
        processor.process(path, context(path))
    assert message in str(caught.value)
    process_good(processor, tmp_path)


@pytest.mark.parametrize("case", sorted(PARTIAL))
def test_partial_parse(case: str, processor: IfcProcessor, tmp_path: Path) -> None:
    content, reason, numbers = PARTIAL[case]
    path = write(tmp_path / "partial.ifc", content)
    data = processor.process(path, context(path)).data
    parse = data["parse"]
    assert parse["partial"] is True
    assert reason in " ".join(parse["reasons"])
    assert {key: parse[key] for key in numbers} == numbers
    process_good(processor, tmp_path)


@pytest.mark.parametrize("name", ["edge/unterminated-comment.ifc"])
def test_edge_invalid_then_next(name: str, processor: IfcProcessor, tmp_path: Path) -> None:
    path = sample(name)
    with pytest.raises(InvalidInput, match="it starts with '/\\* unfinished'"):
        processor.process(path, context(path))
    process_good(processor, tmp_path)


def test_bom_is_tolerated(processor: IfcProcessor, tmp_path: Path) -> None:
    path = write(tmp_path / "bom.ifc", b"\xef\xbb\xbf" + TINY)
    data = processor.process(path, context(path)).data
    assert (data["entity_count"], data["source"]["bom"], data["parse"]["partial"]) == (
        4,
        True,
        False,
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # the upload itself is untouched


def test_cr_only_line_endings(processor: IfcProcessor, tmp_path: Path) -> None:
    """Old exporters end lines with CR alone; the scan must still find every instance."""
    duplex = sample("duplex.ifc").read_bytes()
    path = write(tmp_path / "cr.ifc", duplex.replace(b"\n", b"\r"))
    data = processor.process(path, context(path)).data
    assert data["parse"]["scanned_entities"] == data["entity_count"] == 38898
    assert data["parse"]["partial"] is False


def test_one_line_model(processor: IfcProcessor, tmp_path: Path) -> None:
    """STEP allows a whole model on one line; instances then follow ';' directly."""
    path = write(tmp_path / "oneline.ifc", HEADER + BODY.replace(b"\n", b" ") + FOOTER)
    data = processor.process(path, context(path)).data
    assert (data["parse"]["scanned_entities"], data["entity_count"]) == (4, 4)
    assert data["parse"]["partial"] is False


def test_scan_runs_in_line_without_fork(tmp_path: Path) -> None:
    from aecflow_processor_ifc import IfcProcessorConfig

    processor = IfcProcessor(IfcProcessorConfig(parallel_scan=False))
    path = write(tmp_path / "t.ifc", TINY)
    assert processor.process(path, context(path)).data["entity_count"] == 4


def test_scan_helper_does_not_outlive_a_failure(processor: IfcProcessor, tmp_path: Path) -> None:
    """A failed run leaves no forked scan helper behind (no zombie, no orphan)."""
    path = write(tmp_path / "bad.ifc", TINY.replace(b"('IFC4')", b"('IFC9')"))
    before = _children()
    with pytest.raises(InvalidInput):
        processor.process(path, context(path))
    assert _children() == before


def _children() -> set[int]:
    """Pids of this process's children (Linux)."""
    task = Path(f"/proc/{os.getpid()}/task")
    found: set[int] = set()
    for thread in task.iterdir():
        found |= {int(p) for p in (thread / "children").read_text().split()}
    return found


def test_unsupported_schema_keeps_the_header_decoded(tmp_path: Path) -> None:
    text = (
        b"ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('a'),'2;1');\n"
        b"FILE_NAME('Geb\\X2\\00E4\\X0\\ude.ifc','2024-05-01T10:00:00',('it''s me'),('O'),"
        b"'pre','Tool 1','');\nFILE_SCHEMA(('IFC9'));\nENDSEC;\nDATA;\n"
        b"#1=IFCORGANIZATION($,'Acme',$,$,$);\n#2=IFCAPPLICATION(#1,'9','Acme CAD','ac');\n"
        b"ENDSEC;\nEND-ISO-10303-21;\n"
    )
    with pytest.raises(InvalidInput, match="IFC9 is not supported") as caught:
        run(write(tmp_path / "x.ifc", text))
    got = caught.value.result
    assert got["header"]["name"] == "Gebäude.ifc"
    assert got["header"]["author"] == ["it's me"]
    assert got["application"]["developer"] == "Acme"
    assert got["project_name"] is None
