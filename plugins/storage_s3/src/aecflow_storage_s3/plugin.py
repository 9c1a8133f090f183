"""Entry point ``storage_s3``: the ``s3`` storage backend and the ``aecflow s3`` commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aecflow import hookimpl

if TYPE_CHECKING:
    import click

    from aecflow.registry import StorageRegistry


@hookimpl
def register_storage(registry: StorageRegistry) -> None:
    from aecflow_storage_s3.config import S3StorageConfig
    from aecflow_storage_s3.storage import S3Storage

    registry.add("s3", S3Storage, config=S3StorageConfig)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from aecflow_storage_s3.cli import s3

    cli.add_command(s3)
