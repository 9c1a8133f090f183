"""Registers the IFC processors with aecflow (entry point ``aecflow: processor_ifc``).

``ifc`` summarises a model; the steps ``ifc-validate``, ``ifc-ids`` and ``ifc-csv``
(:mod:`aecflow_processor_ifc.steps`) validate it, check it against IDS files and export it.

Only the processor class and its config model are imported here; IfcOpenShell is loaded by
the isolated child process that runs ``process``, never by the host that loads plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aecflow
from aecflow_processor_ifc.config import IfcProcessorConfig
from aecflow_processor_ifc.processor import IfcProcessor
from aecflow_processor_ifc.steps import (
    CsvConfig,
    CsvStep,
    IdsConfig,
    IdsStep,
    ValidateConfig,
    ValidateStep,
)

if TYPE_CHECKING:
    from aecflow.registry import ProcessorRegistry


@aecflow.hookimpl
def register_processors(registry: ProcessorRegistry) -> None:
    registry.add("ifc", IfcProcessor, config=IfcProcessorConfig)
    registry.add("ifc-validate", ValidateStep, config=ValidateConfig)
    registry.add("ifc-ids", IdsStep, config=IdsConfig)
    registry.add("ifc-csv", CsvStep, config=CsvConfig)
