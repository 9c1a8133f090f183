"""Settings of the ``ifc`` processor (the ``[processors.ifc]`` table, validated by pydantic).

Kept free of IfcOpenShell imports: the host validates this model when a flow starts, and only
the child process that runs the processor should pay for loading the native library.
"""

from __future__ import annotations

from pathlib import Path

import pydantic

#: Supertypes IfcOpenShell skips while reading (``bypass_types``). The summary needs no
#: geometry, and geometry is most of a model: skipping it roughly halves the time and memory
#: of a lazy open. Single properties go too: the summary reports property-set names only, and
#: properties are about half of what remains in real models (FZK-Haus: 9,735 instances
#: loaded with them, 5,284 without).
SKIPPED_TYPES: tuple[str, ...] = (
    "IfcRepresentationItem",
    "IfcRepresentation",
    "IfcProductRepresentation",
    "IfcObjectPlacement",
    "IfcProperty",
)


class IfcProcessorConfig(pydantic.BaseModel):
    """Limits and tuning; the defaults suit models up to the 5 GB aecflow is built for."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    #: Largest .ifc member a .ifczip may unpack to (an IFC model is at most a few GB).
    zip_max_member_mb: int = pydantic.Field(default=8192, gt=0)
    #: Largest uncompressed/compressed ratio; IFC text compresses 5-20x, zip bombs 1000x.
    zip_max_ratio: float = pydantic.Field(default=200.0, gt=1.0)
    #: Memory a run needs: base + per_mb * file size in MB, as address space (what the core's
    #: RLIMIT_AS caps; IfcOpenShell's libraries alone map about 230 MB). Measured need plus
    #: 15-20%: the core refuses a file whose estimate exceeds its limit, so not more.
    memory_base_mb: int = pydantic.Field(default=320, gt=0)
    memory_per_mb: float = pydantic.Field(default=1.75, gt=0)
    #: Types IfcOpenShell does not load. Changing this changes what the summary can see.
    bypass_types: tuple[str, ...] = SKIPPED_TYPES
    #: Runs of this many "(" in a row mark a hostile or broken file (real IFC nests < 5).
    max_nesting: int = pydantic.Field(default=16, ge=4)
    #: Scan the text in a forked helper while IfcOpenShell parses (costs a second core,
    #: saves the scan's time); off, the scan runs first in the same process.
    parallel_scan: bool = True
    #: Caps on list lengths in the result, so one odd model cannot bloat the database row.
    max_items: int = pydantic.Field(default=1000, gt=0)
    max_tree_nodes: int = pydantic.Field(default=5000, gt=0)
    #: How many of IfcOpenShell's log messages the result quotes (all are counted).
    max_messages: int = pydantic.Field(default=20, ge=0)
    #: Where a .ifczip is unpacked (or a BOM stripped); default: the system temp directory.
    scratch_dir: Path | None = None
