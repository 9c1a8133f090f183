"""The parse report: what IfcOpenShell read against what the file holds.

IfcOpenShell skips geometry and single properties on purpose (``bypass_types``), so the
comparable numbers are the other instances: those it loaded and those the text scan found. When
they differ, or the file lacks its ``ENDSEC; END-ISO-10303-21;`` ending, the summary is
marked partial and says why in words, with both numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aecflow.processing import InvalidInput
from aecflow_processor_ifc.fields import Fields
from aecflow_processor_ifc.opening import LogMessage
from aecflow_processor_ifc.scan import ScanResult


@dataclass(frozen=True)
class Reconciled:
    entity_count: int
    parse: dict[str, Any]


def refuse_nesting(scan: ScanResult, max_nesting: int) -> None:
    """Refuse a file with absurdly nested parentheses (it makes the parser allocate forever)."""
    if scan.nesting_offset is not None:
        raise InvalidInput(
            f"not a usable IFC file: {max_nesting} or more parentheses are nested at byte "
            f"{scan.nesting_offset:,}; real IFC data nests a few levels, so the file is "
            "broken (or built to exhaust memory)"
        )


def reconcile(
    scan: ScanResult,
    loaded: int,
    fields: Fields,
    bypass_types: tuple[str, ...],
    messages: list[LogMessage],
    max_messages: int,
) -> Reconciled:
    """Compare, classify and describe; raises InvalidInput if nothing at all could be read."""
    skipped = sum(
        count
        for keyword, count in scan.keywords.items()
        if any(fields.is_subtype(keyword, root) for root in bypass_types)
    )
    expected = scan.instances - skipped
    if loaded == 0 and expected > 0:
        raise InvalidInput(
            f"IfcOpenShell could read none of the {expected:,} entity instances in the file"
            + _first_problem(messages)
        )
    reasons = []
    if loaded != expected:
        fewer = "only " if loaded < expected else ""
        reasons.append(
            f"the file holds {expected:,} entity instances besides geometry and properties, but "
            f"IfcOpenShell "
            f"read {fewer}{loaded:,} of them{_first_problem(messages)}; the summary covers what "
            "it read, and entity_count counts those instances only"
        )
    if not scan.complete_ending:
        reasons.append(
            "the file does not end with 'ENDSEC; END-ISO-10303-21;': it is probably truncated"
        )
    counts = {"WARNING": 0, "ERROR": 0}
    for message in messages:
        if message.severity in counts:
            counts[message.severity] += 1
    parse = {
        "warnings": counts["WARNING"],
        "errors": counts["ERROR"],
        "partial": bool(reasons),
        "scanned_entities": scan.instances,
        "loaded_entities": loaded,
        "skipped_entities": skipped,
        "reasons": reasons,
        "messages": [
            {"severity": m.severity, "message": m.message[:500]} for m in messages[:max_messages]
        ],
    }
    # Complete: every instance was read, the skipped ones included (IfcOpenShell parsed past
    # them). Otherwise how many skipped ones it got past is unknown.
    entity_count = loaded + skipped if loaded == expected else loaded
    return Reconciled(entity_count=entity_count, parse=parse)


def warnings_of(parse: dict[str, Any], entity_count: int) -> list[str]:
    """What a reader must know before trusting the summary: a partial read, an empty file,
    errors IfcOpenShell logged. Empty for a clean read, so ``[]`` means the summary is whole."""
    warnings = list(parse["reasons"])
    if entity_count == 0:
        warnings.append(
            "the file holds no entity instances (its DATA section is empty): the summary is empty"
        )
    if parse["errors"]:
        first = next((m["message"] for m in parse["messages"] if m["severity"] == "ERROR"), "")
        quoted = f" (first: {first[:200]})" if first else ""
        warnings.append(
            f"IfcOpenShell reported {parse['errors']} error(s) while reading{quoted}; "
            "see parse.messages"
        )
    return warnings


def _first_problem(messages: list[LogMessage]) -> str:
    """IfcOpenShell's first error, else its first warning, as a parenthesis for a message."""
    for severity in ("ERROR", "WARNING"):
        for message in messages:
            if message.severity == severity:
                return f" (IfcOpenShell: {message.message[:200]})"
    return ""
