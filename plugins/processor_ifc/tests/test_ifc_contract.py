"""The processor contract on real models: a shared sample it summarises, a shared edge case
it refuses (as invalid input, in the core's isolated child)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ifc_support import sample

from aecflow.testing import ProcessorContract
from aecflow_processor_ifc import IfcProcessor, IfcProcessorConfig


class TestIfcProcessorContract(ProcessorContract):
    @pytest.fixture
    def processor(self) -> IfcProcessor:
        return IfcProcessor(IfcProcessorConfig())

    @pytest.fixture
    def accepted_file(self) -> Path:
        return sample("IfcOpenHouse_IFC4.ifc")

    @pytest.fixture
    def malformed_file(self) -> Path:
        return sample("edge/unterminated-comment.ifc")
