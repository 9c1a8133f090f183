"""The IFC pipeline steps: ``ifc-validate``, ``ifc-ids`` and ``ifc-csv``.

Each is its own processor (registered by :mod:`aecflow_processor_ifc.plugin`), run by the core
in its own isolated child with its own limits. Importing this package stays cheap: IfcOpenShell
and ifctester are imported inside ``process`` only.
"""

from __future__ import annotations

from aecflow_processor_ifc.steps.config import CsvConfig, IdsConfig, ValidateConfig
from aecflow_processor_ifc.steps.processors import CsvStep, IdsStep, ValidateStep

__all__ = ["CsvConfig", "CsvStep", "IdsConfig", "IdsStep", "ValidateConfig", "ValidateStep"]
