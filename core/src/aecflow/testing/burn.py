"""A processor that costs a fixed amount of CPU: the load of scale benches and chaos runs.

``burn`` accepts ``*.burn`` files and spins until it has used ``cpu_s`` seconds of CPU time
(``time.process_time``, so a machine that is busy elsewhere stretches the wall time, never the
work). Its result carries the file's SHA-256, so a run can check that the processed bytes are
the uploaded ones. :class:`aecflow.testing.cluster.Cluster` installs it as an entry point.

The processor is written out as a module of its own (:data:`SOURCE`, installed as
:data:`MODULE`) rather than imported from here: the isolated child imports the processor's
module for every job, and importing it from ``aecflow.testing`` would load the whole kit
(SQLAlchemy, the flow) each time, seconds per job on a busy machine, measuring the harness
instead of the worker.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

#: The module name the processor is installed under.
MODULE = "aecflow_testing_burn"

SOURCE = '''\
"""The ``burn`` processor (written by aecflow.testing.burn): a fixed CPU cost per file."""

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
'''


def install(site: Path) -> Path:
    """Write the module into ``site`` (a directory on the processes' ``PYTHONPATH``)."""
    site.mkdir(parents=True, exist_ok=True)
    path = site / f"{MODULE}.py"
    path.write_text(SOURCE)
    return path


def load(site: Path) -> ModuleType:
    """The installed module, imported in this process (for a flow that must know ``burn``)."""
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    spec = importlib.util.spec_from_file_location(MODULE, install(site))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    spec.loader.exec_module(module)
    return module
