"""Property sets and quantities, from one pass over IfcRelDefinesByProperties.

That relationship attaches both property sets and element quantities to objects, so one pass
serves both. It is the hottest loop of the summary (a 1 GB model has about a million of these
relationships), hence positional access with positions checked once, and each quantity set
read once however many objects share it.

Quantities are totalled per IFC class and per quantity name, in SI units (m, m2, m3, kg, s),
never summed across names: GrossArea and NetArea are different figures. Each element counts
once per name. Exporters write some names twice for one element (Revit: NetVolume once in
cubic millimetres and once in cubic metres, in one set; ArchiCAD: a door's height in two sets);
one value wins by a fixed rule (see ``_winner``) and ``notes`` says where values disagreed.
"""

from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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
#: Areas and volumes are powers of a length: the power, to recognise values written in the
#: project's length unit (mm2, mm3) where the project declares m2 and m3.
POWER = {"area": 2, "volume": 3}
#: Values closer than this (relatively) are the same value written twice.
SAME = 1e-6


class _Value(NamedTuple):
    """One quantity as read: the SI value, and what is needed to judge a disagreement."""

    kind: str
    name: str
    value: float  # in SI, by the quantity's own unit, else the project's
    alternative: float | None  # in SI, read in the project's length unit^n instead
    qset: str


@dataclass
class Properties:
    property_sets: dict[str, int] = field(default_factory=dict)
    quantities: dict[str, Any] = field(default_factory=dict)
    quantity_sets: dict[str, int] = field(default_factory=dict)
    quantity_value_count: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Conflict:
    """Elements of one class whose values for one name disagreed, and how it was settled."""

    elements: int = 0
    example: str = ""
    length_based: int = 0  # values left out as written in the length unit^n


def property_summary(
    model: Any, fields: Fields, units: Units, class_of: Callable[[Any], str], max_items: int
) -> Properties:
    """Property-set names with how many objects carry each, and quantity totals per class."""
    out = Properties()
    psets: Counter[str] = Counter()
    qsets: Counter[str] = Counter()
    # Object id -> (class, quantity set ids): merged per object once every set is known.
    sets_of: dict[int, tuple[Any, ...]] = {}
    uses: Counter[int] = Counter()
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
            for obj in objects:
                known = sets_of.get(obj.id())
                sets_of[obj.id()] = (class_of(obj), ref) if known is None else (*known, ref)
                uses[ref] += 1

    # Each set read once; kept only while objects still need it (most sets serve one).
    cache: dict[int, list[_Value]] = {}
    skipped = [0]

    def read(ref: int) -> list[_Value]:
        got = cache.get(ref)
        if got is None:
            definition = model.by_id(ref)
            qset = clip(definition.get_argument(name_at)) or "(unnamed)"
            got = _read(definition.get_argument(quantities_at) or (), qset, fields, units, skipped)
            if uses[ref] > 1:
                cache[ref] = got
        uses[ref] -= 1
        if uses[ref] <= 0:
            cache.pop(ref, None)
        return got

    totals: dict[str, dict[str, list[Any]]] = defaultdict(dict)  # class -> name -> [kind, sum, n]
    conflicts: dict[tuple[str, str], _Conflict] = defaultdict(_Conflict)
    repeated = 0
    for oid, (cls, *refs) in sets_of.items():
        found: dict[str, list[_Value]] = {}
        for ref in refs:
            for value in read(ref):
                found.setdefault(_keyed(value, found), []).append(value)
                values += 1
        per_class = totals[cls]
        for qname, candidates in found.items():
            winner = candidates[0]
            if len(candidates) > 1:
                winner, dropped = _winner(candidates)
                if dropped is None:
                    repeated += len(candidates) - 1
                else:
                    _record(conflicts[(cls, qname)], oid, candidates, winner, dropped)
            slot = per_class.get(qname)
            if slot is None:
                slot = per_class[qname] = [winner.kind, 0.0, 0]
            slot[1] += winner.value
            slot[2] += 1

    # Property sets on types apply to every occurrence, but are attached once: count the type.
    has_psets_at = fields.index("IfcTypeObject", "HasPropertySets")
    for type_object in model.by_type("IfcTypeObject"):
        for definition in type_object.get_argument(has_psets_at) or ():
            if definition is not None and definition.is_a() != "IfcElementQuantity":
                psets[clip(definition.get_argument(name_at)) or "(unnamed)"] += 1

    if skipped[0]:
        out.notes.append(f"{skipped[0]} quantity value(s) were not numbers and were left out")
    if repeated:
        out.notes.append(
            f"{repeated} quantity value(s) repeat a name an element already has, with the same "
            "value; each element counts once per name"
        )
    out.notes += [_conflict_note(cls, qname, c) for (cls, qname), c in sorted(conflicts.items())]
    out.property_sets = _capped(psets, max_items, "property sets", out.notes)
    out.quantity_sets = _capped(qsets, max_items, "quantity sets", out.notes)
    out.quantity_value_count = values
    out.quantities = {
        cls: {
            qname: {"value": _round(total), "unit": _unit(kind), "count": count}
            for qname, (kind, total, count) in sorted(totals[cls].items())
        }
        for cls in sorted(totals)
    }
    return out


