"""Standard Webhooks signatures: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``.

Standard library only, so a receiver can ``from aecflow_notify_webhook import verify`` and
check deliveries exactly the way the sender signs them. Secrets are ``whsec_`` + base64 of
random bytes; the ``webhook-signature`` header lists one signature per secret, space
separated, so a secret can be rotated without downtime.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets as _random
import time
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
#: The spec asks for 24 to 64 random bytes (192 to 512 bits).
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
#: How far ``webhook-timestamp`` may be from the receiver's clock (replay protection).
DEFAULT_TOLERANCE_S = 300.0


class WebhookVerificationError(Exception):
    """The delivery is not authentic (or not fresh): answer 400 and do not process it."""


def generate_secret(nbytes: int = 32) -> str:
    """A new ``whsec_`` secret to share with one endpoint."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(nbytes)).decode("ascii")


def decode_secret(secret: str | bytes, *, min_bytes: int = 1) -> bytes:
    """The HMAC key of a ``whsec_...`` secret (the prefix is optional; raw bytes pass through)."""
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.strip().removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the secret is not base64 (expected 'whsec_' + base64)") from None
    if not min_bytes <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"the secret decodes to {len(key)} bytes; use {min_bytes} to {MAX_SECRET_BYTES}"
        )
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of exactly the bytes sent."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def signature_header(keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per key, space separated."""
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | bytes | Iterable[str | bytes],
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> Any:
    """Check a delivery and return its parsed JSON body; raise ``WebhookVerificationError``.

    ``body`` must be the raw request body (never re-serialised JSON). ``secret`` may be a list
    while rotating: the delivery is accepted when any ``v1`` signature matches any secret.
    Use ``webhook-id`` as an idempotency key: a delivery may arrive more than once.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    offered = lowered.get("webhook-signature", "")
    if not (msg_id and stamp and offered):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not stamp.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not an integer")
    timestamp = int(stamp)
    clock = time.time() if now is None else now
    if timestamp < clock - tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is too old")
    if timestamp > clock + tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is too far in the future")
    candidates = [secret] if isinstance(secret, str | bytes) else list(secret)
    if not candidates:
        raise ValueError("no secret to verify with")
    expected = [
        base64.b64decode(sign(decode_secret(s), msg_id, timestamp, raw)[3:]) for s in candidates
    ]
    for item in offered.split():
        version, _, encoded = item.partition(",")
        if version != "v1":
            continue  # e.g. v1a (asymmetric): not ours to check
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # compare against every key without short-circuiting on the first mismatch
        if any([hmac.compare_digest(given, mac) for mac in expected]):
            return json.loads(raw)
    raise WebhookVerificationError("no matching signature")
