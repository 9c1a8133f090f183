"""The step processors: what each accepts and needs; the work is in the modules they import.

All accept what the ``ifc`` processor accepts (every .ifc/.ifczip, so a broken model gets an
outcome with the reason rather than being skipped). None declares ``after``: each parses the
model itself, so one step's failure never keeps another from its own verdict.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from aecflow.processing import (
    Artifact,
    ProcessingContext,
    ProcessingResult,
    Processor,
    ResourceNeeds,
)
from aecflow_processor_ifc.processor import IfcProcessor
from aecflow_processor_ifc.steps.config import CsvConfig, IdsConfig, StepConfig, ValidateConfig

_MB = 1 << 20


class _IfcStep(Processor):
    """Accepts what ``IfcProcessor`` accepts; memory from the step's own estimate."""

    suffixes = IfcProcessor.suffixes
    media_types = IfcProcessor.media_types
    config: StepConfig

    def sniff(self, head: bytes) -> bool:
        return IfcProcessor.sniff(self, head)  # type: ignore[arg-type]

    def accepts(self, filename: str, content_type: str | None, head: bytes) -> bool:
        if Path(filename).suffix.lower() in self.suffixes:
            return True
        return super().accepts(filename, content_type, head)

    def resources(self, size: int) -> ResourceNeeds:
        """Address space for ``size`` bytes: ``memory_base_mb + memory_per_mb`` x MB."""
        if size <= 0:
            return ResourceNeeds()
        memory = self.config.memory_base_mb + self.config.memory_per_mb * size / _MB
        return ResourceNeeds(memory_mb=math.ceil(memory))


class ValidateStep(_IfcStep):
    """``ifc-validate``: ``ifcopenshell.validate``; counts, the first issues, all in an artifact."""

    def __init__(self, config: ValidateConfig | None = None) -> None:
        self.config = config or ValidateConfig()

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        from aecflow_processor_ifc.steps.common import artifact_path, step_input
        from aecflow_processor_ifc.steps.validation import ARTIFACT, validate_file

        with step_input(path, self.config) as prep:
            data = validate_file(prep.path, artifact_path(context, ARTIFACT), self.config)
            data["source"] = prep.source
        return _result(data, context, Artifact(ARTIFACT, "application/json"))


class IdsStep(_IfcStep):
    """``ifc-ids``: checks against the project's IDS files with ifctester.

    A project without IDS files gets a succeeded result ``{"checked": false, ...}`` naming
    why: the child cannot report "skipped", and nothing about the file is wrong.
    """

    def __init__(self, config: IdsConfig | None = None) -> None:
        self.config = config or IdsConfig()

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        ids_files = self.config.ids_for(context.project)
        if not ids_files:
            return ProcessingResult(
                data={
                    "checked": False,
                    "reason": f"no IDS files are configured for project {context.project!r}",
                    "ids": [],
                }
            )
        from aecflow_processor_ifc.steps.common import step_input
        from aecflow_processor_ifc.steps.ids_check import check

        with step_input(path, self.config) as prep:
            data, artifacts = check(prep.path, ids_files, self.config, context)
            data["source"] = prep.source
        return ProcessingResult(data=data, artifacts=artifacts)


class CsvStep(_IfcStep):
    """``ifc-csv``: elements with storey, type, material and chosen property sets, as CSV."""

    def __init__(self, config: CsvConfig | None = None) -> None:
        self.config = config or CsvConfig()

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        from aecflow_processor_ifc.steps.common import artifact_path, step_input
        from aecflow_processor_ifc.steps.csv_export import export

        name = self.config.filename
        with step_input(path, self.config) as prep:
            data = export(prep.path, artifact_path(context, name), self.config)
            data["source"] = prep.source
        return _result(data, context, Artifact(name, "text/csv"))


def _result(
    data: dict[str, Any], context: ProcessingContext, artifact: Artifact
) -> ProcessingResult:
    if context.output_dir is None:
        return ProcessingResult(data=data)
    data["artifact"] = artifact.name
    return ProcessingResult(data=data, artifacts=(artifact,))
