"""The spatial tree (project, sites, buildings, storeys, spaces) and the storeys in order.

Built from the two relationship lists once (IfcRelAggregates for the hierarchy,
IfcRelContainedInSpatialStructure for how many elements each level holds), never by asking
each element for its container. Real files contain cycles (a storey aggregated into itself,
two buildings that decompose each other), so the walk keeps a visited set and an explicit
stack: every spatial element is listed once and no recursion limit is ever reached.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aecflow_processor_ifc.fields import Fields, drain, is_number
from aecflow_processor_ifc.units import Units


@dataclass
class Spatial:
    tree: list[dict[str, Any]] = field(default_factory=list)
    storeys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def spatial_summary(model: Any, fields: Fields, units: Units, max_nodes: int) -> Spatial:
    root_type = (
        "IfcSpatialStructureElement" if fields.schema_name == "IFC2X3" else "IfcSpatialElement"
    )
    nodes: dict[int, Any] = {e.id(): e for e in model.by_type(root_type)}
    projects = sorted(model.by_type("IfcProject"), key=lambda p: p.id())
    nodes.update((p.id(), p) for p in projects)

    children: dict[int, list[int]] = defaultdict(list)
    has_parent: set[int] = set()
    for rel in drain(model.by_type("IfcRelAggregates")):
        parent = fields.get(rel, "RelatingObject")
        if parent is None or parent.id() not in nodes:
            continue
        for child in fields.get(rel, "RelatedObjects", ()):
            if child is not None and child.id() in nodes:
                children[parent.id()].append(child.id())
                has_parent.add(child.id())

    contained: dict[int, int] = defaultdict(int)
    for rel in drain(model.by_type("IfcRelContainedInSpatialStructure")):
        structure = fields.get(rel, "RelatingStructure")
        if structure is not None:
            contained[structure.id()] += len(fields.get(rel, "RelatedElements", ()))

    out = Spatial()
    visited: set[int] = set()
    revisits = 0

    seen_order: dict[int, int] = {}

    def node(ref: int) -> dict[str, Any]:
        seen_order[ref] = len(seen_order)
        inst = nodes[ref]
        entry: dict[str, Any] = {
            "class": inst.is_a(),
            "name": label(fields, inst),
            "long_name": fields.text(inst, "LongName"),
            "elements": contained.get(ref, 0),
        }
        elevation = fields.get(inst, "Elevation") if entry["class"] == "IfcBuildingStorey" else None
        if is_number(elevation):
            entry["elevation"] = round(units.to_si("length", elevation), 6)
        entry["children"] = []
        return entry

    # Projects first, then spatial elements nobody aggregates, then whatever a cycle hides.
    ordered = [p.id() for p in projects]
    ordered += sorted(ref for ref in nodes if ref not in has_parent and ref not in ordered)
    ordered += sorted(nodes)
    truncated = False
    for root in ordered:
        if root in visited or truncated:
            continue
        if len(visited) >= max_nodes:
            truncated = True
            break
        visited.add(root)
        top = node(root)
        out.tree.append(top)
        stack = [(root, top)]
        while stack:
            ref, entry = stack.pop()
            for child in children.get(ref, ()):
                if child in visited:
                    revisits += 1
                    continue
                if len(visited) >= max_nodes:
                    truncated = True
                    break
                visited.add(child)
                sub = node(child)
                entry["children"].append(sub)
                stack.append((child, sub))

    if revisits:
        out.notes.append(
            f"the spatial structure reaches {revisits} element(s) a second time (a cycle or "
            "a double aggregation); each is listed once"
        )
    if truncated:
        out.notes.append(f"the spatial tree is cut at {max_nodes} nodes")
    out.storeys = _storeys_in_order(model, fields, units, seen_order)
    return out


def label(fields: Fields, inst: Any) -> str:
    """What a spatial element is called, in the tree and in ``storeys`` alike: its Name,
    else its LongName, else its STEP id (``#38``), so an unnamed storey is still findable."""
    return fields.text(inst, "Name") or fields.text(inst, "LongName") or f"#{inst.id()}"


def _storeys_in_order(
    model: Any, fields: Fields, units: Units, seen_order: dict[int, int]
) -> list[str]:
    """Every storey's name by elevation (unknown elevations last), ties in tree order."""
    found: list[tuple[bool, float, int, str]] = []
    for storey in model.by_type("IfcBuildingStorey"):
        ref = storey.id()
        elevation = fields.get(storey, "Elevation")
        known = is_number(elevation)
        level = units.to_si("length", elevation) if known else 0.0
        name = label(fields, storey)
        found.append((not known, level, seen_order.get(ref, len(seen_order) + ref), name))
    found.sort()
    return [name for *_, name in found]
