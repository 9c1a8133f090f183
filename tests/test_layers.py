"""The import direction of the core's layers (`.importlinter`), checked by import-linter.

The contract is only worth having if it fails: the second test copies the package, makes a
service reach up into the facade, and expects `lint-imports` to name that import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import aecflow

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(python_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(python_path)) if python_path else None
    return subprocess.run(
        [str(LINT_IMPORTS), str(ROOT / ".importlinter"), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_the_core_keeps_its_layers() -> None:
    run = lint_imports()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_a_service_importing_the_facade_breaks_the_contract(tmp_path: Path) -> None:
    copy = tmp_path / "aecflow"
    shutil.copytree(Path(aecflow.__file__).parent, copy, ignore=shutil.ignore_patterns("*.pyc"))
    worker = copy / "jobs" / "worker.py"
    worker.write_text(worker.read_text() + "\nfrom aecflow.flow import Flow  # reaching up\n")
    run = lint_imports(python_path=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "aecflow.jobs.worker -> aecflow.flow" in run.stdout
