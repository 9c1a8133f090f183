"""A .ifczip is unpacked by the processor, within size and ratio limits."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from ifc_support import TINY, run, write

from aecflow.processing import InvalidInput
from aecflow_processor_ifc import IfcProcessorConfig


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_first_ifc_member_is_used(tmp_path: Path) -> None:
    other = TINY.replace(b"'Tiny'", b"'Second'")
    path = make_zip(
        tmp_path / "m.ifczip", {"readme.txt": b"hi", "a/first.IFC": TINY, "b.ifc": other}
    )
    data = run(path)
    assert data["project_name"] == "Tiny"
    assert data["source"] == {"format": "ifczip", "member": "a/first.IFC", "size": len(TINY)}
    assert not list(tmp_path.glob("**/model.ifc"))  # nothing unpacked next to the upload


def test_zip_bomb_ratio_is_refused(tmp_path: Path) -> None:
    """5 MB of one repeated byte deflates about 1000 times: no IFC text does that."""
    bomb = TINY[: -len(b"ENDSEC;\nEND-ISO-10303-21;\n")] + b" " * 5_000_000
    path = make_zip(tmp_path / "bomb.ifczip", {"model.ifc": bomb})
    with pytest.raises(InvalidInput, match=r"expands [\d,]+ times .* refused as a zip bomb"):
        run(path)


def test_member_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "big.ifczip", {"model.ifc": TINY + b"\n" * 2_000_000})
    with pytest.raises(InvalidInput, match="would unpack to 2 MB, more than the limit of 1 MB"):
        run(path, IfcProcessorConfig(zip_max_member_mb=1, zip_max_ratio=10_000))


def test_lying_header_is_caught_while_unpacking(tmp_path: Path) -> None:
    """A member that declares a small size but inflates to more is stopped by counting."""
    path = make_zip(tmp_path / "liar.ifczip", {"model.ifc": TINY + b" " * 3_000_000})
    data = bytearray(path.read_bytes())
    # Rewrite the declared uncompressed size (local header and central directory) to 1 KB.
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[0]
    real = info.file_size.to_bytes(4, "little")
    data = data.replace(real, (1024).to_bytes(4, "little"))
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match=r"damaged|refused as a zip bomb|more than its header"):
        run(path)


def test_no_ifc_member(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "x.ifczip", {"model.ifcxml": b"<ifc/>", "notes.txt": b"x"})
    with pytest.raises(
        InvalidInput,
        match=r"holds no \.ifc file \(IFC-XML is not supported\); "
        r"it holds: model\.ifcxml, notes\.txt",
    ):
        run(path)


def test_encrypted_member(tmp_path: Path) -> None:
    data = bytearray(make_zip(tmp_path / "x.ifczip", {"model.ifc": TINY}).read_bytes())
    # Set "encrypted" (bit 0 of the general purpose flags) in both headers.
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 6] |= 1
    data[central + 8] |= 1
    path = write(tmp_path / "enc.ifczip", bytes(data))
    with pytest.raises(InvalidInput, match="is encrypted"):
        run(path)


def test_damaged_archive(tmp_path: Path) -> None:
    whole = make_zip(tmp_path / "x.ifczip", {"model.ifc": TINY * 50}).read_bytes()
    path = write(tmp_path / "cut.ifczip", whole[: len(whole) // 2])
    with pytest.raises(InvalidInput, match=r"not a readable \.ifczip"):
        run(path)


def test_zip_holding_something_else(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "x.ifczip", {"model.ifc": b"<html>not a model</html>"})
    with pytest.raises(InvalidInput, match="HTML page"):
        run(path)
