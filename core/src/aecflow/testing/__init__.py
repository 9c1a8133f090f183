"""Helpers for testing aecflow plugins: in-memory backends, a flow on a temporary directory,
and runners that settle its work. Installed with the core and registered as a pytest plugin
(``aecflow.testing.plugin``), so its fixtures (``flow``, ``live_host``) need no conftest.

    async with open_test_flow(tmp_path, plugins=[("mine", my_plugin)]) as flow:
        record = await flow.ingest_file("demo", path)
        await run_until_settled(flow)
"""

from __future__ import annotations

from aecflow.testing.backends import MemoryStorage, RecordingNotifier, RecordingNotifierConfig
from aecflow.testing.flows import (
    flow_settings,
    open_test_flow,
    recording_notifier,
    run_dispatcher,
    run_until_settled,
    run_worker,
)
from aecflow.testing.live import LiveHost, live_host, serve_app

__all__ = [
    "LiveHost",
    "MemoryStorage",
    "RecordingNotifier",
    "RecordingNotifierConfig",
    "flow_settings",
    "live_host",
    "open_test_flow",
    "recording_notifier",
    "run_dispatcher",
    "run_until_settled",
    "run_worker",
    "serve_app",
]
