"""The processor contract, as a third-party plugin runs it: subclass, three fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from aecflow.testing import ProcessorContract
from aecflow_example_plugin import TextStats, TextStatsConfig


class TestTextStatsContract(ProcessorContract):
    @pytest.fixture
    def processor(self) -> TextStats:
        return TextStats(TextStatsConfig())

    @pytest.fixture
    def accepted_file(self, tmp_path: Path) -> Path:
        path = tmp_path / "notes.txt"
        path.write_text("two lines\nof text\n", encoding="utf-8")
        return path

    @pytest.fixture
    def malformed_file(self, tmp_path: Path) -> Path:
        path = tmp_path / "latin1.txt"
        path.write_bytes("caf\xe9 au lait\n".encode("latin-1"))  # not UTF-8, and no NUL
        return path
