"""``aecflow plugin new``: each kind of package it writes installs on its own into a fresh venv
beside the core, passes its own tests there (the contract suite included) and is listed by
``aecflow plugins``; a bad name, kind or target directory exits 2 and writes nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import aecflow.testing
from aecflow.cli import cli
from aecflow.cli.scaffold import KINDS, PluginNames

ROOT = Path(__file__).resolve().parent.parent
HOOKS = {
    "storage": "register_storage",
    "processor": "register_processors",
    "notifier": "register_notifiers",
}
CONTRACTS = ("StorageContract", "ProcessorContract", "NotifierContract")


#: Contract checks that skip when a backend does not offer the capability (see the suites).
OPTIONAL_CHECKS = {
    "test_download_urls",
    "test_a_permanent_refusal_is_not_retried",
    "test_the_payload_arrives_as_json_equal_to_the_events",
}


def find_uv() -> str | None:
    return shutil.which("uv") or next(
        (str(p) for p in [ROOT / ".venv-tools" / "bin" / "uv"] if p.exists()), None
    )


def clean_env() -> dict[str, str]:
    """This process's environment without what would leak into another venv's runs."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    return {
        key: value
        for key, value in os.environ.items()
        if key not in drop and not key.startswith("AECFLOW_")
    }


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=clean_env(),
    )


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def plugin_new(cwd: Path, *args: str) -> Result:
    """``aecflow plugin new ARGS`` in ``cwd``, in this process (click's runner: the same exit
    codes as the script, without a second of start-up per call)."""
    before = Path.cwd()
    os.chdir(cwd)
    try:
        done = CliRunner().invoke(cli, ["plugin", "new", *args])
    finally:
        os.chdir(before)
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return Result(done.exit_code, done.stdout, done.stderr)


# -- bad input: exit 2, a message naming the problem, nothing written ---------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Gcs", "not a plugin name"),
        ("1gcs", "not a plugin name"),
        ("my gcs", "not a plugin name"),
        ("gcs-", "not a plugin name"),
        ("a--b", "not a plugin name"),
        ("../gcs", "not a plugin name"),
        ("aecflow", "not a plugin name"),
        ("aecflow-", "not a plugin name"),
        ("x" * 31, "too long"),
    ],
)
def test_a_bad_name_exits_2_and_writes_nothing(tmp_path: Path, name: str, problem: str) -> None:
    done = plugin_new(tmp_path, name, "--kind", "storage")
    assert done.returncode == 2, done.stdout + done.stderr
    assert problem in done.stderr and repr(name) in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_bad_kind_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    done = plugin_new(tmp_path, "gcs", "--kind", "exporter")
    assert done.returncode == 2
    assert "'exporter' is not one of 'storage', 'processor', 'notifier'" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_script_exits_2_for_a_bad_name(tmp_path: Path) -> None:
    """The installed ``aecflow`` script (``main``) maps the usage error to exit code 2 too."""
    done = run(
        sys.executable, "-m", "aecflow", "plugin", "new", "Bad", "--kind", "storage", cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "'Bad' is not a plugin name" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_target_that_is_not_empty_or_not_a_directory_is_refused(tmp_path: Path) -> None:
    occupied = tmp_path / "aecflow-gcs"
    occupied.mkdir()
    (occupied / "mine.txt").write_text("keep me")
    done = plugin_new(tmp_path, "gcs", "--kind", "storage")  # the default target
    assert done.returncode == 2
    assert "is a directory that is not empty" in done.stderr
    assert [p.name for p in occupied.iterdir()] == ["mine.txt"]

    (tmp_path / "a-file").write_text("x")
    done = plugin_new(tmp_path, "gcs", "--kind", "storage", "--dir", "a-file")
    assert done.returncode == 2
    assert "a-file" in done.stderr and (tmp_path / "a-file").read_text() == "x"

    (tmp_path / "empty").mkdir()
    done = plugin_new(tmp_path, "gcs", "--kind", "storage", "--dir", "empty")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "empty" / "pyproject.toml").exists()


def test_names_follow_the_aecflow_prefix_convention() -> None:
    assert PluginNames.parse("aecflow-blob-store") == PluginNames.parse("blob-store")
    names = PluginNames.parse("blob-store")
    assert (names.name, names.distribution, names.module) == (
        "blob-store",
        "aecflow-blob-store",
        "aecflow_blob_store",
    )


