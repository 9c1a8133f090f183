"""The text scan counts instance starts right at chunk boundaries and with any line ending."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ifc_support import BODY, FOOTER, HEADER, sample, write

from aecflow_processor_ifc import scan as scan_module
from aecflow_processor_ifc.scan import ScanJob, scan

LINE_ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def naive_count(data: bytes) -> int:
    """One instance per line, whatever ends the lines: the obvious count."""
    lines = re.split(rb"\r\n|\r|\n", data)
    return sum(1 for line in lines if re.match(rb"\s*#\d+\s*=", line))


@pytest.mark.parametrize("chunk", [7, 64, 1000, 8 << 20])
@pytest.mark.parametrize("ending", sorted(LINE_ENDINGS))
def test_counts_match_a_line_count(
    chunk: int, ending: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_module, "CHUNK", chunk)
    data = sample("revit_quantities.ifc").read_bytes().replace(b"\r\n", b"\n")
    data = data.replace(b"\n", LINE_ENDINGS[ending])
    result = scan(write(tmp_path / "m.ifc", data), 16)
    assert result.instances == naive_count(data) == 1383
    assert result.keywords["IFCWALLSTANDARDCASE"] == 10
    assert result.complete_ending is True
    assert result.nesting_offset is None


def test_whole_model_on_one_line(tmp_path: Path) -> None:
    data = HEADER + b"#10 = IFCWALL(1);#11=  ifcslab(2); #12=IFCSLAB(3);\n" + FOOTER
    result = scan(write(tmp_path / "m.ifc", data), 16)
    assert result.keywords == {"IFCWALL": 1, "IFCSLAB": 2}


def test_nesting_offset_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "CHUNK", 1 << 16)
    prefix = HEADER + BODY * 2000 + b"#9=IFCX("
    data = prefix + b"(" * 100 + b"1" + b")" * 101 + b";\n" + FOOTER
    result = scan(write(tmp_path / "m.ifc", data), 16)
    assert result.nesting_offset == len(prefix) - 1


def test_ending(tmp_path: Path) -> None:
    cut = scan(write(tmp_path / "a.ifc", HEADER + BODY), 16)
    trailing = scan(write(tmp_path / "b.ifc", HEADER + BODY + FOOTER + b"\r\n\x1a"), 16)
    assert (cut.complete_ending, trailing.complete_ending) == (False, True)


def test_parallel_and_in_line_agree() -> None:
    path = sample("AC20-FZK-Haus.ifc")
    forked = ScanJob(path, 16, parallel=True)
    assert forked.result() == ScanJob(path, 16, parallel=False).result() == scan(path, 16)
    assert forked.result().instances == 44249


def test_keyword_table_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "MAX_KEYWORDS", 10)
    body = b"".join(b"#%d=IFCODD%d(1);\n" % (i, i) for i in range(1, 101))
    result = scan(write(tmp_path / "m.ifc", HEADER + body + FOOTER), 16)
    assert result.instances == 100
    assert len(result.keywords) <= 11
