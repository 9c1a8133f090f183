"""A processor that costs a fixed amount of CPU: the load of scale benches and chaos runs.

``burn`` accepts ``*.burn`` files and spins until it has used ``cpu_s`` seconds of CPU time
(``time.process_time``, so a machine that is busy elsewhere stretches the wall time, never the
work). Its result carries the file's SHA-256, so a run can check that the processed bytes are
the uploaded ones. :class:`aecflow.testing.cluster.Cluster` installs it as an entry point.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pydantic

import aecflow
from aecflow.processing import ProcessingContext, ProcessingResult, Processor
from aecflow.registry import ProcessorRegistry


class BurnConfig(pydantic.BaseModel):
    #: CPU seconds each file costs.
    cpu_s: float = pydantic.Field(0.2, ge=0)


class Burn(Processor):
    suffixes = (".burn",)

    def __init__(self, config: BurnConfig) -> None:
        self.cpu_s = config.cpu_s

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        start = time.process_time()
        spins = 0
        while time.process_time() - start < self.cpu_s:
            spins += sum(range(1000)) & 1 or 1
        return ProcessingResult({"cpu_s": self.cpu_s, "sha256": digest, "spins": spins})


@aecflow.hookimpl
def register_processors(registry: ProcessorRegistry) -> None:
    registry.add("burn", Burn, config=BurnConfig)
