"""``ifc-ids``: the model checked against each configured IDS file with ifctester.

The check is ifctester's own (``ids.validate(model)``), and so are the report artifacts (its
Json, Bcf and Html reporters, written straight to files). The result condenses each
specification to counts and the first few failing elements, so the record stays small
whatever the model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aecflow.processing import Artifact, ProcessingContext
from aecflow_processor_ifc.steps.common import (
    artifact_path,
    element_ref,
    guarded,
    open_model,
    read_warnings,
)
from aecflow_processor_ifc.steps.config import IdsConfig

MEDIA_TYPES = {
    "json": "application/json",
    "bcf": "application/octet-stream",  # a zip; BCF has no registered media type
    "html": "text/html",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class IdsFileError(RuntimeError):
    """A configured IDS file that ifctester cannot read: the operator's problem, not the
    model's, so the run fails (crashed, with this message) rather than refusing the upload."""


def _stem(path: Path, taken: set[str]) -> str:
    """A safe, unique artifact stem for an IDS file: ``ids-<name>``."""
    base = "ids-" + (_UNSAFE.sub("_", path.stem).strip("_")[:80] or "file")
    stem, n = base, 2
    while stem in taken:
        stem, n = f"{base}-{n}", n + 1
    taken.add(stem)
    return stem


def _load(path: Path) -> Any:
    from ifctester import ids

    try:
        return ids.open(str(path))
    except Exception as exc:  # XML errors, schema errors: all mean the file is unusable
        raise IdsFileError(
            f"the IDS file {path} cannot be read: {type(exc).__name__}: {exc}"
        ) from exc


def _status(spec: Any) -> str:
    if not spec.is_ifc_version:
        return "not_applicable"  # the IDS targets other IFC versions; ifctester still runs it
    return "passed" if spec.status else "failed"


def specification_summary(spec: Any, max_failures: int) -> dict[str, Any]:
    """Counts for one specification, and the first failing elements of each requirement."""
    requirements = []
    for facet in spec.requirements:
        failures = facet.failures
        requirements.append(
            {
                "facet": type(facet).__name__,
                "description": facet.to_string("requirement", spec, facet),
                "status": "passed" if facet.status else "failed",
                "failed": len(failures),
                "failures": [
                    element_ref(f["element"]) | {"reason": str(f["reason"])}
                    for f in failures[:max_failures]
                ],
            }
        )
    applicable = len(spec.applicable_entities)
    failed = len(spec.failed_entities)
    return {
        "name": spec.name,
        "status": _status(spec),
        "usage": spec.get_usage(),
        "ifc_versions": list(spec.ifcVersion),
        "applicable": applicable,
        "passed": applicable - failed,
        "failed": failed,
        "requirements": requirements,
    }


def check(
    path: Path, ids_files: tuple[Path, ...], config: IdsConfig, context: ProcessingContext
) -> tuple[dict[str, Any], tuple[Artifact, ...]]:
    """Check the STEP file at ``path`` against ``ids_files``; write the reports."""
    from ifctester import reporter

    documents = [(p, _load(p)) for p in ids_files]  # before the model: fail fast, cheaply
    model, scanned = guarded(path, config, lambda: open_model(path))
    warnings = read_warnings(model, scanned)
    taken: set[str] = set()
    results = []
    artifacts: list[Artifact] = []
    for ids_path, document in documents:
        document.validate(model)
        stem = _stem(ids_path, taken)
        specs = [specification_summary(s, config.max_failures) for s in document.specifications]
        entry: dict[str, Any] = {
            "ids": ids_path.name,
            "title": document.info.get("title"),
            "status": "failed" if any(s["status"] == "failed" for s in specs) else "passed",
            "specifications": specs,
            "reports": {},
        }
        for kind in config.reports if context.output_dir is not None else ():
            name = f"{stem}.{kind}"
            cls = {"json": reporter.Json, "bcf": reporter.Bcf, "html": reporter.Html}[kind]
            report = cls(document)
            report.report()
            report.to_file(str(artifact_path(context, name)))
            artifacts.append(Artifact(name, MEDIA_TYPES[kind]))
            entry["reports"][kind] = name
        results.append(entry)
    specs_all = [s for r in results for s in r["specifications"]]
    data = {
        "checked": True,
        "status": "failed" if any(r["status"] == "failed" for r in results) else "passed",
        "schema": model.schema_identifier,
        "warnings": warnings,
        "specification_count": len(specs_all),
        "specifications_failed": sum(s["status"] == "failed" for s in specs_all),
        "ids": results,
    }
    return data, tuple(artifacts)
