"""Settings of the IFC steps (``[processing.processors.ifc-validate]`` and so on).

Free of IfcOpenShell imports, like :mod:`aecflow_processor_ifc.config`: the host validates these
models at start-up and only the child that runs a step loads the native library.
"""

from __future__ import annotations

from pathlib import Path

import pydantic

from aecflow_processor_ifc.config import IfcProcessorConfig


class StepConfig(pydantic.BaseModel):
    """What every step shares: how an upload becomes a STEP file, and its memory estimate."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    #: As for the ``ifc`` processor: limits on unpacking a .ifczip.
    zip_max_member_mb: int = pydantic.Field(default=8192, gt=0)
    zip_max_ratio: float = pydantic.Field(default=200.0, gt=1.0)
    #: Address space a run needs: base + per_mb * file size in MB (see each step's default).
    memory_base_mb: int = pydantic.Field(default=400, gt=0)
    memory_per_mb: float = pydantic.Field(default=6.0, gt=0)
    #: Parentheses nested this deep mark a hostile or broken file (checked beside the parse).
    max_nesting: int = pydantic.Field(default=16, ge=4)
    #: Where a .ifczip is unpacked (or a BOM stripped); default: the system temp directory.
    scratch_dir: Path | None = None

    def inputs_config(self) -> IfcProcessorConfig:
        """The settings :func:`aecflow_processor_ifc.inputs.prepared` reads."""
        return IfcProcessorConfig(
            zip_max_member_mb=self.zip_max_member_mb,
            zip_max_ratio=self.zip_max_ratio,
            max_nesting=self.max_nesting,
            scratch_dir=self.scratch_dir,
        )


class ValidateConfig(StepConfig):
    """``ifc-validate``: schema validation with ``ifcopenshell.validate``."""

    #: Also run the EXPRESS WHERE rules and global rules (``express_rules=True``): much slower
    #: (generated Python per rule), so off by default.
    express_rules: bool = False
    #: Issues quoted in the result (all are counted); the artifact holds up to ``max_issues``.
    max_result_issues: int = pydantic.Field(default=100, ge=0)
    max_issues: int = pydantic.Field(default=100_000, ge=0)
    #: One issue's message and instance text are cut to this many characters (a message can
    #: quote an aggregate of 100,000 references).
    max_message_chars: int = pydantic.Field(default=2000, ge=80)


class IdsConfig(StepConfig):
    """``ifc-ids``: checks against IDS files with ifctester."""

    #: IDS files checked for every project without an entry in ``projects``.
    ids: tuple[Path, ...] = ()
    #: Per project, the IDS files checked instead of ``ids`` (an empty list: none).
    projects: dict[str, tuple[Path, ...]] = {}
    #: Report artifacts written per IDS file: "json" (ifctester's Json reporter), "bcf"
    #: (its Bcf reporter, one topic per failing element) and "html".
    reports: tuple[str, ...] = ("json", "bcf")
    #: Failing elements quoted per requirement in the result (all are counted).
    max_failures: int = pydantic.Field(default=20, ge=0)

    @pydantic.field_validator("reports")
    @classmethod
    def _known_reports(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - {"json", "bcf", "html"})
        if unknown:
            raise ValueError(f"unknown report kinds {unknown}; choose from json, bcf, html")
        return value

    @pydantic.model_validator(mode="after")
    def _files_exist(self) -> IdsConfig:
        """A missing IDS file is the operator's mistake: say so at start-up, not per upload."""
        named = list(self.ids) + [p for paths in self.projects.values() for p in paths]
        missing = [str(p) for p in named if not p.is_file()]
        if missing:
            raise ValueError(f"IDS files not found: {', '.join(missing)}")
        return self

    def ids_for(self, project: str) -> tuple[Path, ...]:
        return self.projects.get(project, self.ids)


class CsvConfig(StepConfig):
    """``ifc-csv``: one CSV row per element."""

    #: Classes exported (with their subclasses).
    classes: tuple[str, ...] = ("IfcElement",)
    #: Property and quantity sets whose properties become columns ``Set.Property``.
    psets: tuple[str, ...] = ()
    #: The artifact's name.
    filename: str = pydantic.Field(
        default="elements.csv", pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"
    )
