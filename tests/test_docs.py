"""The plugin author's docs stay true: every hook in ``hookspecs.py`` is documented in
docs/hooks.md with its parameters (and nothing else is), every public member of the three
backend ABCs is listed in docs/contracts.md, the "Write a plugin" page's code runs, and the
README links the pages (datasette's ``test_docs.py`` does the same for its hooks)."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import aecflow.hookspecs
from aecflow.notify import Notifier
from aecflow.processing import Processor
from aecflow.storage import Storage

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PLUGIN_PAGES = ["writing-plugins.md", "testing-plugins.md", "hooks.md", "contracts.md"]


def hookspecs(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """The hook specifications of ``module``: the functions pluggy's marker tagged."""
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isfunction(value) and hasattr(value, f"{module.PROJECT_NAME}_spec")
    }


def documented_hooks(text: str) -> dict[str, list[str]]:
    """``### name(a, b)`` headings of the hook reference: hook name -> parameter names."""
    return {
        name: [p.strip() for p in params.split(",") if p.strip()]
        for name, params in re.findall(r"^### (\w+)\(([^)]*)\)\s*$", text, flags=re.M)
    }


def test_every_hookspec_has_a_docstring_and_a_section_with_its_parameters() -> None:
    specs = hookspecs(aecflow.hookspecs)
    assert {"register_storage", "startup", "observe"} <= specs.keys()  # the finder works
    undocumented = [name for name, spec in specs.items() if not inspect.getdoc(spec)]
    assert undocumented == [], "hooks without a docstring in hookspecs.py"
    expected = {name: list(inspect.signature(spec).parameters) for name, spec in specs.items()}
    assert documented_hooks((DOCS / "hooks.md").read_text(encoding="utf-8")) == expected


def test_a_new_hook_without_docs_would_fail() -> None:
    """The check above compares both ways: a spec missing from the page and a section for a
    hook that does not exist both show up as a difference."""
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    documented = documented_hooks(text)
    assert documented_hooks(text.replace("### observe(observation)", "### observe()")) != (
        documented
    )
    assert "observe" not in documented_hooks(text.replace("### observe(", "## observe("))


CONTRACTS = {"Storage": Storage, "Processor": Processor, "Notifier": Notifier}


def section(text: str, title: str) -> str:
    """The body of ``## title`` up to the next ``## `` heading."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert found, f"docs/contracts.md has no '## {title}' section"
    return found.group(1)


def public_members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


@pytest.mark.parametrize("title", list(CONTRACTS))
def test_every_public_member_of_each_abc_is_documented(title: str) -> None:
    cls = CONTRACTS[title]
    assert inspect.getdoc(cls), f"{title} has no docstring"
    methods = {n for n in public_members(cls) if inspect.isfunction(vars(cls)[n])}
    assert [n for n in sorted(methods) if not inspect.getdoc(vars(cls)[n])] == []
    body = section((DOCS / "contracts.md").read_text(encoding="utf-8"), title)
    listed = set(re.findall(r"^- `(\w+)", body, flags=re.M))
    assert listed == public_members(cls), "docs/contracts.md lists other members"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def test_the_write_a_plugin_page_snippets_run(tmp_path: Path) -> None:
    """The page's plugin module and its test, run as an author would before packaging: the
    module importable from the directory (also for the core's isolated child), and only the
    core's plugins loaded, as in a fresh environment."""
    module, test = python_blocks((DOCS / "writing-plugins.md").read_text(encoding="utf-8"))[:2]
    (tmp_path / "aecflow_wordcount.py").write_text(module)
    (tmp_path / "test_wordcount.py").write_text(test)
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "AECFLOW_LOAD_PLUGINS": ""}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_the_readme_links_the_plugin_pages_and_their_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in PLUGIN_PAGES:
        assert f"](docs/{page})" in readme, f"README does not link docs/{page}"
    broken = []
    for page in PLUGIN_PAGES:
        text = (DOCS / page).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" not in target and not (DOCS / target).exists():
                broken.append(f"{page}: {target}")
    assert broken == []
