"""A minimal third-party aecflow plugin: a processor and a monitor, found by entry point.

Install it beside aecflow (``pip install ./examples/aecflow-example-plugin``) and it appears in
``aecflow plugins``; text files ingested afterwards get line and word counts.
"""

from __future__ import annotations

from pathlib import Path

import pydantic

import aecflow
from aecflow.observe import Observation
from aecflow.processing import InvalidInput, ProcessingContext, ProcessingResult, Processor
from aecflow.registry import ProcessorRegistry


class TextStatsConfig(pydantic.BaseModel):
    """Settings under ``[processing.processors.textstats]``."""

    model_config = pydantic.ConfigDict(extra="forbid")
    encoding: str = "utf-8"


class TextStats(Processor):
    """Counts lines, words and characters of plain-text files."""

    suffixes = (".txt", ".csv", ".md")
    media_types = ("text/plain", "text/csv", "text/markdown")

    def __init__(self, config: TextStatsConfig) -> None:
        self.config = config

    def sniff(self, head: bytes) -> bool:
        return b"\x00" not in head

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        lines = words = chars = 0
        try:
            with path.open(encoding=self.config.encoding) as handle:
                for line in handle:
                    lines += 1
                    words += len(line.split())
                    chars += len(line)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"not {self.config.encoding} text: {exc.reason}") from None
        return ProcessingResult({"lines": lines, "words": words, "characters": chars})


#: Observations seen by this process, newest last (bounded); a stand-in for a real exporter.
SEEN: list[Observation] = []


@aecflow.hookimpl
def register_processors(registry: ProcessorRegistry) -> None:
    registry.add("textstats", TextStats, config=TextStatsConfig)


@aecflow.hookimpl
def observe(observation: Observation) -> None:
    SEEN.append(observation)
    del SEEN[:-1000]
