"""Install throw-away plugin distributions for a test: real entry points, no pip.

``importlib.metadata`` finds any ``*.dist-info`` directory on ``sys.path``; writing one with an
``entry_points.txt`` beside a module is exactly what an installed third-party plugin looks
like to the loader.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest


class FakeDists:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        monkeypatch.syspath_prepend(str(root))
        self._modules: list[str] = []
        self._monkeypatch = monkeypatch

    def add(self, dist: str, entry_point: str, module: str, source: str) -> None:
        info = self.root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[aecflow]\n{entry_point} = {module}\n")
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        self._modules.append(module)
        importlib.invalidate_caches()

    def cleanup(self) -> None:
        for module in self._modules:
            sys.modules.pop(module, None)
