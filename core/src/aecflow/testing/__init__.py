"""Helpers for testing aecflow plugins: in-memory backends, a flow on a temporary directory,
and runners that settle its work. Installed with the core and registered as a pytest plugin
(``aecflow.testing.plugin``), so its fixtures (``flow``, ``live_host``) need no conftest.

    async with open_test_flow(tmp_path, plugins=[("mine", my_plugin)]) as flow:
        record = await flow.ingest_file("demo", path)
        await run_until_settled(flow)

Contract suites (:mod:`aecflow.testing.contracts`: ``StorageContract``, ``ProcessorContract``)
certify a backend; they need pytest, so they load on first use. Database fixtures
(``database_url``: SQLite and PostgreSQL) are in :mod:`aecflow.testing.databases`, a moto
S3/SQS server in :mod:`aecflow.testing.aws`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aecflow.testing.backends import MemoryStorage, RecordingNotifier, RecordingNotifierConfig
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

if TYPE_CHECKING:
    from aecflow.testing.contracts import NotifierContract, ProcessorContract, StorageContract

#: Names loaded on first use (they import pytest, a dependency of the ``testing`` extra only).
_CONTRACTS = ("NotifierContract", "ProcessorContract", "StorageContract")


def __getattr__(name: str) -> Any:
    if name in _CONTRACTS:
        from aecflow.testing import contracts

        return getattr(contracts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TESTING_PLUGIN",
    "LiveHost",
    "MemoryStorage",
    "NotifierContract",
    "ProcessorContract",
    "RecordingNotifier",
    "RecordingNotifierConfig",
    "StorageContract",
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
