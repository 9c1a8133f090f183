"""Every sample model gives the summary it should, in concrete numbers.

The numbers come from ``derive_expected.py`` in this directory: a default (eager) IfcOpenShell
open with geometry, per-element ``get_material``, inverse ``IsDefinedBy`` attributes,
IfcOpenShell's own unit scale, and a line-by-line text count. That shares no code path with
the processor (lazy open, geometry skipped, one pass over relationship lists). Where
``SOURCES.md`` states a fact, it agrees, with one exception noted at LargeBuilding.
"""

from __future__ import annotations

from typing import Any

import pytest
from ifc_support import run, sample

from aecflow.processing import InvalidInput


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, Any]]:
    """Each sample processed once for the whole module."""
    return {}


def result(results: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    if name not in results:
        results[name] = run(sample(name))
    return results[name]


def quantity(data: dict[str, Any], cls: str, name: str) -> float:
    return data["quantities"][cls][name]["value"]


def material(data: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    (entry,) = [m for m in data["materials"] if m["kind"] == kind and m["name"] == name]
    return entry


def ifc_materials(data: dict[str, Any]) -> list[str]:
    return sorted(
        m["name"]
        for m in data["materials"]
        if m["kind"] == "material"
        for _ in range(m["instances"])
    )


def test_duplex(results: dict[str, dict[str, Any]]) -> None:
    data = result(results, "duplex.ifc")
    assert data["schema"] == "IFC2X3"
    assert data["project_name"] == "0001"
    assert data["application"]["name"] == "Autodesk Revit Architecture 2011"
    assert data["header"]["originating_system"] == "20100326_1700"
    # SOURCES.md: 38,898 entities, 295 products, 99 with a material, 18 IfcMaterial, 4 storeys.
    assert data["entity_count"] == 38898
    assert data["product_count"] == 295
    assert data["elements_with_material"] == 99
    assert len(ifc_materials(data)) == 18
    assert data["storeys"] == ["T/FDN", "Level 1", "Level 2", "Roof"]
    assert data["element_counts"] == {
        "IfcBeam": 8, "IfcCovering": 13, "IfcDoor": 14, "IfcFooting": 7,
        "IfcFurnishingElement": 61, "IfcMember": 4, "IfcOpeningElement": 50, "IfcRailing": 4,
        "IfcRoof": 1, "IfcSlab": 21, "IfcStair": 2, "IfcStairFlight": 2, "IfcWall": 1,
        "IfcWallStandardCase": 56, "IfcWindow": 24,
    }  # fmt: skip
    wall = material(data, "layer_set", "Basic Wall:Exterior - Brick on Block")
    assert wall["elements"] == 12
    assert [(layer["material"], layer["thickness"]) for layer in wall["layers"]] == [
        ("Masonry - Brick", 0.092),
        ("Misc. Air Layers - Air Space", 0.025),
        ("Insulation / Thermal Barriers - Rigid insulation", 0.05),
        ("Masonry - Concrete Block", 0.193),
        ("Metal - Stud Layer", 0.041),
        ("Plasterboard", 0.016),
    ]
    assert wall["total_thickness"] == pytest.approx(0.417)
    assert material(data, "material", "Metal - Steel - 345 MPa")["direct"] == 8
    assert data["quantity_value_count"] == 21
    assert quantity(data, "IfcSpace", "GSA BIM Area") == pytest.approx(422.046566)
    assert data["property_sets"]["PSet_Revit_Other"] == 251
    assert data["property_sets"]["PSet_Revit_Constraints"] == 250
    assert data["parse"] == {
        "warnings": 0, "errors": 0, "partial": False, "scanned_entities": 38898,
        "loaded_entities": 5535, "skipped_entities": 33363, "reasons": [], "messages": [],
    }  # fmt: skip
    tree = data["spatial_tree"]
    assert [n["class"] for n in tree] == ["IfcProject"]
    (site,) = tree[0]["children"]
    (building,) = site["children"]
    assert sorted(s["name"] for s in building["children"]) == sorted(data["storeys"])


def test_fzk_haus(results: dict[str, dict[str, Any]]) -> None:
    data = result(results, "AC20-FZK-Haus.ifc")
    assert data["schema"] == "IFC4"
    assert data["project_name"] == "Projekt-FZK-Haus"
    assert data["application"]["developer"] == "GRAPHISOFT"
    # SOURCES.md: 44,249 entities, 127 products, 78 with a material, 6 IfcMaterial,
    # 3,284 quantity values, 2 storeys.
    assert data["entity_count"] == 44249
    assert data["product_count"] == 127
    assert data["elements_with_material"] == 78
    assert ifc_materials(data) == [
        "Holz", "Leichtbeton 102890359", "Radial Gradient Fill 1515460218", "Solid",
        "Solid 397409098", "Stahlbeton 65690",
    ]  # fmt: skip
    assert data["quantity_value_count"] == 3284
    assert data["storeys"] == ["Erdgeschoss", "Dachgeschoss"]
    assert data["element_counts"] == {
        "IfcBeam": 4, "IfcDoor": 5, "IfcMember": 42, "IfcOpeningElement": 17, "IfcRailing": 2,
        "IfcSlab": 4, "IfcStair": 1, "IfcVirtualElement": 3, "IfcWallStandardCase": 13,
        "IfcWindow": 11,
    }  # fmt: skip
    assert material(data, "material", "Solid")["elements"] == 47
    assert material(data, "list", "Holz")["elements"] == 12
    wall = material(data, "layer_set", "Leichtbeton 102890359 0.3")
    assert (wall["elements"], wall["total_thickness"]) == (8, 0.3)
    assert quantity(data, "IfcBeam", "CrossSectionArea") == pytest.approx(0.048)
    assert quantity(data, "IfcBuildingStorey", "GrossFloorArea") == pytest.approx(241.497956)
    # The project carries property sets too (IfcContext, not IfcObject, in IFC4).
    assert data["property_sets"]["Pset_ProjectCommon"] == 1
    assert data["property_sets"]["AC_Pset_Name"] == 89
    assert data["parse"]["partial"] is False
    assert data["parse"]["scanned_entities"] == 44249
    assert data["warnings"] == []


def test_large_building(results: dict[str, dict[str, Any]]) -> None:
    data = result(results, "LargeBuilding.ifc")
    # SOURCES.md: 20,735 entities, 187 products, 101 with a material, 13 IfcMaterial,
    # 2 storeys. It says 537 quantity values; three independent counts give 573 (the
    # IfcPhysicalQuantity instances, the sum of IfcElementQuantity.Quantities, and the
    # values reached through each object's IsDefinedBy), so 537 looks like a transposition.
    assert data["entity_count"] == 20735
    assert data["product_count"] == 187
    assert data["elements_with_material"] == 101
    assert len(ifc_materials(data)) == 13
    assert data["quantity_value_count"] == 573
    assert data["storeys"] == ["Level 1", "Level 2"]
    assert data["element_counts"]["IfcWindow"] == 42
    assert data["element_counts"]["IfcWallStandardCase"] == 18
    assert material(data, "list", "Glass, Sash")["elements"] == 42
    assert material(data, "layer_set", "Basic Wall:Outside wall")["elements"] == 14
    assert quantity(data, "IfcDoor", "Area") == pytest.approx(60.413831)
    assert quantity(data, "IfcSlab", "NetVolume") == pytest.approx(132.954)
    assert data["property_sets"]["Pset_ProductRequirements"] == 146
    # One door is associated with two materials; the first one counts, and the note says so.
    assert any("more than one material" in note for note in data["notes"])


def test_ifc_open_house_in_millimetres(results: dict[str, dict[str, Any]]) -> None:
    data = result(results, "IfcOpenHouse_IFC4.ifc")
    assert (data["entity_count"], data["product_count"]) == (2885, 47)
    assert data["units"]["length"] == {"name": "MILLIMETRE", "to_si": 0.001}
    wall = material(data, "layer_set", "Wall")
    # 360 mm in the file, reported in metres.
    assert wall["layers"] == [{"name": None, "material": "Brick", "thickness": 0.36}]
    assert wall["elements"] == 4
    # The only storey has no name: it is listed by its STEP id rather than dropped, and
    # the tree calls it the same.
    assert data["storeys"] == ["#38"]
    building = data["spatial_tree"][0]["children"][0]["children"][0]
    assert [(s["class"], s["name"]) for s in building["children"]] == [("IfcBuildingStorey", "#38")]


def test_revit_quantities(results: dict[str, dict[str, Any]]) -> None:
    data = result(results, "revit_quantities.ifc")
    assert (data["entity_count"], data["product_count"]) == (1383, 25)
    assert data["storeys"] == ["Level 1"]
    assert data["elements_with_material"] == 10
    assert data["quantity_value_count"] == 7
    assert quantity(data, "IfcSpace", "GSA BIM Area") == pytest.approx(185.06)
    assert data["property_sets"]["PSet_Revit_Constraints"] == 20


def test_ifczip(results: dict[str, dict[str, Any]]) -> None:
    data = result(results, "AC11-Institute-Var-2-IFC.ifczip")
    assert data["source"] == {
        "format": "ifczip",
        "size": 2836276,
        "member": "AC11-Institute-Var-2-IFC.ifc",
    }
    assert data["schema"] == "IFC2X3"
    assert data["project_name"] == "Projekt Buerogebaeude"
    assert (data["entity_count"], data["product_count"]) == (49664, 1188)
    assert data["storeys"] == [
        "Keller", "Erdgeschoss", "1. Obergeschoss", "2. Obergeschoss", "Dachgeschoss"
    ]  # fmt: skip
    assert data["elements_with_material"] == 416
    assert ifc_materials(data) == ["Aluminium", "Kalksandstein", "Leer", "Stahlbeton"]
    assert data["quantity_value_count"] == 1774
    assert quantity(data, "IfcWallStandardCase", "GrossVolume") == pytest.approx(808.422587)
    assert data["element_counts"]["IfcWindow"] == 206


def test_empty_model(results: dict[str, dict[str, Any]]) -> None:
    data = result(results, "edge/EmptyTest.ifc")
    assert data["entity_count"] == 0
    assert data["element_counts"] == {} and data["materials"] == [] and data["storeys"] == []
    assert data["parse"]["partial"] is False
    assert data["header"]["name"] == "IFC Engine DLL test"
    # Nothing to summarise is said, not left to an empty-looking clean result.
    assert data["warnings"] == [
        "the file holds no entity instances (its DATA section is empty): the summary is empty"
    ]


def test_cyclic_placement(results: dict[str, dict[str, Any]]) -> None:
    data = result(results, "edge/cyclic-placement.ifc")
    assert data["entity_count"] == 23
    assert data["element_counts"] == {"IfcBuildingElementProxy": 1}
    assert data["project_name"] == "Regression"
    assert data["parse"]["partial"] is False
    assert data["warnings"] == []


def test_errorfile_is_a_partial_parse(results: dict[str, dict[str, Any]]) -> None:
    data = result(results, "edge/errorfile.ifc")
    # SOURCES.md: IfcOpenShell opens it silently with 7 of 6,184 entities.
    parse = data["parse"]
    assert parse["partial"] is True
    assert (parse["loaded_entities"], parse["scanned_entities"]) == (7, 6184)
    assert data["entity_count"] == 7
    assert parse["warnings"] == parse["errors"] == 0  # IfcOpenShell logs nothing
    assert "read only 7" in parse["reasons"][0]
    # The partial read is the first thing the result says, not only a flag deep in parse.
    assert len(data["warnings"]) == 1 and "read only 7 of them" in data["warnings"][0]


def test_unsupported_schema_is_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        run(sample("KIT-Simple-Road-IFC4x3_RC2.ifc"))
    assert str(caught.value).startswith(
        "IFC4X3_RC2 is not supported; supported: IFC2X3, IFC4, IFC4X3_ADD2"
    )
    # Refused, but what the header and the first instances say is kept beside the error.
    got = caught.value.result
    assert got["schema"] == "IFC4X3_RC2"
    assert got["header"]["time_stamp"] == "2019-10-22T12:33:12"
    assert got["header"]["originating_system"] == "SketchUp Pro 2015"
    assert got["header"]["description"] == ["ViewDefinition [CoordinationView]"]
    assert got["application"] == {
        "name": "SketchUp Pro 2015", "version": "2015", "identifier": "2015",
        "developer": "SketchUp",
    }  # fmt: skip
    assert got["project_name"] == "Default Project"
    assert got["source"] == {"format": "ifc", "size": 394747}


def test_unterminated_comment_is_not_ifc() -> None:
    with pytest.raises(InvalidInput, match="starts with 'ISO-10303-21;'"):
        run(sample("edge/unterminated-comment.ifc"))
