"""``ifc-validate``: ``ifcopenshell.validate`` with a logger that streams instead of collecting.

IfcOpenShell's ``json_logger`` keeps every issue, with the instance it names, in a list: a model
with millions of issues would fill memory. :class:`StreamingLogger` is a ``json_logger`` (the
validator checks ``isinstance``), so it receives the same statements, but writes each one to the
artifact as it comes, keeps counts and the first few, and forgets the rest.

The steps are those of ``validate(path, logger)``, run on a model opened here so that the
nesting guard can sit beside the parse: clear IfcOpenShell's log, open, report the parser's
errors, validate, report the errors that lazy attribute parsing added.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import IO, Any

import ifcopenshell
import ifcopenshell.express.rule_executor
import ifcopenshell.validate as v
from ifcopenshell import ifcopenshell_wrapper as w

from aecflow_processor_ifc.steps.common import guarded, open_model, read_warnings
from aecflow_processor_ifc.steps.config import ValidateConfig

ARTIFACT = "validation.json"

#: A statement's kind, from the first words of its message (validate.py's own phrasing).
_KINDS = (
    ("Attribute not optional", "attribute_not_optional"),
    ("Invalid attribute value", "invalid_attribute_value"),
    ("Attribute is derived in subtype", "derived_in_subtype"),
    ("With inverse:", "inverse_cardinality"),
    ("With attribute:", "attribute_type"),
    ("On instance:", "unique_rule"),
    ("Expected ", "attribute_count"),
)


def kind_of(state_type: str | None, message: str, instance: Any) -> str:
    """A short snake_case kind for grouping; the message keeps the details."""
    if state_type and state_type != "schema":
        return state_type  # global_rule, simpletype_rule, entity_rule (express rules)
    for prefix, kind in _KINDS:
        if message.startswith(prefix):
            if kind == "unique_rule" and "GlobalId" in message:
                return "global_id"
            return kind
    if message.startswith("Entity ") and message.endswith(" is abstract"):
        return "abstract_entity"
    if "has invalid type" in message and instance is None:
        return "header"
    if isinstance(instance, str) or instance is None:
        return "parse"
    return "other"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 12] + " [... cut]"


class StreamingLogger(v.json_logger):  # type: ignore[misc]
    """Counts every statement, writes up to ``max_issues`` to ``sink``, keeps the first few.

    A ``json_logger`` because the validator formats its statements for that type only; its
    ``statements`` list stays empty.
    """

    def __init__(self, sink: IO[str], config: ValidateConfig) -> None:
        super().__init__()
        self.sink = sink
        self.config = config
        self.total = 0
        self.written = 0
        self.by_level: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.by_entity: Counter[str] = Counter()
        self.first: list[dict[str, Any]] = []

    def log(self, level: str, message: str, *args: Any) -> None:
        text = message % args if args else message
        if level not in ("error", "warning"):  # express rules also say "info"
            self.by_level[level] += 1
            return
        instance = self.state.get("instance")
        entity = instance.is_a() if isinstance(instance, ifcopenshell.entity_instance) else None
        kind = kind_of(self.state.get("type"), text, instance)
        self.total += 1
        self.by_level[level] += 1
        self.by_kind[kind] += 1
        self.by_entity[entity or "(none)"] += 1
        quote = len(self.first) < self.config.max_result_issues
        keep = self.written < self.config.max_issues
        if not (quote or keep):
            return
        limit = self.config.max_message_chars
        issue = {
            "level": level,
            "kind": kind,
            "entity": entity,
            "id": instance.id() if entity else None,
            "attribute": self.state.get("attribute"),
            "message": _cut(text, limit),
            "instance": None if instance is None else _cut(str(instance), limit),
        }
        if quote:
            self.first.append(issue)
        if keep:
            self.sink.write(("," if self.written else "") + "\n" + json.dumps(issue))
            self.written += 1

    def summary(self) -> dict[str, Any]:
        return {
            "valid": self.total == 0,
            "issue_count": self.total,
            "by_level": dict(self.by_level),
            "by_kind": dict(self.by_kind.most_common()),
            "by_entity": dict(self.by_entity.most_common(self.config.max_result_issues)),
            "issues": self.first,
            "issues_in_artifact": self.written,
            "truncated": self.written < self.total,
        }


def validate_file(path: Path, artifact: Path, config: ValidateConfig) -> dict[str, Any]:
    """Validate the STEP file at ``path``, streaming issues into ``artifact`` (one JSON object:
    ``{"issues": [...], "issue_count": N, "truncated": bool}``)."""
    with artifact.open("w", encoding="utf-8") as sink:
        sink.write('{"issues": [')
        logger = StreamingLogger(sink, config)
        derived = w.get_feature("use_attribute_value_derived")
        ifcopenshell.get_log()  # clears what earlier runs left
        w.set_log_format_json()

        def work() -> Any:
            logger.set_state("type", "schema")
            model = open_model(path)
            v.log_internal_cpp_errors(model, str(path), logger)
            return model

        model, scanned = guarded(path, config, work)
        warnings = read_warnings(model, scanned)
        try:
            # validate(model) sets and restores the feature itself; set it for the errors
            # reported below too, as validate(path) does.
            v.validate(model, logger, express_rules=False)
            w.set_feature("use_attribute_value_derived", True)
            v.log_internal_cpp_errors(model, str(path), logger)
        finally:
            w.set_feature("use_attribute_value_derived", derived)
        if config.express_rules:
            logger.set_state("instance", None)
            logger.set_state("attribute", None)
            ifcopenshell.express.rule_executor.run(model, logger)
        result = logger.summary()
        tail = {k: result[k] for k in ("valid", "issue_count", "by_kind", "truncated")}
        sink.write("\n]," + json.dumps(tail)[1:] + "\n")
    result["schema"] = model.schema_identifier
    result["warnings"] = warnings
    result["express_rules"] = config.express_rules
    return result
