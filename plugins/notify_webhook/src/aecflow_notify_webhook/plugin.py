"""Entry point ``notify_webhook``: registers the ``webhook`` notifier backend."""

from __future__ import annotations

from aecflow import hookimpl
from aecflow.registry import NotifierRegistry


@hookimpl
def register_notifiers(registry: NotifierRegistry) -> None:
    # imported here: loading plugins (every CLI command does) should not import httpx
    from aecflow_notify_webhook.config import WebhookConfig
    from aecflow_notify_webhook.notifier import WebhookNotifier

    registry.add("webhook", WebhookNotifier, config=WebhookConfig)
