"""Synthetic IFC4 models of any size, with the summary they must produce.

Tests and the bench need models far larger than the samples, and they need to know the right
answer without trusting the code under test: the generator writes STEP text directly (no
IfcOpenShell involved, so it is fast and uses little memory) and tallies what it wrote.

A model is a project, a site, a building and ``storeys`` storeys. Elements come in "bays",
distributed over the storeys round-robin; a bay holds four walls, a slab, a column, a door and
a membrane proxy. Every element has a placement and ``boxes`` faceted-brep boxes of geometry
(the bulk of the file, like a real export); all but the proxy carry an element quantity and a
property set. Materials
cover every kind the processor reports: layer sets (direct usages and inherited from a wall
type), a profile set, a constituent set inherited from a door type, a material list on a slab
type that its occurrences override, and a single layer assigned directly.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

_GUID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_$"

WALLS_PER_BAY = 4
#: Every n-th wall has no material of its own and inherits its type's layer set.
WALL_INHERITS_EVERY = 5

WALL_LAYERS = (("Gypsum", 0.0125), ("Brick", 0.175), ("Insulation", 0.1125))
SLAB_LAYERS = (("Concrete", 0.2), ("Screed", 0.05))
MEMBRANE = ("Bitumen", 0.004)
DOOR_CONSTITUENTS = (("Wood", 0.8, "Frame"), ("Glass", 0.2, "Glazing"))
SLAB_TYPE_LIST = ("Concrete", "Steel")
MATERIALS = ("Gypsum", "Brick", "Insulation", "Concrete", "Screed", "Steel", "Wood", "Glass")
MATERIALS += (MEMBRANE[0],)


@dataclass(frozen=True)
class Spec:
    """What to generate. ``bays=None`` means: as many as fit in ``target_bytes``."""

    storeys: int = 3
    bays: int | None = 10
    target_bytes: int | None = None
    boxes: int = 1
    #: "m" or "mm": the project length unit; quantities are written in it.
    length_unit: str = "m"
    project_name: str = "Synthetic project"


@dataclass
class Expected:
    """The summary facts that follow from what was written, tallied while writing."""

    entity_count: int = 0
    entity_counts: Counter[str] = field(default_factory=Counter)
    element_counts: Counter[str] = field(default_factory=Counter)
    storeys: list[str] = field(default_factory=list)
    storey_elements: dict[str, int] = field(default_factory=dict)
    project_name: str = ""
    #: class -> quantity name -> total in SI units (m, m2, m3).
    quantity_totals: dict[str, dict[str, float]] = field(default_factory=dict)
    #: class -> quantity name -> elements carrying it.
    quantity_counts: dict[str, Counter[str]] = field(default_factory=dict)
    quantity_values: int = 0
    #: pset name -> number of objects it is attached to.
    property_sets: Counter[str] = field(default_factory=Counter)
    #: (kind, name) -> {"elements", "direct", "via_type"}.
    material_use: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    elements_with_material: int = 0
    size: int = 0

    def add_quantity(self, cls: str, name: str, value_si: float) -> None:
        per_class = self.quantity_totals.setdefault(cls, {})
        per_class[name] = per_class.get(name, 0.0) + value_si
        self.quantity_counts.setdefault(cls, Counter())[name] += 1
        self.quantity_values += 1


def guid(n: int) -> str:
    """A deterministic, unique 22-character IFC GlobalId for the number ``n``."""
    chars = []
    for _ in range(21):
        n, r = divmod(n, 64)
        chars.append(_GUID_CHARS[r])
    return "0" + "".join(reversed(chars))


def real(x: float) -> str:
    """A STEP REAL: always with a decimal point, never an exponent without one."""
    text = f"{x:.6f}".rstrip("0")
    return text


def _r(x: float) -> float:
    """The value a reader gets back from ``real(x)``; tallies use it so they match exactly."""
    return float(real(x))


class _Writer:
    """Numbers instances and streams them to a file in large writes."""

    def __init__(self, out: IO[str], expected: Expected) -> None:
        self.out = out
        self.expected = expected
        self.next_id = 1
        self.guids = 0
        self.buffer: list[str] = []
        self.buffered = 0
        self.written = 0

    def add(self, keyword: str, args: str) -> int:
        ref = self.next_id
        self.next_id += 1
        line = f"#{ref}={keyword}({args});\n"
        self.buffer.append(line)
        self.buffered += len(line)
        self.expected.entity_counts[keyword] += 1
        if self.buffered > 1 << 20:
            self.flush()
        return ref

    def guid(self) -> str:
        self.guids += 1
        return f"'{guid(self.guids)}'"

    def flush(self) -> None:
        self.out.write("".join(self.buffer))
        self.written += self.buffered
        self.buffer.clear()
        self.buffered = 0

    @property
    def size(self) -> int:
        return self.written + self.buffered


def _refs(ids: list[int]) -> str:
    return "(" + ",".join(f"#{i}" for i in ids) + ")"


HEADER = """ISO-10303-21;
HEADER;
FILE_DESCRIPTION(('ViewDefinition [ReferenceView_V1.2]'),'2;1');
FILE_NAME('{name}','2024-01-01T00:00:00',('aecflow'),('aecflow'),'aecflow synthetic',
'aecflow synthetic generator','');
FILE_SCHEMA(('IFC4'));
ENDSEC;
DATA;
"""

FOOTER = "ENDSEC;\nEND-ISO-10303-21;\n"


def write_model(path: Path, spec: Spec = Spec()) -> Expected:
    """Write a model to ``path`` and return what its summary must say."""
    if spec.length_unit not in ("m", "mm"):
        raise ValueError("length_unit must be 'm' or 'mm'")
    if spec.bays is None and spec.target_bytes is None:
        raise ValueError("give bays or target_bytes")
    expected = Expected(project_name=spec.project_name)
    with path.open("w", encoding="ascii", newline="") as out:
        out.write(HEADER.format(name=path.name))
        w = _Writer(out, expected)
        _Model(w, spec).write()
        w.flush()
        out.write(FOOTER)
    expected.entity_count = sum(expected.entity_counts.values())
    expected.size = path.stat().st_size
    return expected


class _Model:
    """The model's structure; one method per part, each tallying into ``Expected``."""

    def __init__(self, w: _Writer, spec: Spec) -> None:
        self.w = w
        self.spec = spec
        self.e = w.expected
        # Lengths are written in the project unit; tallies are in metres.
        self.scale = 1000.0 if spec.length_unit == "mm" else 1.0

    def write(self) -> None:
        self._context()
        self._materials()
        self._spatial()
        self._types()
        self.walls: list[list[int]] = [[] for _ in range(self.spec.storeys)]
        self.own_usage: list[int] = []
        self.slabs: list[int] = []
        self.columns: list[int] = []
        self.doors: list[int] = []
        self.proxies: list[int] = []
        self.contained: list[list[int]] = [[] for _ in range(self.spec.storeys)]
        bay = 0
        while True:
            if self.spec.bays is not None and bay >= self.spec.bays:
                break
            if self.spec.target_bytes is not None and self.w.size >= self.spec.target_bytes:
                break
            self._bay(bay)
            bay += 1
        self._relationships()

    # -- fixed parts ------------------------------------------------------------------------

    def _context(self) -> None:
        w = self.w
        person = w.add("IFCPERSON", "$,$,'Synthetic',$,$,$,$,$")
        org = w.add("IFCORGANIZATION", "$,'aecflow',$,$,$")
        pao = w.add("IFCPERSONANDORGANIZATION", f"#{person},#{org},$")
        app = w.add("IFCAPPLICATION", f"#{org},'0.1','aecflow synthetic generator','aecflow-synth'")
        self.oh = w.add("IFCOWNERHISTORY", f"#{pao},#{app},$,.ADDED.,1704067200,$,$,1704067200")
        origin = w.add("IFCCARTESIANPOINT", "(0.,0.,0.)")
        self.world = w.add("IFCAXIS2PLACEMENT3D", f"#{origin},$,$")
        self.ctx = w.add("IFCGEOMETRICREPRESENTATIONCONTEXT", f"$,'Model',3,1.E-05,#{self.world},$")
        self.body = w.add(
            "IFCGEOMETRICREPRESENTATIONSUBCONTEXT",
            f"'Body','Model',*,*,*,*,#{self.ctx},$,.MODEL_VIEW.,$",
        )
        prefix = ".MILLI." if self.spec.length_unit == "mm" else "$"
        units = [
            w.add("IFCSIUNIT", f"*,.LENGTHUNIT.,{prefix},.METRE."),
            w.add("IFCSIUNIT", "*,.AREAUNIT.,$,.SQUARE_METRE."),
            w.add("IFCSIUNIT", "*,.VOLUMEUNIT.,$,.CUBIC_METRE."),
            w.add("IFCSIUNIT", "*,.PLANEANGLEUNIT.,$,.RADIAN."),
        ]
        self.units = w.add("IFCUNITASSIGNMENT", _refs(units))

    def _materials(self) -> None:
        w, s = self.w, self.scale
        self.mat = {name: w.add("IFCMATERIAL", f"'{name}',$,$") for name in MATERIALS}
        layers = [
            w.add("IFCMATERIALLAYER", f"#{self.mat[m]},{real(t * s)},.F.,'{m} layer',$,$,$")
            for m, t in WALL_LAYERS
        ]
        self.wall_set = w.add("IFCMATERIALLAYERSET", f"{_refs(layers)},'Wall 300',$")
        self.wall_usage = w.add(
            "IFCMATERIALLAYERSETUSAGE", f"#{self.wall_set},.AXIS2.,.POSITIVE.,0.,$"
        )
        layers = [
            w.add("IFCMATERIALLAYER", f"#{self.mat[m]},{real(t * s)},.F.,'{m} layer',$,$,$")
            for m, t in SLAB_LAYERS
        ]
        self.slab_set = w.add("IFCMATERIALLAYERSET", f"{_refs(layers)},'Slab 250',$")
        self.slab_usage = w.add(
            "IFCMATERIALLAYERSETUSAGE", f"#{self.slab_set},.AXIS3.,.POSITIVE.,0.,$"
        )
        pos = w.add("IFCCARTESIANPOINT", "(0.,0.)")
        axis = w.add("IFCAXIS2PLACEMENT2D", f"#{pos},$")
        side = real(0.3 * s)
        profile = w.add("IFCRECTANGLEPROFILEDEF", f".AREA.,'300x300',#{axis},{side},{side}")
        mprofile = w.add(
            "IFCMATERIALPROFILE", f"'Column core',$,#{self.mat['Concrete']},#{profile},$,$"
        )
        self.profile_set = w.add("IFCMATERIALPROFILESET", f"'Column 300x300',$,(#{mprofile}),$")
        self.profile_usage = w.add("IFCMATERIALPROFILESETUSAGE", f"#{self.profile_set},5,$")
        constituents = [
            w.add("IFCMATERIALCONSTITUENT", f"'{cat}',$,#{self.mat[m]},{real(f)},'{cat}'")
            for m, f, cat in DOOR_CONSTITUENTS
        ]
        self.door_set = w.add("IFCMATERIALCONSTITUENTSET", f"'Door leaf',$,{_refs(constituents)}")
        self.slab_list = w.add("IFCMATERIALLIST", _refs([self.mat[m] for m in SLAB_TYPE_LIST]))
        m, t = MEMBRANE
        self.membrane = w.add(
            "IFCMATERIALLAYER", f"#{self.mat[m]},{real(t * s)},.F.,'Membrane',$,$,$"
        )
        # The layer is assigned to proxies on its own; a set holding it keeps the file valid
        # (IfcMaterialLayer.ToMaterialLayerSet must not be empty). Nothing uses the set.
        w.add("IFCMATERIALLAYERSET", f"(#{self.membrane}),'Membrane set',$")

    def _placement(self, relative_to: int | None, x: float, y: float, z: float) -> int:
        w = self.w
        point = w.add("IFCCARTESIANPOINT", f"({real(x)},{real(y)},{real(z)})")
        axes = w.add("IFCAXIS2PLACEMENT3D", f"#{point},$,$")
        parent = f"#{relative_to}" if relative_to else "$"
        return w.add("IFCLOCALPLACEMENT", f"{parent},#{axes}")

    def _spatial(self) -> None:
        w, s, e = self.w, self.scale, self.e
        oh = self.oh
        self.project = w.add(
            "IFCPROJECT",
            f"{w.guid()},#{oh},'{self.spec.project_name}',$,$,$,$,(#{self.ctx}),#{self.units}",
        )
        site_place = self._placement(None, 0, 0, 0)
        self.site = w.add(
            "IFCSITE", f"{w.guid()},#{oh},'Site',$,$,#{site_place},$,$,.ELEMENT.,$,$,$,$,$"
        )
        building_place = self._placement(site_place, 0, 0, 0)
        self.building = w.add(
            "IFCBUILDING",
            f"{w.guid()},#{oh},'Building A',$,$,#{building_place},$,$,.ELEMENT.,$,$,$",
        )
        self.storey_ids: list[int] = []
        self.storey_places: list[int] = []
        # Written top-down on purpose: the summary orders storeys by elevation, not file order.
        for level in reversed(range(self.spec.storeys)):
            z = level * 3.0 * s
            place = self._placement(building_place, 0, 0, z)
            name = f"Level {level}"
            ref = w.add(
                "IFCBUILDINGSTOREY",
                f"{w.guid()},#{oh},'{name}',$,$,#{place},$,$,.ELEMENT.,{real(z)}",
            )
            self.storey_ids.insert(0, ref)
            self.storey_places.insert(0, place)
        e.storeys = [f"Level {level}" for level in range(self.spec.storeys)]
        e.storey_elements = dict.fromkeys(e.storeys, 0)

    def _types(self) -> None:
        w, oh = self.w, self.oh
        self.wall_type = w.add(
            "IFCWALLTYPE", f"{w.guid()},#{oh},'Wall 300 type',$,$,$,$,$,$,.STANDARD."
        )
        self.slab_type = w.add(
            "IFCSLABTYPE", f"{w.guid()},#{oh},'Slab 250 type',$,$,$,$,$,$,.FLOOR."
        )
        self.door_type = w.add(
            "IFCDOORTYPE",
            f"{w.guid()},#{oh},'Door type',$,$,$,$,$,$,.DOOR.,.SINGLE_SWING_LEFT.,.F.,$",
        )

    # -- elements ---------------------------------------------------------------------------

    def _box(self, x0: float, y0: float, z0: float, dx: float, dy: float, dz: float) -> int:
        """A closed faceted brep box: 28 geometry instances, like a real exporter's bulk."""
        w = self.w
        corners = [
            (x0 + i * dx, y0 + j * dy, z0 + k * dz) for k in (0, 1) for j in (0, 1) for i in (0, 1)
        ]
        pts = [
            w.add("IFCCARTESIANPOINT", f"({real(a)},{real(b)},{real(c)})") for a, b, c in corners
        ]
        quads = ((0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3))
        faces = []
        for quad in quads:
            loop = w.add("IFCPOLYLOOP", _refs([pts[i] for i in quad]))
            bound = w.add("IFCFACEOUTERBOUND", f"#{loop},.T.")
            faces.append(w.add("IFCFACE", f"(#{bound})"))
        shell = w.add("IFCCLOSEDSHELL", _refs(faces))
        return w.add("IFCFACETEDBREP", f"#{shell}")

    def _shape(self, dims: tuple[float, float, float]) -> int:
        w, s = self.w, self.scale
        dx, dy, dz = (d * s for d in dims)
        items = [self._box(0, 0, i * dz, dx, dy, dz) for i in range(self.spec.boxes)]
        rep = w.add("IFCSHAPEREPRESENTATION", f"#{self.body},'Body','Brep',{_refs(items)}")
        return w.add("IFCPRODUCTDEFINITIONSHAPE", f"$,$,(#{rep})")

    def _quantities(
        self, element: int, cls: str, qset: str, values: list[tuple[str, str, float]]
    ) -> None:
        """``values``: (IFC quantity keyword, name, value in metres^n as written in SI)."""
        w, e = self.w, self.e
        qs = []
        for keyword, name, value_si in values:
            power = {"IFCQUANTITYLENGTH": 1, "IFCQUANTITYAREA": 2, "IFCQUANTITYVOLUME": 3}[keyword]
            # Areas and volumes are in m2 and m3 (the unit assignment says so), lengths in
            # the length unit.
            written = value_si * self.scale if power == 1 else value_si
            text = real(written)
            qs.append(w.add(keyword, f"'{name}',$,$,{text},$"))
            e.add_quantity(cls, name, float(text) / self.scale if power == 1 else float(text))
        q = w.add("IFCELEMENTQUANTITY", f"{w.guid()},#{self.oh},'{qset}',$,$,{_refs(qs)}")
        w.add("IFCRELDEFINESBYPROPERTIES", f"{w.guid()},#{self.oh},$,$,(#{element}),#{q}")

    def _pset(self, element: int, name: str, props: list[str]) -> None:
        w = self.w
        ps = [w.add("IFCPROPERTYSINGLEVALUE", p) for p in props]
        pset = w.add("IFCPROPERTYSET", f"{w.guid()},#{self.oh},'{name}',$,{_refs(ps)}")
        w.add("IFCRELDEFINESBYPROPERTIES", f"{w.guid()},#{self.oh},$,$,(#{element}),#{pset}")
        self.e.property_sets[name] += 1

    def _element(
        self,
        keyword: str,
        cls: str,
        storey: int,
        name: str,
        tail: str,
        dims: tuple[float, float, float],
        at: tuple[float, float],
    ) -> int:
        w, e = self.w, self.e
        place = self._placement(
            self.storey_places[storey], at[0] * self.scale, at[1] * self.scale, 0
        )
        shape = self._shape(dims)
        ref = w.add(keyword, f"{w.guid()},#{self.oh},'{name}',$,$,#{place},#{shape},$,{tail}")
        e.element_counts[cls] += 1
        e.storey_elements[e.storeys[storey]] += 1
        self.contained[storey].append(ref)
        return ref

    def _bay(self, bay: int) -> None:
        storey = bay % self.spec.storeys
        x = float(bay // self.spec.storeys) * 6.0
        for k in range(WALLS_PER_BAY):
            n = bay * WALLS_PER_BAY + k
            length = _r(4.0 + (n % 7) * 0.5)
            height, thick = 3.0, 0.3
            ref = self._element(
                "IFCWALL",
                "IfcWall",
                storey,
                f"Wall {n}",
                ".STANDARD.",
                (length, thick, height),
                (x, k * 1.5),
            )
            self.walls[storey].append(ref)
            if n % WALL_INHERITS_EVERY != 0:
                self.own_usage.append(ref)
            self._quantities(
                ref,
                "IfcWall",
                "Qto_WallBaseQuantities",
                [
                    ("IFCQUANTITYLENGTH", "Length", length),
                    ("IFCQUANTITYLENGTH", "Width", thick),
                    ("IFCQUANTITYLENGTH", "Height", height),
                    ("IFCQUANTITYAREA", "GrossSideArea", length * height),
                    ("IFCQUANTITYVOLUME", "NetVolume", length * height * thick),
                ],
            )
            self._pset(
                ref,
                "Pset_WallCommon",
                [
                    "'IsExternal',$,IFCBOOLEAN(.T.),$",
                    "'LoadBearing',$,IFCBOOLEAN(.F.),$",
                ],
            )
        side = _r(5.0 + (bay % 3))
        slab = self._element(
            "IFCSLAB", "IfcSlab", storey, f"Slab {bay}", ".FLOOR.", (side, side, 0.25), (x, 0)
        )
        self.slabs.append(slab)
        self._quantities(
            slab,
            "IfcSlab",
            "Qto_SlabBaseQuantities",
            [
                ("IFCQUANTITYLENGTH", "Width", side),
                ("IFCQUANTITYLENGTH", "Length", side),
                ("IFCQUANTITYLENGTH", "Depth", 0.25),
                ("IFCQUANTITYAREA", "GrossArea", side * side),
                ("IFCQUANTITYVOLUME", "GrossVolume", side * side * 0.25),
            ],
        )
        self._pset(slab, "Pset_SlabCommon", ["'IsExternal',$,IFCBOOLEAN(.F.),$"])
        column = self._element(
            "IFCCOLUMN", "IfcColumn", storey, f"Column {bay}", ".COLUMN.", (0.3, 0.3, 3.0), (x, 5)
        )
        self.columns.append(column)
        self._quantities(
            column,
            "IfcColumn",
            "Qto_ColumnBaseQuantities",
            [
                ("IFCQUANTITYLENGTH", "Length", 3.0),
                ("IFCQUANTITYAREA", "CrossSectionArea", 0.09),
                ("IFCQUANTITYVOLUME", "GrossVolume", 0.27),
            ],
        )
        self._pset(column, "Pset_ColumnCommon", ["'LoadBearing',$,IFCBOOLEAN(.T.),$"])
        door = self._element(
            "IFCDOOR",
            "IfcDoor",
            storey,
            f"Door {bay}",
            "2.1,0.9,.DOOR.,.SINGLE_SWING_LEFT.,$",
            (0.9, 0.1, 2.1),
            (x + 1, 0),
        )
        self.doors.append(door)
        self._quantities(
            door,
            "IfcDoor",
            "Qto_DoorBaseQuantities",
            [
                ("IFCQUANTITYLENGTH", "Width", 0.9),
                ("IFCQUANTITYLENGTH", "Height", 2.1),
                ("IFCQUANTITYAREA", "Area", _r(0.9 * 2.1)),
            ],
        )
        self._pset(door, "Pset_DoorCommon", ["'FireRating',$,IFCLABEL('EI30'),$"])
        proxy = self._element(
            "IFCBUILDINGELEMENTPROXY",
            "IfcBuildingElementProxy",
            storey,
            f"Membrane {bay}",
            ".ELEMENT.",
            (side, side, 0.004),
            (x, 0),
        )
        self.proxies.append(proxy)

    # -- relationships ----------------------------------------------------------------------

    def _relationships(self) -> None:
        w, e, oh = self.w, self.e, self.oh
        w.add("IFCRELAGGREGATES", f"{w.guid()},#{oh},$,$,#{self.project},(#{self.site})")
        w.add("IFCRELAGGREGATES", f"{w.guid()},#{oh},$,$,#{self.site},(#{self.building})")
        # Top-down, like the storeys themselves: only the summary sorts them by elevation.
        top_down = list(reversed(self.storey_ids))
        w.add("IFCRELAGGREGATES", f"{w.guid()},#{oh},$,$,#{self.building},{_refs(top_down)}")
        for storey, refs in zip(self.storey_ids, self.contained, strict=True):
            if refs:
                w.add(
                    "IFCRELCONTAINEDINSPATIALSTRUCTURE",
                    f"{w.guid()},#{oh},$,$,{_refs(refs)},#{storey}",
                )

        walls = [ref for per_storey in self.walls for ref in per_storey]
        self._types_rel(self.wall_type, walls)
        self._types_rel(self.slab_type, self.slabs)
        self._types_rel(self.door_type, self.doors)

        def associate(material: int, objects: list[int]) -> None:
            # Split like exporters do, so the processor sees several relationships per material.
            for start in range(0, len(objects), 1000):
                chunk = objects[start : start + 1000]
                w.add(
                    "IFCRELASSOCIATESMATERIAL", f"{w.guid()},#{oh},$,$,{_refs(chunk)},#{material}"
                )

        associate(self.wall_usage, self.own_usage)
        associate(self.wall_set, [self.wall_type])
        associate(self.slab_usage, self.slabs)
        associate(self.slab_list, [self.slab_type])
        associate(self.profile_usage, self.columns)
        associate(self.door_set, [self.door_type])
        associate(self.membrane, self.proxies)

        n_walls, n_own = len(walls), len(self.own_usage)
        n_slabs, n_cols, n_doors, n_prox = (
            len(self.slabs),
            len(self.columns),
            len(self.doors),
            len(self.proxies),
        )

        def use(kind: str, name: str, direct: int, via_type: int) -> None:
            e.material_use[(kind, name)] = {
                "elements": direct + via_type,
                "direct": direct,
                "via_type": via_type,
            }

        use("layer_set", "Wall 300", n_own, n_walls - n_own)
        use("layer_set", "Slab 250", n_slabs, 0)
        use("list", "Concrete, Steel", 0, 0)
        use("profile_set", "Column 300x300", n_cols, 0)
        use("constituent_set", "Door leaf", 0, n_doors)
        use("layer", "Membrane", n_prox, 0)
        for name in ("Gypsum", "Brick", "Insulation"):
            use("material", name, n_own, n_walls - n_own)
        use("material", "Concrete", n_slabs + n_cols, 0)
        use("material", "Screed", n_slabs, 0)
        use("material", "Steel", 0, 0)
        use("material", "Wood", 0, n_doors)
        use("material", "Glass", 0, n_doors)
        use("material", "Bitumen", n_prox, 0)
        e.elements_with_material = n_walls + n_slabs + n_cols + n_doors + n_prox

    def _types_rel(self, type_ref: int, objects: list[int]) -> None:
        w = self.w
        for start in range(0, len(objects), 1000):
            chunk = objects[start : start + 1000]
            w.add("IFCRELDEFINESBYTYPE", f"{w.guid()},#{self.oh},$,$,{_refs(chunk)},#{type_ref}")


def main(argv: list[str] | None = None) -> None:
    """``python -m aecflow_processor_ifc.testing.synthetic OUT.ifc --mb 100``: write a model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--mb", type=float, default=10.0, help="target size in MB")
    parser.add_argument("--storeys", type=int, default=5)
    parser.add_argument("--boxes", type=int, default=1)
    parser.add_argument("--unit", choices=("m", "mm"), default="m")
    args = parser.parse_args(argv)
    spec = Spec(
        storeys=args.storeys,
        bays=None,
        target_bytes=int(args.mb * 1e6),
        boxes=args.boxes,
        length_unit=args.unit,
    )
    expected = write_model(args.out, spec)
    summary: dict[str, Any] = {
        "size": expected.size,
        "entity_count": expected.entity_count,
        "elements": sum(expected.element_counts.values()),
    }
    print(summary)


if __name__ == "__main__":
    main()
