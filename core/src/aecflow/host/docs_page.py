"""``/docs``: the OpenAPI document as one readable page, rendered on the server.

No script and nothing fetched from elsewhere, so it reads the same offline; built from the
same dictionary as ``/openapi.json`` so the two cannot disagree.
"""

from __future__ import annotations

import html
import json
from typing import Any

Schema = dict[str, Any]

METHODS = ("get", "post", "put", "patch", "delete")
STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ccc;margin-top:2.5rem}
h3{margin:2rem 0 .3rem;font-family:ui-monospace,monospace;font-size:1.05rem}
.m{display:inline-block;min-width:4.2rem;padding:0 .4rem;border-radius:3px;color:#fff;
text-align:center}.get{background:#2a7}.post{background:#27c}.put{background:#b70}
.delete{background:#c33}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}code{font-family:ui-monospace,monospace;font-size:.9em;background:#f4f4f4;
padding:0 .2rem}nav li{list-style:none}small{color:#666}
"""


def _md(text: str) -> str:
    """The little Markdown the descriptions use: paragraphs and `code`."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        parts = html.escape(paragraph).split("`")
        inline = "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))
        paragraphs.append(f"<p>{inline}</p>")
    return "".join(paragraphs)


def _type(schema: Schema) -> str:
    """A short, readable rendering of a schema (HTML): type, format, limits, enum."""
    if not isinstance(schema, dict):  # ``true``: anything
        return "any"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f'<a href="#schema-{name}">{name}</a>'
    if "allOf" in schema:
        return _type(schema["allOf"][0])
    if "anyOf" in schema:
        base = {key: value for key, value in schema.items() if key != "anyOf"}
        return " or ".join(_type(base | branch) for branch in schema["anyOf"])
    if schema.get("maxLength") == 0:
        return "empty"
    kind = schema.get("type", "any")
    text = html.escape(" | ".join(kind) if isinstance(kind, list) else kind)
    if kind == "array":
        text = f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema and "properties" not in schema:
        text = f"object of {_type(schema['additionalProperties'])}"
    notes = []
    if "format" in schema:
        notes.append(schema["format"])
    if "enum" in schema:
        notes.append(" | ".join(json.dumps(value) for value in schema["enum"]))
    if "const" in schema:
        notes.append(json.dumps(schema["const"]))
    for key, label in (("minimum", "≥"), ("maximum", "≤"), ("maxLength", "length ≤")):
        if key in schema:
            notes.append(f"{label} {schema[key]}")
    if len(schema.get("pattern", "")) <= 40 and "pattern" in schema:  # long ones: see the text
        notes.append(f"matches {schema['pattern']}")
    if "default" in schema:
        notes.append(f"default {json.dumps(schema['default'])}")
    return text + (f" <small>({html.escape('; '.join(notes))})</small>" if notes else "")


def _operation_html(doc: dict[str, Any], path: str, method: str, op: Schema) -> str:
    anchor = op["operationId"]
    out = [
        f'<h3 id="{anchor}"><span class="m {method}">{method.upper()}</span> '
        f"{html.escape(path)}</h3>",
        f"<b>{html.escape(op['summary'])}</b>",
        _md(op.get("description", "")),
    ]
    if op.get("security") == []:
        out.append("<p><small>No token needed.</small></p>")
    if op.get("parameters"):
        out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>what</th></tr>")
        for p in op["parameters"]:
            name = html.escape(p["name"])
            if p.get("explode") and p["schema"].get("type") == "object":
                name = "meta.&lt;key&gt;"
            required = " <small>(required)</small>" if p.get("required") else ""
            out.append(
                f"<tr><td><code>{name}</code>{required}</td><td>{p['in']}</td>"
                f"<td>{_type(p['schema'])}</td><td>{_md(p['description'])}</td></tr>"
            )
        out.append("</table>")
    if "requestBody" in op:
        body = op["requestBody"]
        kinds = ", ".join(f"<code>{html.escape(k)}</code>" for k in body["content"])
        out.append(f"<p><b>Body</b> ({kinds}): {html.escape(body.get('description', ''))}</p>")
    out.append("<table><tr><th>status</th><th>body</th><th>headers</th><th>what</th></tr>")
    for status, response in op["responses"].items():
        content = response.get("content", {})
        body = "; ".join(
            f"{_type(media.get('schema', {}))} <small>{html.escape(kind)}</small>"
            for kind, media in content.items()
        )
        headers = ", ".join(f"<code>{html.escape(h)}</code>" for h in response.get("headers", {}))
        codes = response.get("x-error-codes")
        what = _md(response["description"])
        if codes:
            what += "codes: " + ", ".join(f"<code>{html.escape(c)}</code>" for c in codes)
        out.append(
            f"<tr><td>{status}</td><td>{body or '—'}</td><td>{headers}</td><td>{what}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _schema_html(name: str, schema: Schema) -> str:
    out = [f'<h3 id="schema-{name}">{name}</h3>']
    if "description" in schema:
        out.append(_md(schema["description"]))
    properties = schema.get("properties", {})
    if not properties:
        out.append(f"<p>{_type(schema)}</p>")
        return "\n".join(out)
    required = set(schema.get("required", ()))
    out.append("<table><tr><th>field</th><th>type</th><th>what</th></tr>")
    for field, sub in properties.items():
        mark = "" if field in required else " <small>(optional)</small>"
        out.append(
            f"<tr><td><code>{html.escape(field)}</code>{mark}</td><td>{_type(sub)}</td>"
            f"<td>{_md(sub.get('description', ''))}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def render(doc: dict[str, Any]) -> str:
    """The whole page for the document ``doc``."""
    info = doc["info"]
    by_tag: dict[str, list[tuple[str, str, Schema]]] = {tag["name"]: [] for tag in doc["tags"]}
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                by_tag[item[method]["tags"][0]].append((path, method, item[method]))
    nav, sections = [], []
    for tag in doc["tags"]:
        ops = by_tag[tag["name"]]
        links = "".join(
            f'<li><a href="#{op["operationId"]}"><span class="m {method}">{method.upper()}'
            f"</span> {html.escape(path)}</a></li>"
            for path, method, op in ops
        )
        nav.append(f"<li><b>{html.escape(tag['name'])}</b><ul>{links}</ul></li>")
        sections.append(f'<h2 id="tag-{tag["name"]}">{html.escape(tag["name"])}</h2>')
        sections.append(_md(tag["description"]))
        sections.extend(_operation_html(doc, path, method, op) for path, method, op in ops)
    schemas = "\n".join(
        _schema_html(name, schema) for name, schema in doc["components"]["schemas"].items()
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(info['title'])} API</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(info['title'])} API</h1><p><small>version "
        f"{html.escape(info['version'])} · OpenAPI {doc['openapi']} at "
        f'<a href="/openapi.json">/openapi.json</a></small></p>'
        f"{_md(info['description'])}<nav><ul>{''.join(nav)}</ul></nav>"
        f'{"".join(sections)}<h2 id="schemas">schemas</h2>{schemas}</body></html>\n'
    )
