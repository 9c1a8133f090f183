"""Under a memory cap, hostile and oversized inputs end classified, never hung or dead.

Each test runs ``run_capped.py`` in a subprocess with RLIMIT_AS set, as the core's isolated
child will, and then has the same process summarise a small good file: the failure must
leave it able to work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ifc_support import BODY, HEADER, TINY, write

from aecflow_processor_ifc.testing.synthetic import Spec, write_model

RUNNER = Path(__file__).with_name("run_capped.py")


def run_capped(headroom_mb: int, *paths: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(headroom_mb), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_nested_parentheses_that_explode_memory(tmp_path: Path) -> None:
    """30 MB of '(' that never close: IfcOpenShell's parser would need about 17x that."""
    hostile = tmp_path / "nested.ifc"
    prefix = HEADER + BODY + b"#5=IFCPROPERTYSINGLEVALUE('a',$,"
    with hostile.open("wb") as f:
        f.write(prefix)
        f.write(b"(" * 30_000_000)
    good = write(tmp_path / "good.ifc", TINY)
    bad_report, good_report = run_capped(300, hostile, good)
    assert bad_report["outcome"] == "invalid_input", bad_report
    assert f"parentheses are nested at byte {len(prefix)}" in bad_report["error"]
    assert good_report == {"outcome": "succeeded", "entity_count": 4}


def test_model_larger_than_the_cap_is_out_of_memory(tmp_path: Path) -> None:
    """A valid 25 MB model needs about 50 MB beyond the libraries; it gets 30 MB."""
    big = tmp_path / "big.ifc"
    write_model(big, Spec(storeys=4, bays=None, target_bytes=25_000_000))
    good = write(tmp_path / "good.ifc", TINY)
    bad_report, good_report = run_capped(30, big, good)
    assert bad_report["outcome"] == "out_of_memory", bad_report
    # IfcOpenShell reports a failed allocation as RuntimeError; the processor says what it was.
    assert not bad_report["error"] or "address-space limit" in bad_report["error"]
    assert good_report == {"outcome": "succeeded", "entity_count": 4}
