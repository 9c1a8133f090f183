"""Entry point ``storage_local``: registers the ``local`` storage backend with the core."""

from __future__ import annotations

from aecflow import hookimpl
from aecflow.registry import StorageRegistry


@hookimpl
def register_storage(registry: StorageRegistry) -> None:
    from aecflow_storage_local.config import LocalStorageConfig
    from aecflow_storage_local.storage import LocalStorage

    registry.add("local", LocalStorage, config=LocalStorageConfig)


@hookimpl
def register_routes(routes: list, flow) -> None:
    """Serve this backend's signed download URLs when the host runs with local storage."""
    if flow.storage.name == "local":
        from aecflow_storage_local.routes import signed_url_route

        routes.append(signed_url_route(flow))
