"""Signatures as the Standard Webhooks spec defines them, the settings, and the answer mapping."""

from __future__ import annotations

import datetime as dt
import email.utils

import pydantic
import pytest

from aecflow.config import validate
from aecflow.errors import ConfigError
from aecflow.loading.plugins import PluginHost
from aecflow.notify import DeliveryStatus
from aecflow_notify_webhook import (
    WebhookConfig,
    WebhookNotifier,
    WebhookVerificationError,
    encode_payload,
    generate_secret,
    sign,
    verify,
)
from aecflow_notify_webhook.outcomes import outcome_for, parse_retry_after
from aecflow_notify_webhook.signing import decode_secret, signature_header

# The reference vector of the standard-webhooks libraries (libraries/*/tests).
REF_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REF_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
REF_TS = 1614265330
REF_BODY = b'{"test": 2432232314}'
REF_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(msg_id: str, ts: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_signature_matches_the_reference_implementation() -> None:
    assert sign(decode_secret(REF_SECRET), REF_ID, REF_TS, REF_BODY) == REF_SIG
    payload = verify(REF_BODY, headers(REF_ID, REF_TS, REF_SIG), REF_SECRET, now=REF_TS + 10)
    assert payload == {"test": 2432232314}
    # the prefix is optional and header names are case-insensitive
    upper = {k.upper(): v for k, v in headers(REF_ID, REF_TS, REF_SIG).items()}
    assert verify(REF_BODY, upper, REF_SECRET.removeprefix("whsec_"), now=REF_TS) == payload


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body": REF_BODY + b" "}, "no matching signature"),
        ({"msg_id": REF_ID + "x"}, "no matching signature"),
        ({"ts": REF_TS + 1}, "no matching signature"),
        ({"now": REF_TS + 301}, "too old"),
        ({"now": REF_TS - 301}, "future"),
        ({"signature": "v1a,abc v2," + REF_SIG[3:]}, "no matching signature"),
        ({"signature": "v1,not*base64 v1"}, "no matching signature"),
        ({"signature": ""}, "missing"),
        ({"ts": "12.5"}, "integer"),
    ],
)
def test_tampered_or_stale_deliveries_are_refused(change: dict, message: str) -> None:
    body = change.get("body", REF_BODY)
    msg_id = change.get("msg_id", REF_ID)
    signature = change.get("signature", REF_SIG)
    hdrs = headers(msg_id, REF_TS, signature)
    hdrs["webhook-timestamp"] = str(change.get("ts", REF_TS))
    with pytest.raises(WebhookVerificationError, match=message):
        verify(body, hdrs, REF_SECRET, now=change.get("now", REF_TS))


def test_rotation_signs_with_every_secret_and_either_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    body = b'{"a":1}'
    value = signature_header([decode_secret(new), decode_secret(old)], "evt_1", 1700000000, body)
    assert len(value.split()) == 2 and all(s.startswith("v1,") for s in value.split())
    hdrs = headers("evt_1", 1700000000, value)
    assert verify(body, hdrs, old, now=1700000000) == {"a": 1}
    assert verify(body, hdrs, new, now=1700000000) == {"a": 1}
    assert verify(body, hdrs, [generate_secret(), old], now=1700000000) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        verify(body, hdrs, generate_secret(), now=1700000000)


def test_config_accepts_one_or_several_secrets_and_never_echoes_them() -> None:
    one = WebhookConfig(url="https://example.com/h", secret=REF_SECRET)
    assert one.keys() == [decode_secret(REF_SECRET)]
    assert REF_SECRET not in repr(one) and REF_SECRET not in one.model_dump_json()
    two = WebhookConfig(url="http://127.0.0.1:9/h", secret=[generate_secret(), REF_SECRET])
    assert len(two.keys()) == 2
    assert (one.timeout_s, one.max_concurrency, one.max_batch) == (15.0, 8, 16)

    short = "whsec_" + "QUJD"  # 3 bytes
    for bad in [
        {"url": "ftp://example.com/h", "secret": REF_SECRET},
        {"url": "/relative", "secret": REF_SECRET},
        {"url": "https://example.com/h", "secret": short},
        {"url": "https://example.com/h", "secret": "whsec_***not base64***"},
        {"url": "https://example.com/h", "secret": []},
        {"url": "https://example.com/h", "secret": REF_SECRET, "colour": "red"},
    ]:
        with pytest.raises(ConfigError) as info:
            validate(WebhookConfig, bad, where="[[notifiers]][0]")
        assert "QUJD" not in str(info.value) and "not base64***" not in str(info.value)


