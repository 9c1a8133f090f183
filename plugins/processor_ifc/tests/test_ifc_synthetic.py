"""Generated models: the summary equals what the generator tallied while writing them."""

from __future__ import annotations

from pathlib import Path

import ifcopenshell
import ifcopenshell.validate
import pytest
from ifc_support import run, write

from aecflow_processor_ifc.testing.synthetic import Expected, Spec, guid, real, write_model


@pytest.fixture(scope="module", params=["m", "mm"])
def model(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Expected]:
    path = tmp_path_factory.mktemp("synthetic") / f"model_{request.param}.ifc"
    # 60 bays: about 2.4 MB, 480 elements over 3 storeys.
    return path, write_model(path, Spec(storeys=3, bays=60, boxes=2, length_unit=request.param))


def test_counts_and_storeys(model: tuple[Path, Expected]) -> None:
    path, expected = model
    data = run(path)
    assert data["schema"] == "IFC4"
    assert data["project_name"] == expected.project_name
    assert data["entity_count"] == expected.entity_count
    assert data["parse"]["scanned_entities"] == expected.entity_count
    assert data["parse"]["partial"] is False
    assert data["element_counts"] == dict(expected.element_counts)
    assert data["element_counts"]["IfcWall"] == 240
    assert data["storeys"] == expected.storeys == ["Level 0", "Level 1", "Level 2"]
    building = data["spatial_tree"][0]["children"][0]["children"][0]
    assert [(s["name"], s["elements"], s["elevation"]) for s in building["children"]] == [
        (name, expected.storey_elements[name], 3.0 * level)
        for level, name in reversed(list(enumerate(expected.storeys)))
    ]


def test_materials(model: tuple[Path, Expected]) -> None:
    path, expected = model
    data = run(path)
    got = {
        (m["kind"], m["name"]): {k: m[k] for k in ("elements", "direct", "via_type")}
        for m in data["materials"]
    }
    assert got == expected.material_use
    assert data["elements_with_material"] == expected.elements_with_material
    wall = next(m for m in data["materials"] if m["name"] == "Wall 300")
    # Written in millimetres in the "mm" model; reported in metres either way.
    assert [layer["thickness"] for layer in wall["layers"]] == [0.0125, 0.175, 0.1125]
    assert wall["total_thickness"] == 0.3
    assert (wall["direct"], wall["via_type"], wall["types"]) == (192, 48, 1)


def test_quantities_and_property_sets(model: tuple[Path, Expected]) -> None:
    path, expected = model
    data = run(path)
    quantities = data["quantities"]
    assert data["quantity_value_count"] == expected.quantity_values
    for cls, names in expected.quantity_totals.items():
        got = quantities[cls]
        assert {n: got[n]["value"] for n in names} == pytest.approx(names, rel=1e-9)
        assert {n: got[n]["count"] for n in names} == expected.quantity_counts[cls]
    assert quantities["IfcWall"]["Length"]["count"] == 240
    assert quantities["IfcWall"]["NetVolume"]["unit"] == "m3"
    assert data["property_sets"] == dict(expected.property_sets)


def test_generated_model_is_valid_ifc4(tmp_path: Path) -> None:
    """IfcOpenShell's validator (schema and EXPRESS rules) finds nothing to complain about."""
    path = tmp_path / "small.ifc"
    write_model(path, Spec(storeys=2, bays=1, length_unit="mm"))
    logger = ifcopenshell.validate.json_logger()
    ifcopenshell.validate.validate(ifcopenshell.open(str(path)), logger, express_rules=True)
    assert logger.statements == []


def test_spatial_cycle_is_listed_once(tmp_path: Path) -> None:
    """A storey that aggregates its own building: the walk ends and says so."""
    path = tmp_path / "cycle.ifc"
    write_model(path, Spec(storeys=2, bays=2))
    text = path.read_bytes()
    cycle = b"#999999=IFCRELAGGREGATES('" + guid(10**9).encode() + b"',$,$,$,#%d,(#%d));\n"
    storey, building = _ids(text, b"IFCBUILDINGSTOREY")[0], _ids(text, b"IFCBUILDING(")[0]
    text = text.replace(b"ENDSEC;\nEND-ISO", cycle % (storey, building) + b"ENDSEC;\nEND-ISO")
    data = run(write(path, text))
    assert data["storeys"] == ["Level 0", "Level 1"]
    assert any("a second time" in note for note in data["notes"])
    flat = []
    stack = list(data["spatial_tree"])
    while stack:
        node = stack.pop()
        flat.append(node["class"])
        stack.extend(node["children"])
    assert sorted(flat) == [
        "IfcBuilding",
        "IfcBuildingStorey",
        "IfcBuildingStorey",
        "IfcProject",
        "IfcSite",
    ]


def _ids(text: bytes, keyword: bytes) -> list[int]:
    return [
        int(line.split(b"=", 1)[0][1:])
        for line in text.splitlines()
        if line.split(b"=", 1)[-1].startswith(keyword)
    ]


def test_real_formatting() -> None:
    assert [real(2.0), real(0.0125), real(4500.0), real(0.0)] == ["2.", "0.0125", "4500.", "0."]
    assert len({guid(n) for n in range(10_000)}) == 10_000
    assert all(len(guid(n)) == 22 and guid(n)[0] == "0" for n in (0, 1, 2**100))


def test_ifc4x3_add2(tmp_path: Path) -> None:
    """The same model declared IFC4X3_ADD2 (its entities exist there unchanged) reads alike."""
    path = tmp_path / "x3.ifc"
    expected = write_model(path, Spec(storeys=2, bays=3))
    path.write_bytes(path.read_bytes().replace(b"(('IFC4'))", b"(('IFC4X3_ADD2'))"))
    data = run(path)
    assert data["schema"] == "IFC4X3_ADD2"
    assert data["entity_count"] == expected.entity_count
    assert data["element_counts"] == dict(expected.element_counts)
    assert data["elements_with_material"] == expected.elements_with_material
    assert data["storeys"] == ["Level 0", "Level 1"]
    assert (data["parse"]["partial"], data["parse"]["warnings"], data["parse"]["errors"]) == (
        False,
        0,
        0,
    )
