"""The summary of an opened model: everything but the parse report.

Also what the bench's plain-IfcOpenShell script runs, so both sides do the same extraction.
Each section is computed from relationship lists once (see the section modules); a section
that trips over something unexpected in a strange file is reported in ``notes`` and left
empty rather than losing the whole summary, except when memory ran out, which must surface.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from aecflow_processor_ifc.config import IfcProcessorConfig
from aecflow_processor_ifc.fields import Fields, drain
from aecflow_processor_ifc.header import header_summary
from aecflow_processor_ifc.materials import Materials, material_summary
from aecflow_processor_ifc.opening import raise_if_out_of_memory
from aecflow_processor_ifc.properties import Properties, property_summary
from aecflow_processor_ifc.spatial import Spatial, spatial_summary
from aecflow_processor_ifc.units import Units, project_units

T = TypeVar("T")


def summarise(model: Any, config: IfcProcessorConfig) -> dict[str, Any]:
    """The summary sections of ``model`` (opened lazily, geometry skipped)."""
    schema = model.schema_identifier
    fields = Fields(schema)
    notes: list[str] = []
    warnings: list[str] = []

    def section(name: str, compute: Callable[[], T], fallback: T) -> T:
        try:
            return compute()
        except Exception as exc:  # one odd section must not cost the rest of the summary
            raise_if_out_of_memory(exc)
            warnings.append(
                f"{name}: could not be summarised ({type(exc).__name__}: {exc}); that part of "
                "the summary is empty"
            )
            return fallback

    units = section("units", lambda: project_units(model, fields), Units())
    notes += units.notes
    product_class = {p.id(): p.is_a() for p in drain(model.by_type("IfcProduct"))}
    classes = Counter(product_class.values())
    element_counts = {c: n for c, n in classes.items() if fields.is_subtype(c, "IfcElement")}

    def class_of(obj: Any) -> str:
        return product_class.get(obj.id()) or obj.is_a()

    spatial = section(
        "spatial tree",
        lambda: spatial_summary(model, fields, units, config.max_tree_nodes),
        Spatial(),
    )
    materials = section(
        "materials",
        lambda: material_summary(model, fields, units, set(product_class), config.max_items),
        Materials(),
    )
    properties = section(
        "properties",
        lambda: property_summary(model, fields, units, class_of, config.max_items),
        Properties(),
    )
    notes += spatial.notes + materials.notes + properties.notes
    projects = model.by_type("IfcProject")
    project_name = None
    if projects:
        project_name = fields.text(projects[0], "Name") or fields.text(projects[0], "LongName")
    storeys = spatial.storeys
    if len(storeys) > config.max_items:
        notes.append(f"storeys: {len(storeys)}, the first {config.max_items} listed")
        storeys = storeys[: config.max_items]
    return {
        "schema": schema,
        "header": section("header", lambda: header_summary(model), {}),
        "application": section("application", lambda: _application(model, fields), None),
        "project_name": project_name,
        "units": {
            kind: {"name": name, "to_si": units.scale[kind]} for kind, name in units.names.items()
        },
        "product_count": len(product_class),
        "element_counts": dict(sorted(element_counts.items())),
        "storeys": storeys,
        "spatial_tree": spatial.tree,
        "materials": materials.entries,
        "elements_with_material": materials.elements_with_material,
        "quantities": properties.quantities,
        "quantity_sets": properties.quantity_sets,
        "quantity_value_count": properties.quantity_value_count,
        "property_sets": properties.property_sets,
        "warnings": warnings,
        "notes": notes,
    }


def _application(model: Any, fields: Fields) -> dict[str, Any] | None:
    """The authoring tool named in the first IfcApplication (owner histories point to it)."""
    applications = model.by_type("IfcApplication")
    if not applications:
        return None
    app = applications[0]
    return {
        "name": fields.text(app, "ApplicationFullName"),
        "version": fields.text(app, "Version"),
        "identifier": fields.text(app, "ApplicationIdentifier"),
        "developer": fields.text(fields.get(app, "ApplicationDeveloper"), "Name"),
    }
