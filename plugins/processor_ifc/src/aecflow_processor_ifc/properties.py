"""Property sets and quantities, from one pass over IfcRelDefinesByProperties.

That relationship attaches both property sets and element quantities to objects, so one pass
serves both. It is the hottest loop of the summary (a 1 GB model has about a million of these
relationships), hence positional access with positions checked once, and each quantity set
read once however many objects share it.

Quantities are totalled per IFC class and per quantity name in SI units (lengths in m, areas
in m2, volumes in m3, weights in kg), plus a total per kind. Summing "Length", "Width" and
"Height" into one length total is what the kind total is, so the per-name totals are the ones
to act on.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aecflow_processor_ifc.fields import Fields, clip, drain, is_number
from aecflow_processor_ifc.units import SI_NAMES, Units, unit_scale

QUANTITY_KINDS = {
    "IfcQuantityLength": "length",
    "IfcQuantityArea": "area",
    "IfcQuantityVolume": "volume",
    "IfcQuantityWeight": "weight",
    "IfcQuantityCount": "count",
    "IfcQuantityTime": "time",
    "IfcQuantityNumber": "count",
}
#: (Name, Unit, value) positions, the same in every simple quantity of every schema.
NAME, UNIT, VALUE = 0, 2, 3


@dataclass
class Properties:
    property_sets: dict[str, int] = field(default_factory=dict)
    quantities: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class _ClassTotals:
    objects: set[int] = field(default_factory=set)
    kinds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    names: dict[str, list[Any]] = field(default_factory=dict)  # name -> [kind, total, count]


def property_summary(
    model: Any, fields: Fields, units: Units, class_of: Callable[[Any], str], max_items: int
) -> Properties:
    """Property-set names with how many objects carry each, and quantity totals per class."""
    out = Properties()
    psets: Counter[str] = Counter()
    qsets: Counter[str] = Counter()
    totals: dict[str, _ClassTotals] = defaultdict(_ClassTotals)
    # A quantity set read once is usually used once: keep it only when it comes back.
    seen: set[int] = set()
    cache: dict[int, list[tuple[str, str, float]]] = {}
    skipped = [0]
    values = 0

    objects_at = fields.index("IfcRelDefinesByProperties", "RelatedObjects")
    definition_at = fields.index("IfcRelDefinesByProperties", "RelatingPropertyDefinition")
    name_at = fields.index("IfcPropertySet", "Name")
    quantities_at = fields.index("IfcElementQuantity", "Quantities")
    for rel in drain(model.by_type("IfcRelDefinesByProperties")):
        objects = rel.get_argument(objects_at) or ()
        definitions = rel.get_argument(definition_at)
        if not isinstance(definitions, tuple):
            definitions = (definitions,)
        for definition in definitions:
            if definition is None:
                continue
            name = clip(definition.get_argument(name_at)) or "(unnamed)"
            if definition.is_a() != "IfcElementQuantity":
                psets[name] += len(objects)
                continue
            qsets[name] += len(objects)
            ref = definition.id()
            quantities = cache.get(ref)
            if quantities is None:
                quantities = _read(
                    definition.get_argument(quantities_at) or (), fields, units, skipped
                )
                if ref in seen:
                    cache[ref] = quantities
                seen.add(ref)
            for obj in objects:
                per_class = totals[class_of(obj)]
                per_class.objects.add(obj.id())
                for kind, qname, value in quantities:
                    per_class.kinds[kind] += value
                    slot = per_class.names.get(qname)
                    if slot is None:
                        slot = per_class.names[qname] = [kind, 0.0, 0]
                    elif slot[0] != kind:  # the same name as another kind: keep them apart
                        qname = f"{qname} [{kind}]"
                        slot = per_class.names.setdefault(qname, [kind, 0.0, 0])
                    slot[1] += value
                    slot[2] += 1
                values += len(quantities)

    # Property sets on types apply to every occurrence, but are attached once: count the type.
    has_psets_at = fields.index("IfcTypeObject", "HasPropertySets")
    for type_object in model.by_type("IfcTypeObject"):
        for definition in type_object.get_argument(has_psets_at) or ():
            if definition is not None and definition.is_a() != "IfcElementQuantity":
                psets[clip(definition.get_argument(name_at)) or "(unnamed)"] += 1

    if skipped[0]:
        out.notes.append(f"{skipped[0]} quantity value(s) were not numbers and were left out")
    out.property_sets = _capped(psets, max_items, "property sets", out.notes)
    out.quantities = {
        "value_count": values,
        "units": {kind: SI_NAMES[kind] for kind in ("length", "area", "volume", "weight")},
        "sets": _capped(qsets, max_items, "quantity sets", out.notes),
        "by_class": {cls: _class_entry(totals[cls]) for cls in sorted(totals)},
    }
    return out


def _read(
    quantities: tuple[Any, ...], fields: Fields, units: Units, skipped: list[int], depth: int = 0
) -> list[tuple[str, str, float]]:
    """(kind, name, value in SI) for each simple quantity, complex quantities flattened."""
    out: list[tuple[str, str, float]] = []
    for quantity in quantities:
        if quantity is None:
            continue
        cls = quantity.is_a()
        kind = QUANTITY_KINDS.get(cls)
        if kind is None:
            if cls == "IfcPhysicalComplexQuantity" and depth < 8:
                inner = fields.get(quantity, "HasQuantities", ())
                out += _read(inner, fields, units, skipped, depth + 1)
            continue
        value = quantity.get_argument(VALUE)
        if not is_number(value):
            skipped[0] += 1
            continue
        unit = quantity.get_argument(UNIT)
        scale = unit_scale(unit, fields)[0] if unit is not None else None
        value = value * scale if scale is not None else units.to_si(kind, value)
        name = sys.intern(clip(quantity.get_argument(NAME)) or "(unnamed)")
        out.append((kind, name, float(value)))
    return out


def _class_entry(totals: _ClassTotals) -> dict[str, Any]:
    entry: dict[str, Any] = {"objects": len(totals.objects)}
    for kind, total in sorted(totals.kinds.items()):
        entry[kind] = _round(total)
    entry["by_name"] = {
        name: {"kind": kind, "total": _round(total), "count": count}
        for name, (kind, total, count) in sorted(totals.names.items())
    }
    return entry


def _round(value: float) -> float:
    """Totals to 1e-6 of their unit: enough for any model, and stable across runs."""
    return round(value, 6)


def _capped(counts: Counter[str], max_items: int, what: str, notes: list[str]) -> dict[str, int]:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(items) > max_items:
        notes.append(f"{what}: {len(items)} names, the {max_items} most common listed")
        items = items[:max_items]
    return dict(items)
