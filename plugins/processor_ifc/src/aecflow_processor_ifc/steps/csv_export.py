"""``ifc-csv``: one row per element, written as it is read.

Columns: ``global_id, class, name, storey, type, material``, then one column per property of
the configured sets (``Pset_WallCommon.IsExternal``), found in a first pass over the model's
property and quantity sets (definitions only, no elements), so the header is known before the
first row and no row is held back. Values come from ``ifcopenshell.util.element``: an
element's storey through its containment (and its aggregate's), its type, the names of its
materials (its own or its type's), and its property sets including those of its type.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from aecflow_processor_ifc.steps.common import guarded, open_model, read_warnings
from aecflow_processor_ifc.steps.config import CsvConfig

FIXED = ("global_id", "class", "name", "storey", "type", "material")


def property_columns(model: Any, psets: tuple[str, ...]) -> list[tuple[str, str]]:
    """(set, property) pairs of the configured sets, in configuration then first-seen order."""
    wanted = {name: dict[str, None]() for name in psets}
    for cls in ("IfcPropertySet", "IfcElementQuantity"):
        try:
            definitions = model.by_type(cls)
        except RuntimeError:  # IfcElementQuantity is not in every schema's shape
            continue
        for definition in definitions:
            found = wanted.get(definition.Name)
            if found is None:
                continue
            members = definition.HasProperties if cls == "IfcPropertySet" else definition.Quantities
            for member in members or ():
                found.setdefault(member.Name)
    return [(s, p) for s, props in wanted.items() for p in props]


#: Where each material definition keeps its materials (util.get_materials asserts on a bare
#: IfcMaterialLayer, which IFC4 allows as an association).
_MEMBERS = {
    "IfcMaterialLayerSet": "MaterialLayers",
    "IfcMaterialProfileSet": "MaterialProfiles",
    "IfcMaterialConstituentSet": "MaterialConstituents",
    "IfcMaterialList": "Materials",
}


def material_names(material: Any) -> list[str]:
    """The distinct names of the materials in ``material`` (a material or any set of them)."""
    if material is None:
        return []
    if material.is_a("IfcMaterial"):
        members = [material]
    elif (attr := next((a for c, a in _MEMBERS.items() if material.is_a(c)), None)) is not None:
        members = [
            m if m.is_a("IfcMaterial") else m.Material for m in getattr(material, attr) or ()
        ]
    else:  # a single layer, profile or constituent
        members = [getattr(material, "Material", None)]
    return list(dict.fromkeys(m.Name for m in members if m is not None and m.Name))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def _elements(model: Any, classes: tuple[str, ...]) -> list[Any]:
    seen: set[int] = set()
    elements = []
    for cls in classes:
        try:
            found = model.by_type(cls)
        except RuntimeError:  # a class this schema does not have
            continue
        for element in found:
            if element.id() not in seen:
                seen.add(element.id())
                elements.append(element)
    return elements


def write_rows(model: Any, out: Any, config: CsvConfig) -> dict[str, Any]:
    """Write the header and one row per element to the csv ``out``; return the counts."""
    import ifcopenshell.util.element as util

    columns = property_columns(model, config.psets)
    writer = csv.writer(out)
    writer.writerow([*FIXED, *(f"{s}.{p}" for s, p in columns)])
    rows = 0
    with_storey = 0
    for element in _elements(model, config.classes):
        storey = util.get_container(element, ifc_class="IfcBuildingStorey")
        element_type = util.get_type(element)
        materials = material_names(util.get_material(element, should_skip_usage=True))
        psets = util.get_psets(element) if columns else {}
        values = [(psets.get(s) or {}).get(p) for s, p in columns]
        writer.writerow(
            [
                getattr(element, "GlobalId", None) or "",
                element.is_a(),
                element.Name or "",
                (storey.Name or "") if storey else "",
                (element_type.Name or "") if element_type else "",
                "; ".join(materials),
                *map(_cell, values),
            ]
        )
        rows += 1
        with_storey += storey is not None
    return {
        "rows": rows,
        "columns": [*FIXED, *(f"{s}.{p}" for s, p in columns)],
        "elements_with_storey": with_storey,
        "psets_missing": [s for s in config.psets if not any(c[0] == s for c in columns)],
    }


def export(path: Path, artifact: Path, config: CsvConfig) -> dict[str, Any]:
    """Open the STEP file at ``path`` and write the CSV to ``artifact``."""
    model, scanned = guarded(path, config, lambda: open_model(path))
    warnings = read_warnings(model, scanned)
    with artifact.open("w", encoding="utf-8", newline="") as out:
        counts = write_rows(model, out, config)
    return {"schema": model.schema_identifier, "warnings": warnings, **counts}
