"""The command line starts without the heavy libraries that only a running flow needs.

Every command loads the plugins (``aecflow --help`` too, for the plugins' own commands), and a
plugin registers its backend classes then; a class whose module imports aioboto3, httpx or
SQLAlchemy at the top cost every CLI start-up (and every CLI test) seconds. These run in a
fresh interpreter: this test process has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Imported when a flow opens or a backend starts, never for loading plugins or for help.
HEAVY = (
    "aioboto3",
    "aiobotocore",
    "boto3",
    # botocore.exceptions (a few milliseconds) is imported for error translation; the client
    # machinery is what costs
    "botocore.session",
    "botocore.client",
    "aiohttp",
    "httpx",
    "sqlalchemy",
    "alembic",
    "ifcopenshell",
    "ifctester",
    "uvicorn",
    "starlette",
    "opentelemetry.sdk",
    "opentelemetry.exporter",
)

PROBE = """
import json, sys
sys.argv = ["aecflow", *sys.argv[1:]]
from aecflow.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = json.loads(sys.stdin.read())
loaded = sorted(m for m in heavy if m in sys.modules)
print("\\nMODULES=" + json.dumps({"code": code, "loaded": loaded}))
"""


def imported_by(tmp_path: Path, *args: str) -> dict[str, object]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AECFLOW_LOAD_PLUGINS", "AECFLOW_DISABLE_PLUGINS")
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        input=json.dumps(HEAVY),
        cwd=tmp_path,
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    tail = result.stdout.rsplit("MODULES=", 1)[1]
    return json.loads(tail)


@pytest.mark.parametrize(
    "args",
    [["--help"], ["s3", "--help"], ["sqs", "--help"], ["files", "list", "--help"]],
    ids=" ".join,
)
def test_help_loads_every_plugin_without_the_heavy_libraries(
    tmp_path: Path, args: list[str]
) -> None:
    seen = imported_by(tmp_path, *args)
    assert seen == {"code": 0, "loaded": []}


def test_the_plugins_register_their_backends_without_them(tmp_path: Path) -> None:
    """All plugins loaded and their registries filled: the classes are there, the libraries
    they use are not imported until a backend starts."""
    code = """
import json, sys
from aecflow.loading.plugins import PluginHost
host = PluginHost().load()
names = {kind: registry.names() for kind, registry in host.registries.by_hook().items()}
heavy = json.loads(sys.stdin.read())
print(json.dumps({"names": names, "loaded": sorted(m for m in heavy if m in sys.modules)}))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(HEAVY),
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert {"local", "s3"} <= set(seen["names"]["register_storage"])
    assert {"ifc", "ifc-validate", "ifc-ids", "ifc-csv"} <= set(
        seen["names"]["register_processors"]
    )
    assert {"webhook", "sqs", "log"} <= set(seen["names"]["register_notifiers"])
    assert seen["loaded"] == []
