"""aecflow notifier that signs and posts events as Standard Webhooks.

Receivers import ``verify`` from here to check a delivery's signature and freshness; it needs
only the standard library. The notifier itself (httpx) is imported on first use.
"""

from __future__ import annotations

from typing import Any

from aecflow_notify_webhook.signing import (
    WebhookVerificationError,
    generate_secret,
    sign,
    signature_header,
    verify,
)

__all__ = [
    "WebhookConfig",
    "WebhookNotifier",
    "WebhookVerificationError",
    "encode_payload",
    "generate_secret",
    "sign",
    "signature_header",
    "verify",
]

_LAZY = {
    "WebhookConfig": "aecflow_notify_webhook.config",
    "WebhookNotifier": "aecflow_notify_webhook.notifier",
    "encode_payload": "aecflow_notify_webhook.notifier",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
