"""Quantity figures per class and name against values derived here by other means.

The derivation: an eager ``ifcopenshell.open``, each object's ``IsDefinedBy`` by attribute
name, the project's units applied by hand from its IfcSIUnit prefixes. Where one element
carries a name twice with different values, the value that fits the element's own
dimensions (its Length x Height, or Length x Width x Height, in metres) counts, else the one
from the first set in the file. Nothing of the processor's code is used.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import ifcopenshell
import pytest
from ifc_support import run, sample

PREFIX = {None: 1.0, "MILLI": 1e-3, "CENTI": 1e-2, "DECI": 1e-1, "KILO": 1e3}
VALUE = {
    "IfcQuantityLength": ("LengthValue", "LENGTHUNIT", 1, "m"),
    "IfcQuantityArea": ("AreaValue", "AREAUNIT", 2, "m2"),
    "IfcQuantityVolume": ("VolumeValue", "VOLUMEUNIT", 3, "m3"),
    "IfcQuantityWeight": ("WeightValue", "MASSUNIT", 1, "kg"),
}


def derive(path: Any) -> dict[str, dict[str, dict[str, Any]]]:
    model = ifcopenshell.open(str(path))
    scale = {}
    for unit in model.by_type("IfcProject")[0].UnitsInContext.Units:
        if unit.is_a("IfcSIUnit") and unit.UnitType in ("LENGTHUNIT", "AREAUNIT", "VOLUMEUNIT"):
            power = {"LENGTHUNIT": 1, "AREAUNIT": 2, "VOLUMEUNIT": 3}[unit.UnitType]
            scale[unit.UnitType] = PREFIX[unit.Prefix] ** power
        if unit.is_a("IfcSIUnit") and unit.UnitType == "MASSUNIT":
            scale["MASSUNIT"] = PREFIX[unit.Prefix] * (1e-3 if unit.Name == "GRAM" else 1.0)
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for obj in model.by_type("IfcObject"):
        values: dict[str, list[float]] = defaultdict(list)
        unit_of: dict[str, str] = {}
        for rel in obj.IsDefinedBy:
            definition = getattr(rel, "RelatingPropertyDefinition", None)
            if definition is None or not definition.is_a("IfcElementQuantity"):
                continue
            for q in definition.Quantities:
                if q.is_a() not in VALUE:
                    continue
                attribute, unit_type, _, unit = VALUE[q.is_a()]
                values[q.Name].append(getattr(q, attribute) * scale.get(unit_type, 1.0))
                unit_of[q.Name] = unit
        dims = {n: v[0] for n, v in values.items() if unit_of[n] == "m" and len(v) == 1}
        for name, found in values.items():
            value = found[0]
            if len(set(found)) > 1:
                fit = _fit(unit_of[name], dims)
                if fit:
                    value = min(found, key=lambda v: abs(math.log10(abs(v) / fit)))
            slot = out[obj.is_a()].setdefault(name, {"value": 0.0, "unit": unit_of[name]})
            slot["value"] += value
            slot["count"] = slot.get("count", 0) + 1
    return out


def _fit(unit: str, dims: dict[str, float]) -> float | None:
    if not {"Length", "Height"} <= dims.keys():
        return None
    if unit == "m2":
        return dims["Length"] * dims["Height"]
    if unit == "m3" and "Width" in dims:
        return dims["Length"] * dims["Width"] * dims["Height"]
    return None


@pytest.mark.parametrize(
    "name", ["LargeBuilding.ifc", "revit_quantities.ifc", "AC20-FZK-Haus.ifc", "duplex.ifc"]
)
def test_every_quantity_name_matches_the_independent_derivation(name: str) -> None:
    path = sample(name)
    expected = derive(path)
    got = run(path)["quantities"]
    for cls, names in expected.items():
        for qname, want in names.items():
            have = got[cls][qname]
            assert (have["unit"], have["count"]) == (want["unit"], want["count"]), (cls, qname)
            assert have["value"] == pytest.approx(want["value"], rel=1e-6, abs=1e-6), (cls, qname)


def test_large_building_walls_count_once_in_cubic_metres() -> None:
    data = run(sample("LargeBuilding.ifc"))
    walls = data["quantities"]["IfcWallStandardCase"]
    # 18 walls, each NetVolume written once in mm3 and once in m3 in one BaseQuantities set.
    assert walls["NetVolume"] == {"value": pytest.approx(146.602768), "unit": "m3", "count": 18}
    assert walls["NetSideArea"]["count"] == 18
    assert walls["NetSideArea"]["value"] == pytest.approx(1641.62128)
    assert walls["Length"] == {"value": pytest.approx(215.0), "unit": "m", "count": 18}
    notes = [n for n in data["notes"] if "'NetVolume'" in n]
    assert len(notes) == 1 and "18 IfcWallStandardCase" in notes[0]
    assert "5.64422 m3" in notes[0] and "length unit" in notes[0]


def test_no_total_adds_different_names() -> None:
    """Per class there are only names: no area/length/volume sums across names."""
    data = run(sample("AC20-FZK-Haus.ifc"))
    for cls, names in data["quantities"].items():
        for qname, entry in names.items():
            assert set(entry) == {"value", "unit", "count"}, (cls, qname)
    space = data["quantities"]["IfcSpace"]
    assert space["GrossFloorArea"]["unit"] == "m2"
    assert "area" not in space and "length" not in space
    # A door whose height ArchiCAD writes twice: the first set's value, and a note.
    assert any("'Höhe'" in n and "IfcDoor" in n for n in data["notes"])
