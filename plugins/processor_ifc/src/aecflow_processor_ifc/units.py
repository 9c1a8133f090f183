"""Project units, so lengths, areas and volumes are summed and reported in SI.

Models say "3000" for a 3 m wall when their length unit is the millimetre, and feet exist.
Totals across models only mean something in one unit, so every length, area, volume and mass
in the summary is converted with the scales found here (metre, m2, m3, kg, second).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aecflow_processor_ifc.fields import Fields, is_number, wrapped

PREFIXES = {
    "EXA": 1e18, "PETA": 1e15, "TERA": 1e12, "GIGA": 1e9, "MEGA": 1e6, "KILO": 1e3,
    "HECTO": 1e2, "DECA": 1e1, "DECI": 1e-1, "CENTI": 1e-2, "MILLI": 1e-3, "MICRO": 1e-6,
    "NANO": 1e-9, "PICO": 1e-12, "FEMTO": 1e-15, "ATTO": 1e-18,
}  # fmt: skip
#: The power a prefix is raised to: a MILLI SQUARE_METRE is (1e-3 m)^2.
POWERS = {"SQUARE_METRE": 2, "CUBIC_METRE": 3}
#: Named SI units whose base is not the SI unit the summary reports (kg, not g).
BASE = {"GRAM": 1e-3}
KINDS = {
    "LENGTHUNIT": "length",
    "AREAUNIT": "area",
    "VOLUMEUNIT": "volume",
    "MASSUNIT": "weight",
    "TIMEUNIT": "time",
}
SI_NAMES = {"length": "m", "area": "m2", "volume": "m3", "weight": "kg", "time": "s", "count": ""}


@dataclass
class Units:
    """Scale from project units to SI per kind, and the project's own unit names."""

    scale: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS.values(), 1.0))
    names: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_si(self, kind: str, value: float) -> float:
        return value * self.scale.get(kind, 1.0)


def project_units(model: Any, fields: Fields) -> Units:
    """The units of the (first) IfcProject's unit assignment; SI where none is declared."""
    units = Units()
    projects = model.by_type("IfcProject")
    assignment = fields.get(projects[0], "UnitsInContext") if projects else None
    for unit in fields.get(assignment, "Units", ()):
        unit_type = fields.get(unit, "UnitType")
        kind = KINDS.get(str(unit_type))
        if kind is None:
            continue
        scale, name = unit_scale(unit, fields)
        if scale is None:
            units.notes.append(f"unit #{unit.id()} ({name}) has no usable scale; taken as SI")
            continue
        units.scale[kind] = scale
        units.names[kind] = name
    return units


def unit_scale(unit: Any, fields: Fields, depth: int = 0) -> tuple[float | None, str]:
    """(scale to SI, name) of an IfcSIUnit or IfcConversionBasedUnit; None if unusable."""
    if unit is None or depth > 8:  # conversion chains are one or two long; cycles exist
        return None, "?"
    cls = unit.is_a()
    if fields.is_subtype(cls, "IfcSIUnit"):
        name = str(fields.get(unit, "Name", ""))
        prefix = fields.get(unit, "Prefix")
        base = BASE.get(name, 1.0)
        factor = PREFIXES.get(str(prefix), 1.0) if prefix else 1.0
        # "MILLIMETRE" reads well; "CENTICUBIC_METRE" does not.
        label = (f"{prefix} {name}" if "_" in name else f"{prefix}{name}") if prefix else name
        return base * factor ** POWERS.get(name, 1), label
    if fields.is_subtype(cls, "IfcConversionBasedUnit"):
        name = str(fields.get(unit, "Name", "?"))
        measure = fields.get(unit, "ConversionFactor")
        value = wrapped(fields.get(measure, "ValueComponent"))
        inner, _ = unit_scale(fields.get(measure, "UnitComponent"), fields, depth + 1)
        if not is_number(value) or inner is None:
            return None, name
        return float(value) * inner, name
    return None, cls
