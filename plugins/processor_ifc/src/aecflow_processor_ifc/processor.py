"""The ``ifc`` processor: what it accepts, what it needs, and the order of the steps.

The steps live in their own modules; this one only sequences them. Importing it stays cheap
(no IfcOpenShell): the host builds the processor to ask ``accepts`` and ``resources``, and only
the isolated child that runs ``process`` loads the native library.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from aecflow.processing import (
    ProcessingContext,
    ProcessingResult,
    Processor,
    ResourceNeeds,
)
from aecflow_processor_ifc.config import IfcProcessorConfig
from aecflow_processor_ifc.header import is_step, is_zip

_MB = 1 << 20


class IfcProcessor(Processor):
    """Summarises IFC models (.ifc, .ifczip) with IfcOpenShell; see the package README."""

    suffixes = (".ifc", ".ifczip")
    media_types = (
        "application/x-step",
        "application/ifc",
        "application/x-ifc",
        "model/ifc",
        "application/x-ifczip",
    )

    def __init__(self, config: IfcProcessorConfig | None = None) -> None:
        self.config = config or IfcProcessorConfig()

    def sniff(self, head: bytes) -> bool:
        """A STEP file (a BOM tolerated) or a zip archive (checked for a .ifc member later)."""
        return is_step(head) or is_zip(head)

    def accepts(self, filename: str, content_type: str | None, head: bytes) -> bool:
        """Every ``.ifc``/``.ifczip`` file, whatever its first bytes, so a broken model is
        reported as invalid input with the reason instead of being silently skipped; other
        names only when the IFC media type is declared and the content looks like IFC."""
        if Path(filename).suffix.lower() in self.suffixes:
            return True
        return super().accepts(filename, content_type, head)

    def resources(self, size: int) -> ResourceNeeds:
        """Address space a run on ``size`` bytes needs: 320 MB + 1.75 x the size (defaults).

        Measured as VmPeak (the figure RLIMIT_AS caps) on synthetic models: 256 MB at 10 MB,
        412 MB at 100 MB, 1,051 MB at 505 MB; the defaults add 15-20%. The core refuses a
        file whose estimate exceeds its memory limit, so this is an estimate, not a generous
        bound. An unknown size (0) leaves the decision to the core's limit. A .ifczip's size
        is compressed, so its estimate is low; the core's limit still caps the run.
        """
        if size <= 0:
            return ResourceNeeds()
        memory = self.config.memory_base_mb + self.config.memory_per_mb * size / _MB
        return ResourceNeeds(memory_mb=math.ceil(memory))

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        """Summarise ``path``; raises InvalidInput for what is not a readable IFC model."""
        from aecflow_processor_ifc.extract import summarise
        from aecflow_processor_ifc.fields import Fields
        from aecflow_processor_ifc.honesty import reconcile, refuse_nesting
        from aecflow_processor_ifc.inputs import prepared
        from aecflow_processor_ifc.opening import ModelLog, open_model, raise_if_out_of_memory
        from aecflow_processor_ifc.scan import ScanJob

        config = self.config
        with prepared(path, config) as prep:
            job = ScanJob(prep.path, config.max_nesting, parallel=config.parallel_scan)
            try:
                log = ModelLog()
                try:
                    model = open_model(prep.path, config.bypass_types, log)
                    # Counted before the extraction allocates: the id list is large, transient.
                    loaded = len(model.entity_names())
                    try:
                        summary = summarise(model, config)
                    except RuntimeError as exc:
                        raise_if_out_of_memory(exc)
                        raise
                except Exception:  # MemoryError included
                    # A file nested to exhaust memory fails in the parser; the scan says why.
                    refuse_nesting(job.result(), config.max_nesting)
                    raise
                # Waited for last: the helper gets the whole parse and extraction to finish,
                # which matters when the machine has no idle core to give it.
                scan = job.result()
                refuse_nesting(scan, config.max_nesting)
            finally:
                job.cancel()
            report = reconcile(
                scan,
                loaded,
                Fields(prep.header.schema),
                config.bypass_types,
                log.messages(),
                config.max_messages,
            )
            source = prep.source
        return ProcessingResult(data=_assemble(summary, report.entity_count, report.parse, source))


def _assemble(
    summary: dict[str, Any], entity_count: int, parse: dict[str, Any], source: dict[str, Any]
) -> dict[str, Any]:
    """The result in reading order: identity, counts, structure, materials, the fine print."""
    from aecflow_processor_ifc.honesty import warnings_of

    notes = summary.pop("notes")
    keys = ("schema", "header", "application", "project_name")
    data = {key: summary.pop(key) for key in keys}
    data["entity_count"] = entity_count
    # Up front: a partial or empty read must not look like a clean one.
    data["warnings"] = warnings_of(parse, entity_count) + summary.pop("warnings")
    data.update(summary)
    data["parse"] = parse
    data["source"] = source
    data["notes"] = notes
    return data
