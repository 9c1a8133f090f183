"""Each in-tree plugin's tests stand on their own: in an environment with only that plugin, the
core and its test extra (``uv sync --package NAME --extra test``, offline from uv's cache),
``pytest plugins/NAME`` needs nothing of the repository's root ``tests`` package.

storage_local runs its whole suite that way; the others are collected (every test module and
conftest imported), which is where a missing dependency or a root import shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: (directory, distribution, run the tests too, not only collect them)
PLUGINS = [
    ("plugins/storage_local", "aecflow-storage-local", True),
    ("plugins/storage_s3", "aecflow-storage-s3", False),
    ("plugins/processor_ifc", "aecflow-processor-ifc", False),
    ("examples/aecflow-example-plugin", "aecflow-example-plugin", False),
]
NOTIFY_PLUGINS = ("aecflow_notify_sqs", "aecflow_notify_webhook")
#: What a self-contained plugin test never does: reach for the repository's root tests.
ROOT_REACH = re.compile(r"^\s*(from tests[. ]|import tests\b)|sys\.path\.(insert|append)", re.M)


def find_uv() -> str:
    uv = shutil.which("uv") or next(
        (str(p) for p in [ROOT / ".venv-tools" / "bin" / "uv"] if p.exists()), None
    )
    if uv is None:
        pytest.fail("uv is not installed (make setup installs it)")
    return uv


def plugin_env(directory: Path, distribution: str) -> Path:
    """A venv with only ``distribution`` (and its ``test`` extra) and the core, from the lock."""
    venv = directory / "venv"
    done = subprocess.run(
        [
            find_uv(),
            "sync",
            "--quiet",
            "--frozen",
            "--offline",  # everything is in uv's cache after make setup
            "--no-default-groups",
            "--package",
            distribution,
            "--extra",
            "test",
            "--python",
            sys.executable,
        ],
        cwd=ROOT,
        env=os.environ | {"UV_PROJECT_ENVIRONMENT": str(venv)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return venv


@pytest.mark.parametrize(("where", "distribution", "full"), PLUGINS, ids=[p[0] for p in PLUGINS])
def test_plugin_tests_run_with_only_the_plugin_and_the_core(
    tmp_path: Path, where: str, distribution: str, full: bool
) -> None:
    venv = plugin_env(tmp_path, distribution)
    installed = {p.name.split("-")[0] for p in venv.glob("lib/*/site-packages/*.dist-info")}
    plugins = {name.replace("-", "_") for _, name, _ in PLUGINS} | set(NOTIFY_PLUGINS)
    assert installed & plugins == {distribution.replace("-", "_")}

    # The venv's own pytest script (not `python -m`, which would put the root on sys.path).
    args = [str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", where]
    done = subprocess.run(
        args if full else [*args, "--collect-only"],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\d+ (passed|tests collected)", done.stdout), done.stdout[-2000:]


@pytest.mark.parametrize("where", [p[0] for p in PLUGINS])
def test_plugin_tests_do_not_reach_into_the_root_tests(where: str) -> None:
    offending = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for path in sorted((ROOT / where).rglob("*.py"))
        for match in ROOT_REACH.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offending == []
