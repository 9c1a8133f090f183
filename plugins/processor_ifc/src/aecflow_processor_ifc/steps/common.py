"""What the steps share in the child: the prepared STEP file, a guarded open, artifact paths.

The guard is the ``ifc`` processor's: the upload goes through
:func:`~aecflow_processor_ifc.inputs.prepared` (empty, not IFC, unsupported schema, zip bombs
refused by name), the parentheses scan runs beside the parse (a nested file makes the parser
allocate without bound), and IfcOpenShell's failures become ``InvalidInput`` or ``MemoryError``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from aecflow.processing import InvalidInput, ProcessingContext
from aecflow_processor_ifc.honesty import refuse_nesting
from aecflow_processor_ifc.inputs import Prepared, prepared
from aecflow_processor_ifc.opening import raise_if_out_of_memory
from aecflow_processor_ifc.scan import ScanJob, ScanResult
from aecflow_processor_ifc.steps.config import StepConfig

T = TypeVar("T")


@contextmanager
def step_input(path: Path, config: StepConfig) -> Iterator[Prepared]:
    """The STEP file inside the upload; scratch copies are removed on exit."""
    with prepared(path, config.inputs_config()) as prep:
        yield prep


def guarded(path: Path, config: StepConfig, work: Callable[[], T]) -> tuple[T, ScanResult]:
    """Run ``work`` (which parses ``path``) with the nesting scan beside it.

    A failure of ``work`` is blamed on nesting when the scan found it; an IfcOpenShell failure
    near the memory cap becomes MemoryError; any other IfcOpenShell error is invalid input.
    """
    import ifcopenshell

    job = ScanJob(path, config.max_nesting, parallel=True)
    try:
        try:
            value = work()
        except InvalidInput:
            raise
        except Exception as exc:  # MemoryError included
            refuse_nesting(job.result(), config.max_nesting)
            if isinstance(exc, (ifcopenshell.Error, RuntimeError, OSError)):
                raise_if_out_of_memory(exc)
                if isinstance(exc, (ifcopenshell.Error, OSError)):
                    raise InvalidInput(f"IfcOpenShell could not read the file: {exc}") from exc
            raise
        scanned = job.result()
        refuse_nesting(scanned, config.max_nesting)
        return value, scanned
    finally:
        job.cancel()


def open_model(path: Path) -> Any:
    """``ifcopenshell.open`` as a plain script does it (everything loaded, not lazy)."""
    import ifcopenshell

    try:
        return ifcopenshell.open(str(path))
    except ifcopenshell.SchemaError as exc:
        raise InvalidInput(f"IfcOpenShell cannot read this schema: {exc}") from exc


def read_warnings(model: Any, scanned: ScanResult) -> list[str]:
    """Compare what IfcOpenShell loaded with what the text holds; refuse a file it could read
    nothing of, and say so up front when it read only part (the step covers that part)."""
    loaded = len(model.entity_names())
    if scanned.instances and not loaded:
        raise InvalidInput(
            f"IfcOpenShell could read none of the {scanned.instances:,} entity instances in "
            "the file (unknown entity names or broken syntax)"
        )
    if loaded < scanned.instances:
        return [
            f"the file holds {scanned.instances:,} entity instances, but IfcOpenShell read only "
            f"{loaded:,} of them (truncated, broken or duplicate instances): this step covers "
            "what it read"
        ]
    if not scanned.complete_ending:
        return ["the file does not end with ENDSEC; END-ISO-10303-21; (probably truncated)"]
    return []


def artifact_path(context: ProcessingContext, name: str) -> Path:
    """Where to write artifact ``name``; ``os.devnull`` where the caller keeps no artifacts."""
    if context.output_dir is None:
        return Path(os.devnull)
    return Path(context.output_dir) / name


def element_ref(element: Any) -> dict[str, Any]:
    """How an element is named in a result: its id, GlobalId, class and name."""
    return {
        "id": element.id(),
        "global_id": getattr(element, "GlobalId", None),
        "class": element.is_a(),
        "name": getattr(element, "Name", None),
    }
