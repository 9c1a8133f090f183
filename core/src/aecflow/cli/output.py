"""What the command line shows a person: records with their processing summary.

``--json`` prints the whole record; these lines are the part a person reads. Results are read
defensively (``.get``), since every processor shapes its own: an IFC result gets its schema,
counts, storeys, element classes and materials, any other result just its outcome and timings.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from aecflow.store.records import FileRecord

#: Width of the key column.
KEY = 13
#: Element classes shown, the most frequent first.
TOP_CLASSES = 5


@functools.cache
def _record_keys() -> tuple[str, ...]:
    """The record's plain keys, in the model's order; metadata and processing get lines of
    their own. Read on first use: building the public models (pydantic) costs a quarter of a
    second that ``aecflow --help`` should not pay."""
    from aecflow import schemas

    fields = schemas.FileRecord.model_fields
    return tuple(
        name for name in fields if name not in ("metadata", "processing", "steps", "failure")
    )


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_record(record: FileRecord, as_json: bool) -> None:
    print_record_data(record.as_dict(), as_json)


def print_record_data(data: dict[str, Any], as_json: bool) -> None:
    """A record as JSON or as aligned lines; also for records that came over HTTP."""
    if as_json:
        print_json(data)
        return
    for text in record_lines(data):
        click.echo(text)


def line(key: str, value: Any) -> str:
    return f"{key:{KEY}} {value}"


def record_lines(data: Mapping[str, Any]) -> list[str]:
    """A record (from the flow or over HTTP) as aligned ``key value`` lines."""
    lines = [line(key, data[key]) for key in _record_keys() if data.get(key) is not None]
    lines += [line("metadata", f"{k}={v}") for k, v in (data.get("metadata") or {}).items()]
    lines += processing_lines(data.get("processing") or {})
    failure = data.get("failure")
    if isinstance(failure, Mapping):
        lines.append(line("failed step", f"{failure.get('step')}: {failure.get('error')}"))
    return lines + step_lines(data.get("steps") or {})


def step_lines(steps: Mapping[str, Any]) -> list[str]:
    """One line per pipeline step: name, outcome, duration, error."""
    lines = []
    for name, step in steps.items():
        step = step if isinstance(step, Mapping) else {}
        text = f"{name}: {step.get('outcome') or 'pending'}"
        if step.get("duration_s") is not None:
            text += f" in {step['duration_s']:g} s"
        if step.get("error"):
            text += f" ({step['error']})"
        lines.append(line("step", text))
    return lines


def artifact_lines(artifacts: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per artifact: name, size, media type, producing step."""
    return [
        line(
            "artifact",
            f"{a.get('name')} ({a.get('size')} bytes, {a.get('media_type')}, by {a.get('step')})",
        )
        for a in artifacts
    ]


def processing_lines(processing: Mapping[str, Any]) -> list[str]:
    """Processor, outcome, error, timings, the result's summary and every warning."""
    lines = [
        line("processor", processing.get("processor") or "-"),
        line("outcome", processing.get("outcome") or "pending"),
    ]
    if processing.get("error"):
        lines.append(line("error", processing["error"]))
    if processing.get("duration_s") is not None:
        took = f"{processing['duration_s']:g} s"
        if processing.get("attempts"):
            took += f", attempt {processing['attempts']}"
        lines.append(line("duration", took))
    result = processing.get("result")
    if isinstance(result, Mapping):
        lines += result_lines(result)
    lines += [line("warning", text) for text in warnings(processing)]
    return lines


def warnings(processing: Mapping[str, Any]) -> list[str]:
    """``processing.warnings``, else the result's own ``warnings`` and ``notes``."""
    result = processing.get("result")
    result = result if isinstance(result, Mapping) else {}
    found = processing.get("warnings")
    if not isinstance(found, list):
        found = _list(result.get("warnings"))
    parse = result.get("parse")
    parse = parse if isinstance(parse, Mapping) else {}
    reasons, notes = _list(parse.get("reasons")), _list(result.get("notes"))
    shown: list[str] = []
    for text in [*found, *reasons, *notes]:
        if str(text) not in shown:
            shown.append(str(text))
    return shown


def result_lines(result: Mapping[str, Any]) -> list[str]:
    """The summary of a model's result (IFC keys); nothing for results without those keys."""
    lines: list[str] = []
    for key, label in (("schema", "schema"), ("project_name", "model")):
        if result.get(key):
            lines.append(line(label, result[key]))
    for key, label in (("entity_count", "entities"), ("product_count", "products")):
        if isinstance(result.get(key), int):
            lines.append(line(label, result[key]))
    storeys = result.get("storeys")
    if isinstance(storeys, list) and storeys:
        lines.append(line("storeys", f"{len(storeys)}: {', '.join(map(str, storeys))}"))
    counts = result.get("element_counts")
    if isinstance(counts, Mapping) and counts:
        ranked = sorted(counts.items(), key=lambda item: (-_number(item[1]), item[0]))
        shown = ", ".join(f"{name} {count}" for name, count in ranked[:TOP_CLASSES])
        if len(ranked) > TOP_CLASSES:
            shown += f" (+{len(ranked) - TOP_CLASSES} classes)"
        lines.append(line("elements", shown))
    materials = result.get("materials")
    if isinstance(materials, list):
        lines.append(line("materials", len(materials)))
    parse = result.get("parse")
    if isinstance(parse, Mapping):
        problems = [
            f"{_count(parse[key])} {key}"
            for key in ("errors", "warnings")
            if _count(parse.get(key))
        ]
        if parse.get("partial"):
            problems.insert(0, "partial read")
        if problems:
            lines.append(line("parse", ", ".join(problems)))
    return lines


def _number(value: Any) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _count(value: Any) -> float:
    """A count given as a number or as the list of what was counted."""
    return len(value) if isinstance(value, list) else _number(value)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
