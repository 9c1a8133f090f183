"""Derive the sample facts the tests assert, the slow and obvious way (not run by pytest).

Independent of the processor's code paths on purpose: a default (eager, geometry included)
``ifcopenshell.open``, per-element ``ifcopenshell.util.element.get_material`` and inverse
attributes (``IsDefinedBy``) instead of one pass over relationship lists, IfcOpenShell's own
unit scale, and a line-by-line text count that splits on every kind of line ending.

    .venv/bin/python plugins/processor_ifc/tests/derive_expected.py FILE.ifc [...]

Its ``quantities`` add every value under a name, duplicates included (LargeBuilding's walls
carry NetVolume twice, in mm3 and m3); the processor counts each element once per name, and
``test_ifc_quantities.py`` derives those figures by its own method.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import ifcopenshell
import ifcopenshell.util.element
import ifcopenshell.util.unit

KIND = {
    "IfcQuantityLength": "LENGTHUNIT",
    "IfcQuantityArea": "AREAUNIT",
    "IfcQuantityVolume": "VOLUMEUNIT",
}
VALUE = {
    "IfcQuantityLength": "LengthValue",
    "IfcQuantityArea": "AreaValue",
    "IfcQuantityVolume": "VolumeValue",
}


def text_count(path: Path) -> int:
    lines = re.split(rb"\r\n|\r|\n", path.read_bytes())
    return sum(1 for line in lines if re.match(rb"\s*#\d+\s*=", line))


def derive(path: Path) -> dict:
    if path.suffix.lower() == ".ifczip":
        tmp = Path(tempfile.mkdtemp())
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.lower().endswith(".ifc"))
            path = Path(z.extract(name, tmp))
    model = ifcopenshell.open(str(path))
    scale = {k: ifcopenshell.util.unit.calculate_unit_scale(model, k) for k in set(KIND.values())}
    products = model.by_type("IfcProduct")
    storeys = sorted(
        model.by_type("IfcBuildingStorey"),
        key=lambda s: (s.Elevation is None, (s.Elevation or 0) * scale["LENGTHUNIT"]),
    )
    with_material = [
        p for p in products if ifcopenshell.util.element.get_material(p, should_inherit=True)
    ]
    definitions = Counter()
    for p in with_material:
        m = ifcopenshell.util.element.get_material(p, should_inherit=True)
        if m.is_a() in ("IfcMaterialLayerSetUsage",):
            m = m.ForLayerSet
        elif m.is_a() in ("IfcMaterialProfileSetUsage",):
            m = m.ForProfileSet
        name = getattr(m, "Name", None) if not m.is_a("IfcMaterialLayerSet") else m.LayerSetName
        definitions[(m.is_a(), name)] += 1
    quantities: dict = defaultdict(lambda: defaultdict(float))
    values = 0
    psets = Counter()
    # IfcObject and, in IFC4, IfcContext (the project) carry IsDefinedBy.
    objects = [o for o in model.by_type("IfcObjectDefinition") if not o.is_a("IfcTypeObject")]
    for obj in objects:
        for rel in obj.IsDefinedBy:
            if not rel.is_a("IfcRelDefinesByProperties"):
                continue
            pdef = rel.RelatingPropertyDefinition
            if pdef.is_a("IfcElementQuantity"):
                for q in pdef.Quantities:
                    values += 1
                    if q.is_a() in KIND:
                        quantities[obj.is_a()][q.Name] += (
                            getattr(q, VALUE[q.is_a()]) * scale[KIND[q.is_a()]]
                        )
            else:
                psets[pdef.Name] += 1
    for t in model.by_type("IfcTypeObject"):
        for ps in t.HasPropertySets or ():
            if not ps.is_a("IfcElementQuantity"):
                psets[ps.Name] += 1
    return {
        "file": path.name,
        "schema": model.schema,
        "text_count": text_count(path),
        "entity_count": len(model.entity_names()),
        "product_count": len(products),
        "element_counts": dict(
            sorted(Counter(e.is_a() for e in model.by_type("IfcElement")).items())
        ),
        "storeys": [s.Name for s in storeys],
        "elements_with_material": len(with_material),
        "ifc_materials": sorted(m.Name for m in model.by_type("IfcMaterial")),
        "definitions_in_use": {
            f"{k[0]}:{k[1]}": v for k, v in sorted(definitions.items(), key=str)
        },
        "quantity_value_count": values,
        "quantities": {
            c: {n: round(v, 6) for n, v in sorted(q.items())} for c, q in sorted(quantities.items())
        },
        "property_sets": dict(psets.most_common()),
        "project": [p.Name for p in model.by_type("IfcProject")],
    }


if __name__ == "__main__":
    print(json.dumps([derive(Path(a)) for a in sys.argv[1:]], indent=1))