def test_event_filter_takes_names_and_patterns() -> None:
    config = WebhookConfig(
        url="https://example.com/h", secret=REF_SECRET, events=["file.stored", "file.process*"]
    )
    notifier = WebhookNotifier(config)
    assert notifier.wants("file.stored") and notifier.wants("file.processing_failed")
    assert not notifier.wants("file.deleted")
    assert WebhookNotifier(WebhookConfig(url="https://e.com", secret=REF_SECRET)).wants("x.y")


def test_registered_through_its_entry_point() -> None:
    host = PluginHost(environ={"AECFLOW_LOAD_PLUGINS": "notify_webhook"}).load()
    [info] = [p for p in host.plugins if p.name == "notify_webhook"]
    assert (info.status, info.hooks) == ("loaded", ["register_notifiers"])
    registration = host.registries.notifiers.get("webhook")
    assert registration is not None
    assert (registration.factory, registration.config) == (WebhookNotifier, WebhookConfig)


def test_body_serialisation_is_stable() -> None:
    a = encode_payload({"b": 1, "a": {"y": "é", "x": [1, 2]}})
    b = encode_payload({"a": {"x": [1, 2], "y": "é"}, "b": 1})
    assert a == b == b'{"a":{"x":[1,2],"y":"\\u00e9"},"b":1}'
    with pytest.raises(ValueError):
        encode_payload({"x": float("nan")})


NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, DeliveryStatus.DELIVERED),
        (204, DeliveryStatus.DELIVERED),
        (299, DeliveryStatus.DELIVERED),
        (301, DeliveryStatus.RETRY),
        (302, DeliveryStatus.RETRY),
        (307, DeliveryStatus.RETRY),
        (400, DeliveryStatus.RETRY),
        (401, DeliveryStatus.RETRY),
        (404, DeliveryStatus.RETRY),
        (408, DeliveryStatus.RETRY),
        (410, DeliveryStatus.DISABLED),
        (413, DeliveryStatus.REJECTED),
        (422, DeliveryStatus.RETRY),
        (425, DeliveryStatus.RETRY),
        (429, DeliveryStatus.RETRY),
        (500, DeliveryStatus.RETRY),
        (502, DeliveryStatus.RETRY),
        (503, DeliveryStatus.RETRY),
        (504, DeliveryStatus.RETRY),
    ],
)
def test_status_mapping(status: int, expected: DeliveryStatus) -> None:
    outcome = outcome_for(status, {}, "body text", max_retry_after=HOUR, now=NOW)
    assert outcome.status is expected
    if expected is not DeliveryStatus.DELIVERED:
        assert outcome.error and outcome.error.startswith(f"HTTP {status}")


def test_redirects_name_their_target() -> None:
    outcome = outcome_for(302, {"location": "https://new.example/h"}, "", max_retry_after=HOUR)
    assert "redirect to https://new.example/h not followed" in (outcome.error or "")


def test_retry_after_seconds_dates_garbage_and_cap() -> None:
    assert parse_retry_after("120", NOW) == dt.timedelta(seconds=120)
    date = email.utils.format_datetime(NOW + dt.timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(date, NOW) == dt.timedelta(minutes=5)
    past = email.utils.format_datetime(NOW - dt.timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(past, NOW) == dt.timedelta(0)
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
    for status in (429, 503):
        outcome = outcome_for(status, {"retry-after": "7"}, "", max_retry_after=HOUR, now=NOW)
        assert outcome.retry_after == dt.timedelta(seconds=7)
    capped = outcome_for(429, {"retry-after": "86400"}, "", max_retry_after=HOUR, now=NOW)
    assert capped.retry_after == HOUR


def test_secret_decoding_limits() -> None:
    assert len(decode_secret(generate_secret())) == 32
    with pytest.raises(ValueError, match="bytes"):
        decode_secret("whsec_" + "A" * 100, min_bytes=24)
    with pytest.raises(pydantic.ValidationError):
        WebhookConfig(url="https://example.com", secret="whsec_")