def _keyed(value: _Value, found: dict[str, list[_Value]]) -> str:
    """The name a value is totalled under; the same name as another kind is kept apart."""
    same = found.get(value.name)
    if same is None or same[0].kind == value.kind:
        return value.name
    return f"{value.name} [{value.kind}]"


def _winner(candidates: list[_Value]) -> tuple[_Value, list[_Value] | None]:
    """The value that counts for one element and name, and the ones left out (None: all equal).

    A value whose reading in the project's length unit^n (mm3 where the project says m3)
    comes within a factor of 10 of another value, while its declared reading is off by more,
    was written in the wrong unit: it is left out. Of the rest, a standard ``Qto_`` set wins,
    else the first value in the file.
    """
    first = candidates[0].value
    if all(_close(c.value, first, SAME) for c in candidates):
        return candidates[0], None
    kept = [
        c
        for c in candidates
        if not any(
            c.alternative is not None
            and _close(c.alternative, other.value, 10.0)
            and not _close(c.value, other.value, 10.0)
            for other in candidates
            if other is not c
        )
    ] or candidates
    winner = min(kept, key=lambda c: not c.qset.startswith("Qto_"))
    return winner, [c for c in candidates if c is not winner]


def _close(a: float, b: float, tolerance: float) -> bool:
    """Within a relative ``tolerance`` (SAME) or a factor (10.0); zero is close to zero only."""
    if tolerance < 1.0:
        return abs(a - b) <= tolerance * max(abs(a), abs(b), 1e-12)
    if a == 0 or b == 0 or (a < 0) != (b < 0):
        return a == b
    return abs(math.log10(a / b)) <= math.log10(tolerance)


def _record(
    conflict: _Conflict, oid: int, candidates: list[_Value], winner: _Value, dropped: list[_Value]
) -> None:
    conflict.elements += 1
    conflict.length_based += sum(
        1
        for c in dropped
        if c.alternative is not None and _close(c.alternative, winner.value, 10.0)
    )
    if not conflict.example:
        unit = f" {_unit(winner.kind)}" if _unit(winner.kind) else ""
        shown = ", ".join(f"{c.value:g}{unit} in {c.qset!r}" for c in candidates)
        conflict.example = f"#{oid}: {shown}; counted {winner.value:g} from {winner.qset!r}"


def _conflict_note(cls: str, qname: str, conflict: _Conflict) -> str:
    why = "a standard Qto_ set wins, else the first value in the file"
    if conflict.length_based:
        why = (
            f"{conflict.length_based} value(s) read as written in the project's length unit "
            f"(squared or cubed) rather than its declared unit were left out; otherwise {why}"
        )
    return (
        f"quantities: {conflict.elements} {cls} element(s) carry different values for "
        f"{qname!r} (e.g. {conflict.example}); {why}"
    )


def _unit(kind: str) -> str | None:
    """The SI unit of a kind; None for counts, which have none."""
    return SI_NAMES.get(kind) or None


def _read(
    quantities: tuple[Any, ...],
    qset: str,
    fields: Fields,
    units: Units,
    skipped: list[int],
    depth: int = 0,
) -> list[_Value]:
    """Each simple quantity in SI, complex quantities flattened.

    The unit is the quantity's own (an IfcNamedUnit), else the project's for its kind.
    """
    out: list[_Value] = []
    for quantity in quantities:
        if quantity is None:
            continue
        cls = quantity.is_a()
        kind = QUANTITY_KINDS.get(cls)
        if kind is None:
            if cls == "IfcPhysicalComplexQuantity" and depth < 8:
                inner = fields.get(quantity, "HasQuantities", ())
                out += _read(inner, qset, fields, units, skipped, depth + 1)
            continue
        raw = quantity.get_argument(VALUE)
        if not is_number(raw):
            skipped[0] += 1
            continue
        unit = quantity.get_argument(UNIT)
        scale = unit_scale(unit, fields)[0] if unit is not None else None
        alternative = None
        if scale is None:
            scale = units.scale.get(kind, 1.0)
            power = POWER.get(kind)
            if power is not None:
                by_length = units.scale.get("length", 1.0) ** power
                if not _close(by_length, scale, 1.5):
                    alternative = float(raw) * by_length
        name = sys.intern(clip(quantity.get_argument(NAME)) or "(unnamed)")
        out.append(_Value(kind, name, float(raw) * scale, alternative, qset))
    return out


def _round(value: float) -> float:
    """Totals to 1e-6 of their unit: enough for any model, and stable across runs."""
    return round(value, 6)


def _capped(counts: Counter[str], max_items: int, what: str, notes: list[str]) -> dict[str, int]:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(items) > max_items:
        notes.append(f"{what}: {len(items)} names, the {max_items} most common listed")
        items = items[:max_items]
    return dict(items)
