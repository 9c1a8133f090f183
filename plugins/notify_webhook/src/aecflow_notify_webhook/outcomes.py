"""What an endpoint's answer means for the event: delivered, retried, rejected or disabled.

Follows the Standard Webhooks guidance: only 2xx is success, 3xx is a failure (the URL should
be updated rather than followed), 410 means the endpoint is gone, and ``Retry-After`` is
honoured. Other failures are retried by the core, because they are usually fixed on the
receiving side (a wrong secret answering 400/401, a route not deployed yet answering 404), and
the event is dead-lettered, not dropped, once the attempts run out. 413 is the exception: the
same bytes will never fit, so the event is dead-lettered at once, to be redelivered once the
receiver accepts larger bodies.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Mapping

from aecflow.notify import DeliveryOutcome, DeliveryStatus

#: Answers that will not change for the same body.
REJECT = frozenset({413})
ERROR_CHARS = 300


def outcome_for(
    status: int,
    headers: Mapping[str, str],
    snippet: str,
    *,
    max_retry_after: dt.timedelta,
    now: dt.datetime | None = None,
) -> DeliveryOutcome:
    """The outcome of one HTTP answer; ``snippet`` is the start of its body (for the error)."""
    if 200 <= status < 300:
        return DeliveryOutcome(DeliveryStatus.DELIVERED)
    detail = " ".join(snippet.split())[:ERROR_CHARS]
    error = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status == 410:
        return DeliveryOutcome(DeliveryStatus.DISABLED, f"{error} (endpoint gone; disabled)")
    if status in REJECT:
        return DeliveryOutcome(DeliveryStatus.REJECTED, error)
    if 300 <= status < 400:
        where = headers.get("location") or "nowhere"
        error = f"HTTP {status} redirect to {where} not followed; update the webhook URL"
    wait = parse_retry_after(headers.get("retry-after"), now or dt.datetime.now(dt.UTC))
    if wait is not None:
        wait = min(wait, max_retry_after)
    return DeliveryOutcome(DeliveryStatus.RETRY, error, wait)


def parse_retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    """``Retry-After`` as delay-seconds or an HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return dt.timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse as naive UTC
        when = when.replace(tzinfo=dt.UTC)
    return max(dt.timedelta(0), when - now)
