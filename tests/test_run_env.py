"""`make run`'s environment holds the service and its plugins but no dev tools, and third-party
plugins named in plugins.txt survive the next sync (issue 14, points 10 and 11).

The Makefile targets run for real against this checkout, with RUN_VENV and PLUGINS pointing into
a temporary directory, so nothing in the repository is touched."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICE = {
    "aecflow",
    "aecflow-storage-local",
    "aecflow-processor-ifc",
    "aecflow-storage-s3",
    "aecflow-notify-sqs",
    "aecflow-notify-webhook",
    "uvicorn",
    "asyncpg",
    "opentelemetry-sdk",
}
DEV_TOOLS = {
    "moto",
    "schemathesis",
    "ruff",
    "cfn-lint",
    "pytest",
    "hypothesis",
    "aecflow-example-plugin",
}


def find_uv() -> str | None:
    return shutil.which("uv") or next(
        (str(p) for p in [ROOT / ".venv-tools" / "bin" / "uv"] if p.exists()), None
    )


@pytest.fixture
def uv() -> str:
    found = find_uv()
    if found is None or shutil.which("make") is None:
        pytest.skip("uv or make is not installed (make test installs uv)")
    return found


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


def make(uv: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(
        "make",
        "--no-print-directory",
        f"UV={uv}",
        f"RUN_VENV={tmp / 'run'}",
        f"PLUGINS={tmp / 'plugins.txt'}",
        *args,
    )


def installed(uv: str, venv: Path) -> set[str]:
    listing = run(uv, "pip", "list", "--python", venv / "bin" / "python", "--format", "json")
    return {p["name"] for p in json.loads(listing.stdout)}


def plugins(venv: Path) -> dict[str, dict]:
    listing = run(venv / "bin" / "aecflow", "plugins", "--json")
    return {p["name"]: p for p in json.loads(listing.stdout)}


def test_run_environment_has_the_service_and_no_dev_tools(uv: str, tmp_path: Path) -> None:
    make(uv, tmp_path, "setup-run")
    venv = tmp_path / "run"

    names = installed(uv, venv)
    assert names >= SERVICE, SERVICE - names
    assert not names & DEV_TOOLS, names & DEV_TOOLS

    found = plugins(venv)
    for name in ("storage_local", "storage_s3", "processor_ifc", "notify_sqs", "notify_webhook"):
        assert found[name]["status"] == "loaded", found[name]
    assert "example" not in found

    # `make run` serves from that environment, not from the dev one.
    dry = make(uv, tmp_path, "-n", "run")
    assert f'"{venv}/bin/aecflow"  serve' in dry.stdout, dry.stdout
    assert ".venv/bin/aecflow" not in dry.stdout
    # ...and `make run CONFIG=FILE` hands it the file (issue 14.9).
    dry = make(uv, tmp_path, "-n", "run", "CONFIG=my settings.toml")
    assert f'"{venv}/bin/aecflow" --config "my settings.toml" serve' in dry.stdout, dry.stdout


def test_a_plugin_added_with_make_plugin_survives_the_next_sync(uv: str, tmp_path: Path) -> None:
    venv = tmp_path / "run"
    run(
        uv,
        "build",
        "--wheel",
        "--quiet",
        "--out-dir",
        tmp_path / "dist",
        ROOT / "examples" / "aecflow-example-plugin",
    )
    (wheel,) = (tmp_path / "dist").glob("aecflow_example_plugin-*.whl")

    make(uv, tmp_path, "plugin", f"PKG={wheel}")
    make(uv, tmp_path, "plugin", f"PKG={wheel}")  # a second time writes no second line
    assert (tmp_path / "plugins.txt").read_text().splitlines() == [str(wheel)]
    example = plugins(venv)["example"]
    assert example["status"] == "loaded", example
    assert example["distribution"] == "aecflow-example-plugin"

    # The sync `make` runs is exact: on its own it removes what the lock does not name...
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "UV_PROJECT_ENVIRONMENT": str(venv)}
    run(uv, "sync", "--frozen", "--no-default-groups", "--group", "run", env=env)
    assert "aecflow-example-plugin" not in installed(uv, venv)

    # ...and the set-up `make run` does installs plugins.txt again after it.
    make(uv, tmp_path, "setup-run")
    assert plugins(venv)["example"]["status"] == "loaded"
    run(venv / "bin" / "python", "-c", "import aecflow_example_plugin")
    assert not installed(uv, venv) & (DEV_TOOLS - {"aecflow-example-plugin"})
