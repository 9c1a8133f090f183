"""The command line's package: named exit codes, listed in the README, small modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import aecflow.actor
import aecflow.breaker
import aecflow.cli
import aecflow.errors
import aecflow.uploads.service
from aecflow.cli import exitcodes

CLI_DIR = Path(aecflow.cli.__file__).parent
README = Path(__file__).parent.parent / "README.md"
NAMED = {v for k, v in vars(exitcodes).items() if k.isupper() and isinstance(v, int)}


def _subclasses(cls: type) -> list[type]:
    return [cls, *(s for sub in cls.__subclasses__() for s in _subclasses(sub))]


def test_every_exit_code_in_the_cli_is_a_named_constant() -> None:
    """No ``sys.exit(75)``, ``return 3`` or ``exit_code = 69`` in the command line's modules."""
    literal: list[str] = []
    for path in sorted(CLI_DIR.glob("*.py")):
        if path.name == "exitcodes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            values: list[ast.expr] = []
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "sys.exit":
                values = list(node.args)
            elif isinstance(node, ast.Assign):
                names = " ".join(ast.unparse(target) for target in node.targets)
                values = [node.value] if "exit_code" in names else []
            elif isinstance(node, ast.FunctionDef) and "exit_code" in node.name:
                values = [n.value for n in ast.walk(node) if isinstance(n, ast.Return) and n.value]
            for value in values:
                for sub in ast.walk(value):
                    if isinstance(sub, ast.Constant) and type(sub.value) is int:
                        literal.append(f"{path.name}:{sub.lineno}: {ast.unparse(value)}")
    assert literal == []


def test_the_errors_exit_codes_are_named_and_the_readme_lists_every_name() -> None:
    errors = {sub.exit_code for sub in _subclasses(aecflow.errors.AecflowError)}
    assert errors <= NAMED
    paragraph = README.read_text().split("Exit codes:", 1)[1].split("\n\n", 1)[0]
    listed = {int(n) for n in re.findall(r"(?<![\w.-])(\d+) ", paragraph)}
    assert listed == NAMED


def test_every_cli_module_is_well_under_600_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in CLI_DIR.glob("*.py")}
    assert {"local.py", "runners.py", "admin.py", "remote.py", "output.py"} <= sizes.keys()
    assert max(sizes.values()) < 450, sizes
