"""Entry point ``notify_sqs``: the ``sqs`` notifier backend and the `aecflow sqs` commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aecflow import hookimpl
from aecflow.registry import NotifierRegistry

if TYPE_CHECKING:
    import click


@hookimpl
def register_notifiers(registry: NotifierRegistry) -> None:
    from aecflow_notify_sqs.config import SqsConfig
    from aecflow_notify_sqs.notifier import SqsNotifier

    registry.add("sqs", SqsNotifier, config=SqsConfig)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from aecflow_notify_sqs.cli import sqs

    cli.add_command(sqs)
