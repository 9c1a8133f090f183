"""aecflow: ingest, store, process and announce building models and other large files."""

from __future__ import annotations

import pluggy

from aecflow.hookspecs import PROJECT_NAME

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["hookimpl"]
