"""Registers the ``ifc`` processor with aecflow (entry point ``aecflow: processor_ifc``).

Only the processor class and its config model are imported here; IfcOpenShell is loaded by
the isolated child process that runs ``process``, never by the host that loads plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aecflow
from aecflow_processor_ifc.config import IfcProcessorConfig
from aecflow_processor_ifc.processor import IfcProcessor

if TYPE_CHECKING:
    from aecflow.registry import ProcessorRegistry


@aecflow.hookimpl
def register_processors(registry: ProcessorRegistry) -> None:
    registry.add("ifc", IfcProcessor, config=IfcProcessorConfig)