# -- the packages it writes -----------------------------------------------------------------


def test_each_kind_writes_a_complete_package(tmp_path: Path) -> None:
    for kind in KINDS:
        done = plugin_new(tmp_path, f"demo-{kind}", "--kind", kind)
        assert done.returncode == 0, done.stderr
        root = tmp_path / f"aecflow-demo-{kind}"
        module = f"aecflow_demo_{kind}"
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        assert files == [
            ".github/workflows/test.yml",
            ".gitignore",
            "README.md",
            "pyproject.toml",
            f"src/{module}/__init__.py",
            f"src/{module}/py.typed",
            f"tests/test_{module}.py",
        ]
        pyproject = (root / "pyproject.toml").read_text()
        assert f'demo-{kind} = "{module}"' in pyproject  # the aecflow entry point
        assert '"aecflow[testing]>=' in pyproject
        test_module = (root / f"tests/test_{module}.py").read_text()
        assert f"from aecflow.testing import {kind.capitalize()}Contract" in test_module
        assert "${{ matrix.python-version }}" in (root / ".github/workflows/test.yml").read_text()


def test_the_generated_code_is_lint_clean_with_the_longest_name(tmp_path: Path) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (make setup installs it)")
    name = "abcdefghij-klmnopqrst-uvwxyz12"  # 30 characters, the most a name may have
    for kind in KINDS:
        assert plugin_new(tmp_path, name, "--kind", kind, "--dir", kind).returncode == 0
        root = tmp_path / kind
        checked = run(ruff, "check", "--no-cache", "--select", "E,F,W,I,UP,B", ".", cwd=root)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        formatted = run(ruff, "format", "--no-cache", "--check", ".", cwd=root)
        assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_each_kind_installs_alone_beside_the_core_and_passes_its_tests(tmp_path: Path) -> None:
    """One venv with the core, and each generated package installed, tested, listed and
    removed in turn: every package runs with nothing but the core and its test extra."""
    missing = [name for name in CONTRACTS if not hasattr(aecflow.testing, name)]
    if missing:
        pytest.skip(f"aecflow.testing has no {', '.join(missing)} yet (the contract suites)")
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed (make test installs it)")
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    made = run(uv, "venv", "--quiet", "--python", sys.executable, venv)
    assert made.returncode == 0, made.stderr
    core = run(uv, "pip", "install", "--quiet", "--python", python, f"{ROOT / 'core'}[testing]")
    assert core.returncode == 0, core.stderr
    script = venv / "bin" / "aecflow"

    for kind in KINDS:
        root = tmp_path / kind
        # The venv's own script: the templates are package data of the installed wheel.
        made = run(script, "plugin", "new", f"demo-{kind}", "--kind", kind, "--dir", root)
        assert made.returncode == 0, made.stderr
        added = run(uv, "pip", "install", "--quiet", "--python", python, f"{root}[test]")
        assert added.returncode == 0, added.stderr

        listing = run(script, "plugins", "--json", cwd=tmp_path)
        assert listing.returncode == 0, listing.stderr
        plugins = {row["name"]: row for row in json.loads(listing.stdout)}
        assert plugins[f"demo-{kind}"]["status"] == "loaded", plugins
        assert plugins[f"demo-{kind}"]["distribution"] == f"aecflow-demo-{kind}"
        assert HOOKS[kind] in plugins[f"demo-{kind}"]["hooks"]
        others = {f"demo-{other}" for other in KINDS if other != kind}
        assert not others & plugins.keys(), "the previous kind was removed"

        tested = run(python, "-m", "pytest", "-v", "-p", "no:cacheprovider", cwd=root)
        report = tested.stdout + tested.stderr
        assert tested.returncode == 0, report
        assert "FAILED" not in report and "ERROR" not in report
        # Only the checks of capabilities a skeleton does not offer may skip (no download
        # URLs on local files, no permanent refusal for a JSON-lines file, payloads not read).
        skipped = set(re.findall(r"::(test_\w+)(?:\[[^\]]*\])? SKIPPED", report))
        assert skipped <= OPTIONAL_CHECKS, skipped
        assert "Contract::" in report, "the contract suite ran"
        assert " passed" in report

        removed = run(uv, "pip", "uninstall", "--quiet", "--python", python, f"aecflow-demo-{kind}")
        assert removed.returncode == 0, removed.stderr
