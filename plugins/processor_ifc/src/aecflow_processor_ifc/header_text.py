"""What the raw text says when IfcOpenShell cannot open a file (an unsupported schema).

A refused file should still tell a person what it is: its header (name, time stamp, authors,
the exporting system) and, when it is in the first MiB, the authoring application and the
project's name. Read from the bytes already checked by :mod:`header`, with a small parser for
STEP parameter lists; strings decoded as IfcOpenShell decodes them.
"""

from __future__ import annotations

import re
from typing import Any

from aecflow_processor_ifc.fields import clip

_INSTANCE = re.compile(rb"#(\d+)\s*=\s*([A-Z0-9_]+)\s*\(", re.I)
_TOKEN = re.compile(r"\s*('(?:[^']|'')*'|\(|\)|,|#\d+|\$|\*|[^,()\s]+)")


def readable(header: bytes, head: bytes, schema: str) -> dict[str, Any]:
    """``schema``, ``header``, ``application`` and ``project_name`` as far as they can be read."""
    out: dict[str, Any] = {"schema": schema, "header": _header(header)}
    instances = _instances(head)
    app = next((v for k, v in instances.values() if k == "IFCAPPLICATION"), None)
    out["application"] = None
    if app is not None and len(app) >= 4:
        developer = instances.get(app[0]) if isinstance(app[0], int) else None
        out["application"] = {
            "name": _text(app[2]),
            "version": _text(app[1]),
            "identifier": _text(app[3]),
            "developer": _text(developer[1][1]) if developer and len(developer[1]) > 1 else None,
        }
    project = next((v for k, v in instances.values() if k == "IFCPROJECT"), None)
    out["project_name"] = _text(project[2]) if project and len(project) > 2 else None
    out["warnings"] = []
    return out


def _header(header: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    text = header.decode("utf-8", errors="replace")
    description = _params(text, "FILE_DESCRIPTION")
    if description and len(description) >= 2:
        out["description"] = [_text(s) for s in _list(description[0])]
        out["implementation_level"] = _text(description[1])
    name = _params(text, "FILE_NAME")
    if name and len(name) >= 7:
        out.update(
            name=_text(name[0]),
            time_stamp=_text(name[1]),
            author=[_text(s) for s in _list(name[2])],
            organization=[_text(s) for s in _list(name[3])],
            preprocessor_version=_text(name[4]),
            originating_system=_text(name[5]),
            authorization=_text(name[6]),
        )
    return out


def _instances(head: bytes) -> dict[int, tuple[str, list[Any]]]:
    """The IFCAPPLICATION, IFCORGANIZATION and IFCPROJECT instances in ``head``."""
    found: dict[int, tuple[str, list[Any]]] = {}
    for match in _INSTANCE.finditer(head):
        keyword = match.group(2).decode("ascii").upper()
        if keyword not in ("IFCAPPLICATION", "IFCORGANIZATION", "IFCPROJECT"):
            continue
        text = head[match.end() - 1 : match.end() + 4096].decode("utf-8", errors="replace")
        params = _parse(text)
        if params is not None:
            found[int(match.group(1))] = (keyword, params)
    return found


def _params(text: str, keyword: str) -> list[Any] | None:
    at = re.search(rf"\b{keyword}\s*\(", text)
    return _parse(text[at.end() - 1 :]) if at else None


def _parse(text: str) -> list[Any] | None:
    """The parameter list starting at ``text[0] == '('``: strings, refs (int), lists, None."""
    stack: list[list[Any]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            return None
        pos, token = match.end(), match.group(1)
        if token == "(":
            stack.append([])
        elif token == ")":
            done = stack.pop()
            if not stack:
                return done
            stack[-1].append(done)
        elif token == ",":
            continue
        elif not stack:
            return None
        elif token.startswith("'"):
            stack[-1].append(("str", token[1:-1]))
        elif token.startswith("#"):
            stack[-1].append(int(token[1:]))
        else:
            stack[-1].append(None if token in ("$", "*") else token)
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    """A STEP string decoded (``''``, ``\\X2\\...\\X0\\``); anything else is None."""
    if not (isinstance(value, tuple) and value[0] == "str"):
        return None
    from ifcopenshell import ifcopenshell_wrapper

    try:
        return clip(ifcopenshell_wrapper.decode_spf_string(value[1]))
    except RuntimeError:  # a malformed escape: the raw text is still better than nothing
        return clip(value[1])
