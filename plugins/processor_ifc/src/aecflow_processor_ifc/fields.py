"""Attribute access by position, with the positions looked up once per schema.

``inst.Name`` goes through a Python ``__getattr__`` that asks the schema for the attribute's
category and index on every call; ``inst.get_argument(i)`` is about four times faster, which
matters when the summary reads every relationship of a 1 GB model. Positions differ between
schemas for some entities, so they are resolved by name, per schema, and cached.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

#: Longest string the summary quotes; model names are short, a hostile one need not be.
MAX_TEXT = 256


class Fields:
    """Positions of attributes in one schema; ``get`` reads an attribute by name."""

    def __init__(self, schema: str) -> None:
        from ifcopenshell import ifcopenshell_wrapper as w

        self.schema_name = schema
        self._schema = w.schema_by_name(schema)
        self._index: dict[tuple[str, str], int | None] = {}
        self._subtype: dict[tuple[str, str], bool] = {}

    def index(self, entity: str, attribute: str) -> int | None:
        """Position of ``attribute`` in ``entity``, or None if the entity lacks it."""
        key = (entity, attribute)
        try:
            return self._index[key]
        except KeyError:
            pass
        try:
            decl = self._schema.declaration_by_name(entity).as_entity()
            names = [a.name() for a in decl.all_attributes()] if decl is not None else []
        except RuntimeError:  # not in this schema
            names = []
        position = names.index(attribute) if attribute in names else None
        self._index[key] = position
        return position

    def get(self, inst: Any, attribute: str, default: Any = None) -> Any:
        """``inst.<attribute>``, or ``default`` when unset, absent in the schema, or skipped."""
        if inst is None:
            return default
        position = self.index(inst.is_a(), attribute)
        if position is None:
            return default
        value = inst.get_argument(position)
        return default if value is None else value

    def text(self, inst: Any, attribute: str) -> str | None:
        """A string attribute, trimmed to :data:`MAX_TEXT` characters; None if unset."""
        return clip(self.get(inst, attribute))

    def is_subtype(self, entity: str, supertype: str) -> bool:
        """Whether ``entity`` (any case) is ``supertype`` or derives from it in this schema."""
        key = (entity.upper(), supertype.upper())
        if key not in self._subtype:
            self._subtype[key] = self._walk(*key)
        return self._subtype[key]

    def _walk(self, entity: str, supertype: str) -> bool:
        try:
            decl = self._schema.declaration_by_name(entity).as_entity()
        except RuntimeError:
            return False
        while decl is not None:
            if decl.name().upper() == supertype:
                return True
            decl = decl.supertype()
        return False


def clip(value: Any) -> str | None:
    """``value`` as a string of at most :data:`MAX_TEXT` characters; None stays None."""
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def wrapped(value: Any) -> Any:
    """The plain value inside a typed select value such as ``IFCREAL(0.3048)``."""
    if hasattr(value, "is_entity") and not value.is_entity():
        return value.get_argument(0)
    return value


def is_number(value: Any) -> bool:
    """A finite int or float (NaN and infinity are not JSON, and not measurements)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def drain(instances: tuple[Any, ...]) -> Iterator[Any]:
    """Yield each instance, dropping our reference to it as we go.

    ``by_type`` returns every wrapper at once (about 160 bytes each; 64 MB for the
    relationships of a 500 MB model). Released one by one, they are gone by the time the
    parsed attributes have grown, which lowers the peak.
    """
    items = list(instances)
    del instances
    for i in range(len(items)):
        item = items[i]
        items[i] = None
        yield item
