"""Helpers for testing aecflow plugins: in-memory backends, a flow on a temporary directory,
and runners that settle its work. Installed with the core and registered as a pytest plugin
(``aecflow.testing.plugin``), so its fixtures (``flow``, ``live_host``) need no conftest.

    async with open_test_flow(tmp_path, plugins=[("mine", my_plugin)]) as flow:
        record = await flow.ingest_file("demo", path)
        await run_until_settled(flow)
"""

from __future__ import annotations

from aecflow.testing.backends import MemoryStorage, RecordingNotifier, RecordingNotifierConfig
from aecflow.testing.contracts import NotifierContract
from aecflow.testing.delivery import all_delivered, deliver_until, outbox_rows
from aecflow.testing.flows import (
    PLUGIN as TESTING_PLUGIN,
)
from aecflow.testing.flows import (
    flow_settings,
    open_flow,
    open_test_flow,
    recording_notifier,
    run_dispatcher,
    run_until_settled,
    run_worker,
)
from aecflow.testing.live import LiveHost, live_host, serve_app
from aecflow.testing.proxy import TcpProxy

__all__ = [
    "TESTING_PLUGIN",
    "LiveHost",
    "MemoryStorage",
    "NotifierContract",
    "RecordingNotifier",
    "RecordingNotifierConfig",
    "TcpProxy",
    "all_delivered",
    "deliver_until",
    "flow_settings",
    "live_host",
    "open_flow",
    "open_test_flow",
    "outbox_rows",
    "recording_notifier",
    "run_dispatcher",
    "run_until_settled",
    "run_worker",
    "serve_app",
]
