"""``aecflow plugin new``: start a third-party plugin package in one command.

The files come from templates shipped as package data (``aecflow/cli/templates/plugin``),
rendered with :class:`string.Template`: ``$name`` placeholders, ``$$`` for a literal dollar.
Everything is rendered before anything is written, so a template error leaves no half-made
package behind.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import click

from aecflow.cli import cli

KINDS = ("storage", "processor", "notifier")
PREFIX = "aecflow-"
#: A plugin name: lower-case words of letters and digits joined by single ``-`` or ``_``, so
#: it is a valid backend name, distribution name and (with ``-`` as ``_``) module name.
NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
#: Longer names would push the generated code past its 100-character lines.
MAX_NAME = 30

_CONTRACTS = {
    "storage": "StorageContract",
    "processor": "ProcessorContract",
    "notifier": "NotifierContract",
}
_DESCRIPTIONS = {
    "storage": "An aecflow storage backend that keeps objects as files in a directory.",
    "processor": "An aecflow processor that counts the lines and bytes of text files.",
    "notifier": "An aecflow notifier that appends events to a JSON-lines file.",
}
_CONFIGURE = {
    "storage": '```toml\n# aecflow.toml\n[storage]\nbackend = "$name"\nroot = "/srv/objects"\n```',
    "processor": "It runs on every `.txt` file once installed. Options:\n\n"
    '```toml\n# aecflow.toml\n[processing.processors.$name]\nencoding = "utf-8"\n```',
    "notifier": '```toml\n# aecflow.toml\n[[notifiers]]\nbackend = "$name"\n'
    'path = "/var/log/aecflow/events.jsonl"\n```',
}


@dataclass(frozen=True, slots=True)
class PluginNames:
    """The names one plugin goes by, all derived from the name given on the command line."""

    #: The backend and entry-point name (``gcs``).
    name: str
    #: The distribution on PyPI (``aecflow-gcs``).
    distribution: str
    #: The import package (``aecflow_gcs``).
    module: str

    @classmethod
    def parse(cls, given: str) -> PluginNames:
        """Names from ``gcs`` or ``aecflow-gcs``; raises ``ValueError`` saying what is wrong."""
        name = given.removeprefix(PREFIX)
        if not NAME.fullmatch(name) or name == "aecflow":
            raise ValueError(
                f"{given!r} is not a plugin name: use lower-case letters and digits, words "
                "joined by '-' or '_', starting with a letter (e.g. 'gcs' or 'aecflow-gcs')"
            )
        if len(name) > MAX_NAME:
            raise ValueError(
                f"{given!r} is too long: a plugin name has at most {MAX_NAME} characters"
            )
        return cls(
            name=name, distribution=PREFIX + name, module="aecflow_" + name.replace("-", "_")
        )


def _template(*parts: str) -> str:
    return (
        resources.files("aecflow.cli")
        .joinpath("templates", "plugin", *parts)
        .read_text(encoding="utf-8")
    )


def _aecflow_requirement() -> str:
    """``>=`` the running aecflow's release, so the plugin asks for what it was made with."""
    try:
        return ">=" + importlib.metadata.version("aecflow")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from source
        return ""


def render(names: PluginNames, kind: str) -> dict[str, str]:
    """Every file of the package, by path relative to its root."""
    values = {
        "name": names.name,
        "distribution": names.distribution,
        "module": names.module,
        "kind": kind,
        "contract": _CONTRACTS[kind],
        "description": _DESCRIPTIONS[kind],
        "aecflow_requirement": _aecflow_requirement(),
    }
    values["configure"] = Template(_CONFIGURE[kind]).substitute(values)
    sources = {
        "pyproject.toml": ("common", "pyproject.toml.tmpl"),
        "README.md": ("common", "README.md.tmpl"),
        ".gitignore": ("common", "gitignore.tmpl"),
        ".github/workflows/test.yml": ("common", "test.yml.tmpl"),
        f"src/{names.module}/__init__.py": (kind, "module.py.tmpl"),
        f"tests/test_{names.module}.py": (kind, "test.py.tmpl"),
    }
    files = {
        path: Template(_template(*source)).substitute(values) for path, source in sources.items()
    }
    files[f"src/{names.module}/py.typed"] = ""
    return files


@cli.group("plugin")
def plugin_group() -> None:
    """Start a plugin of your own (`aecflow plugins` lists the installed ones)."""


@plugin_group.command("new")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    required=True,
    help="What the plugin adds: a storage backend, a processor or a notifier.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the package (default: ./aecflow-NAME); must be empty or missing.",
)
def plugin_new(name: str, kind: str, directory: Path | None) -> None:
    """Write a complete plugin package: pyproject.toml with the `aecflow` entry point, a
    working skeleton in src/, tests that run aecflow's contract suite, a README and a CI
    workflow.

    NAME is the backend's name (`gcs`); the distribution is `aecflow-NAME`, the module
    `aecflow_NAME`. `aecflow-gcs` is read as `gcs`.
    """
    try:
        names = PluginNames.parse(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    target = directory if directory is not None else Path(names.distribution)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        what = "a directory that is not empty" if target.is_dir() else "not a directory"
        raise click.BadParameter(
            f"{str(target)!r} is {what}: give a new or empty one", param_hint="'--dir'"
        )
    files = render(names, kind)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {names.distribution} ({kind} {names.name!r}) to {target}/")
    click.echo(f"  cd {target} && pip install -e '.[test]' && pytest")
