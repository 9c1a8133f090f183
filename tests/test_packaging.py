"""Each package installs on its own into a fresh environment and is found by entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def find_uv() -> str | None:
    return shutil.which("uv") or next(
        (str(p) for p in [ROOT / ".venv-tools" / "bin" / "uv"] if p.exists()), None
    )


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def test_core_and_storage_local_install_into_a_fresh_venv(tmp_path: Path) -> None:
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed (make test installs it)")
    venv = tmp_path / "venv"
    made = run(uv, "venv", "--quiet", "--python", sys.executable, venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = run(
        uv,
        "pip",
        "install",
        "--quiet",
        "--python",
        python,
        ROOT / "core",
        ROOT / "plugins" / "storage_local",
    )
    assert installed.returncode == 0, installed.stderr

    listing = run(venv / "bin" / "aecflow", "plugins", "--json", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    assert plugins["storage_local"]["status"] == "loaded"
    assert plugins["storage_local"]["distribution"] == "aecflow-storage-local"
    assert "example" not in plugins, "only what was installed is found"

    (tmp_path / "plan.pdf").write_bytes(b"%PDF-1.7 test")
    ingested = run(
        venv / "bin" / "aecflow", "ingest", "plan.pdf", "-p", "demo", "--json", cwd=tmp_path
    )
    assert ingested.returncode == 0, ingested.stderr
    record = json.loads(ingested.stdout)
    assert record["processing"]["outcome"] == "skipped"
    assert (tmp_path / "aecflow-data" / "storage" / "objects" / "demo" / record["id"]).exists()


@pytest.mark.parametrize(
    "package",
    ["core", *(f"plugins/{p.name}" for p in sorted((ROOT / "plugins").iterdir()))]
    + [f"examples/{p.name}" for p in sorted((ROOT / "examples").iterdir())],
)
def test_every_wheel_is_marked_typed(package: str, tmp_path: Path) -> None:
    """PEP 561: without ``py.typed`` in the wheel, type checkers ignore the package's hints."""
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed (make test installs it)")
    built = run(uv, "build", "--wheel", "--quiet", "--out-dir", tmp_path, ROOT / package)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        marked = [n for n in archive.namelist() if n.endswith("/py.typed")]
    assert len(marked) == 1 and marked[0].count("/") == 1, marked
