"""Materials: what each element is made of, including what it inherits from its type.

One pass over IfcRelDefinesByType (occurrence -> type) and one over IfcRelAssociatesMaterial
(object or type -> material definition) give every element's material without a per-element
``get_material`` call. An element's own association wins; an element without one inherits its
type's, as IfcOpenShell's ``get_material(should_inherit=True)`` does.

Every material definition kind is reported: IfcMaterial, layer sets (through their usages),
profile sets, constituent sets, material lists, and layers, profiles or constituents assigned
on their own (invalid by the letter of the schema, common in practice). Each IfcMaterial is
listed too, with the elements that use it through any of those. Definitions that describe the
same thing (exporters write one layer set per wall) are merged, counting their instances.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aecflow_processor_ifc.fields import Fields, clip, drain, is_number
from aecflow_processor_ifc.units import Units

KIND_ORDER = (
    "material",
    "layer_set",
    "profile_set",
    "constituent_set",
    "list",
    "layer",
    "profile",
    "constituent",
)
KINDS = {
    "IfcMaterial": "material",
    "IfcMaterialLayerSet": "layer_set",
    "IfcMaterialProfileSet": "profile_set",
    "IfcMaterialConstituentSet": "constituent_set",
    "IfcMaterialList": "list",
    "IfcMaterialLayer": "layer",
    "IfcMaterialLayerWithOffsets": "layer",
    "IfcMaterialProfile": "profile",
    "IfcMaterialProfileWithOffsets": "profile",
    "IfcMaterialConstituent": "constituent",
}
#: Usages stand for the set they use (attribute 0 of both usage entities).
USAGES = {
    "IfcMaterialLayerSetUsage": "ForLayerSet",
    "IfcMaterialProfileSetUsage": "ForProfileSet",
    "IfcMaterialProfileSetUsageTapering": "ForProfileSet",
}


@dataclass
class Materials:
    entries: list[dict[str, Any]] = field(default_factory=list)
    elements_with_material: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Use:
    direct: int = 0
    via_type: int = 0
    types: int = 0


def material_summary(
    model: Any, fields: Fields, units: Units, products: set[int], max_items: int
) -> Materials:
    """Material definitions in use, with element counts, and every IfcMaterial."""
    out = Materials()
    type_ids = {t.id() for t in model.by_type("IfcTypeObject")}

    type_of: dict[int, int] = {}
    for rel in drain(model.by_type("IfcRelDefinesByType")):
        relating = fields.get(rel, "RelatingType")
        if relating is None:
            continue
        for obj in fields.get(rel, "RelatedObjects", ()):
            if obj is not None:
                type_of.setdefault(obj.id(), relating.id())

    definitions: dict[int, Any] = {}
    direct: dict[int, int] = {}
    of_type: dict[int, int] = {}
    use: dict[int, _Use] = defaultdict(_Use)
    extra = 0
    for rel in drain(model.by_type("IfcRelAssociatesMaterial")):
        definition = _canonical(fields.get(rel, "RelatingMaterial"), fields)
        if definition is None:
            continue
        key = definition.id()
        definitions[key] = definition
        for obj in fields.get(rel, "RelatedObjects", ()):
            if obj is None:
                continue
            ref = obj.id()
            if ref in type_ids:
                if of_type.setdefault(ref, key) == key:
                    use[key].types += 1
            elif ref in products and direct.setdefault(ref, key) != key:
                extra += 1
    for key in direct.values():
        use[key].direct += 1
    for ref, type_ref in type_of.items():
        if ref not in direct and ref in products and (key := of_type.get(type_ref)) is not None:
            use[key].via_type += 1
    out.elements_with_material = sum(u.direct + u.via_type for u in use.values())
    if extra:
        out.notes.append(
            f"{extra} element(s) have more than one material association; the first is counted"
        )

    merged: dict[str, dict[str, Any]] = {}
    per_material: dict[int, _Use] = defaultdict(_Use)

    def add(entry: dict[str, Any], counts: _Use) -> None:
        signature = json.dumps(entry, sort_keys=True)
        target = merged.get(signature)
        if target is None:
            target = merged[signature] = {**entry, "elements": 0, "direct": 0, "via_type": 0}
            target["types"] = target["instances"] = 0
        target["direct"] += counts.direct
        target["via_type"] += counts.via_type
        target["elements"] += counts.direct + counts.via_type
        target["types"] += counts.types
        target["instances"] += 1

    for key, definition in definitions.items():
        entry, materials = _describe(definition, fields, units)
        counts = use.get(key, _Use())
        if entry["kind"] != "material":
            add(entry, counts)
        for material in materials:
            total = per_material[material]
            total.direct += counts.direct
            total.via_type += counts.via_type
            total.types += counts.types
    for material in model.by_type("IfcMaterial"):
        add(_material_entry(material, fields), per_material.get(material.id(), _Use()))

    entries = sorted(
        merged.values(),
        key=lambda e: (
            KIND_ORDER.index(e["kind"]) if e["kind"] in KIND_ORDER else 99,
            e["name"] or "",
        ),
    )
    if len(entries) > max_items:
        out.notes.append(f"materials: {len(entries)} definitions, the first {max_items} listed")
        entries = entries[:max_items]
    out.entries = entries
    return out


def _canonical(definition: Any, fields: Fields) -> Any:
    """A usage stands for its set; anything else for itself."""
    if definition is None:
        return None
    attribute = USAGES.get(definition.is_a())
    return fields.get(definition, attribute) if attribute else definition


def _name(material: Any, fields: Fields) -> str | None:
    return fields.text(material, "Name")


def _thickness(value: Any, units: Units) -> float | None:
    return round(units.to_si("length", value), 6) if is_number(value) else None


def _material_entry(material: Any, fields: Fields) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": "material", "name": _name(material, fields)}
    if category := fields.text(material, "Category"):
        entry["category"] = category
    return entry


def _describe(definition: Any, fields: Fields, units: Units) -> tuple[dict[str, Any], set[int]]:
    """(entry, ids of the IfcMaterials in it) for one material definition."""
    cls = definition.is_a()
    kind = KINDS.get(cls, cls)
    used: set[int] = set()

    def material_name(material: Any) -> str | None:
        if material is None:
            return None
        used.add(material.id())
        return _name(material, fields)

    entry: dict[str, Any] = {"kind": kind}
    if kind == "material":
        used.add(definition.id())
        return _material_entry(definition, fields), used
    if kind == "layer_set":
        layers = [
            _layer(layer, fields, units, material_name)
            for layer in fields.get(definition, "MaterialLayers", ())
        ]
        entry["name"] = fields.text(definition, "LayerSetName")
        entry["layers"] = layers
        thicknesses = [layer["thickness"] for layer in layers if layer["thickness"] is not None]
        entry["total_thickness"] = round(sum(thicknesses), 6)
    elif kind == "profile_set":
        entry["name"] = fields.text(definition, "Name")
        entry["profiles"] = [
            _profile(profile, fields, material_name)
            for profile in fields.get(definition, "MaterialProfiles", ())
        ]
    elif kind == "constituent_set":
        entry["name"] = fields.text(definition, "Name")
        entry["constituents"] = [
            _constituent(constituent, fields, material_name)
            for constituent in fields.get(definition, "MaterialConstituents", ())
        ]
    elif kind == "list":
        names = [material_name(m) for m in fields.get(definition, "Materials", ())]
        entry["name"] = clip(", ".join(n or "?" for n in names))
        entry["materials"] = names
    elif kind == "layer":
        entry.update(_layer(definition, fields, units, material_name))
        entry["name"] = entry["name"] or entry["material"]
    elif kind == "profile":
        entry.update(_profile(definition, fields, material_name))
        entry["name"] = entry["name"] or entry["material"]
    elif kind == "constituent":
        entry.update(_constituent(definition, fields, material_name))
        entry["name"] = entry["name"] or entry["material"]
    else:
        entry["name"] = fields.text(definition, "Name")
    return entry, used


def _layer(layer: Any, fields: Fields, units: Units, material_name: Any) -> dict[str, Any]:
    return {
        "name": fields.text(layer, "Name"),
        "material": material_name(fields.get(layer, "Material")),
        "thickness": _thickness(fields.get(layer, "LayerThickness"), units),
    }


def _profile(profile: Any, fields: Fields, material_name: Any) -> dict[str, Any]:
    return {
        "name": fields.text(profile, "Name"),
        "material": material_name(fields.get(profile, "Material")),
        "profile": fields.text(fields.get(profile, "Profile"), "ProfileName"),
    }


def _constituent(constituent: Any, fields: Fields, material_name: Any) -> dict[str, Any]:
    fraction = fields.get(constituent, "Fraction")
    return {
        "name": fields.text(constituent, "Name"),
        "material": material_name(fields.get(constituent, "Material")),
        "fraction": fraction if is_number(fraction) else None,
        "category": fields.text(constituent, "Category"),
    }
