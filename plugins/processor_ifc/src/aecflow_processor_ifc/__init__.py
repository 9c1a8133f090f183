"""aecflow processor for IFC models: schema, elements, materials, quantities, spatial tree.

See the package README for the summary it produces. :mod:`aecflow_processor_ifc.plugin`
registers it; :mod:`aecflow_processor_ifc.testing.synthetic` writes test models of any size.
"""

from __future__ import annotations

from aecflow_processor_ifc.config import IfcProcessorConfig
from aecflow_processor_ifc.processor import IfcProcessor

__all__ = ["IfcProcessor", "IfcProcessorConfig"]
