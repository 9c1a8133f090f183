"""``NotifierContract``: what the core's outbox dispatcher relies on from every notifier.

Subclass it in your plugin's tests and give it fixtures; each test of the contract then runs
against your backend::

    class TestMyNotifier(NotifierContract):
        @pytest.fixture
        def notifier(self, target) -> Notifier:        # delivers to a real target
            return MyNotifier(MyConfig(url=target.url))

        @pytest.fixture
        def received(self, target) -> Callable[[], list[str]]:
            return target.event_ids                    # ids received so far, repeats kept

        @pytest.fixture
        def failing_notifier(self, tmp_path) -> Notifier:   # optional
            return MyNotifier(MyConfig(url="http://127.0.0.1:9"))  # a target that is down

The notifiers are handed over **not started**: the contract calls ``start()``, ``deliver()``
and ``close()`` as the core does. Optional fixtures skip their tests when not overridden:
``failing_notifier`` (its target is down or refuses for a while: every event must come back
RETRY), ``refusing_notifier`` (its target refuses in a way the backend deems permanent:
REJECTED or DISABLED), ``received_payloads`` (``(event id, payload)`` pairs as the target got
them, to check the payload arrives as JSON equal to the event's). ``received`` (and
``received_payloads``) may also be async functions. The checks read the target after
``close()``, so a backend that flushes on close is judged by what really arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import pytest

from aecflow.ids import uuid7
from aecflow.notify import DeliveryOutcome, DeliveryStatus, Event, Notifier

#: ``received``: the event ids the target has received so far, in any order, repeats kept.
Received = Callable[[], list[str] | Awaitable[list[str]]]
#: ``received_payloads``: ``(event id, payload)`` for each delivery the target received.
ReceivedPayloads = Callable[[], list[tuple[str, Any]] | Awaitable[list[tuple[str, Any]]]]

PERMANENT = frozenset({DeliveryStatus.REJECTED, DeliveryStatus.DISABLED})


def contract_event(label: str = "a", event_type: str = "file.stored") -> Event:
    """An event shaped like the core's (``payload`` is the versioned JSON body, its ``id``
    the event's id), with text and numbers that a careless encoder would change."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    event_id, file_id = uuid7(), uuid7()
    payload = {
        "id": event_id,
        "type": event_type,
        "version": 1,
        "project": "contract",
        "occurred_at": now.isoformat().replace("+00:00", "Z"),
        "file": {
            "id": file_id,
            "project": "contract",
            "filename": f"Bürogebäude {label} \u2013 Ebene 2 \u2713.ifc",
            "size": 1234567,
            "sha256": "0" * 64,
            "metadata": {"discipline": "structure", "levels": [1, 2.5, None, True]},
        },
    }
    return Event(event_id, event_type, now, "contract", file_id, payload)


async def _call(source: Callable[[], Any]) -> list[Any]:
    answer = source()
    if inspect.isawaitable(answer):
        answer = await answer
    return list(answer)


class NotifierContract:
    """The contract every notifier passes; see the module docstring for the fixtures."""

    #: Events per batch in the batch tests (capped by the notifier's ``max_batch``): more than
    #: one SQS SendMessageBatch call takes, so backends that split a batch show it.
    batch_size: ClassVar[int] = 12
    #: The event type the contract sends; the notifiers must want it.
    event_type: ClassVar[str] = "file.stored"
    #: A ``deliver`` call that takes longer fails the test instead of hanging the run.
    deliver_timeout_s: ClassVar[float] = 60.0

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    # -- the fixtures a subclass gives ------------------------------------------------------

    @pytest.fixture
    def notifier(self) -> Notifier:
        """A notifier, not started, that delivers to a real target."""
        pytest.fail("NotifierContract needs a `notifier` fixture: your notifier, not started")

    @pytest.fixture
    def received(self) -> Received:
        """A function answering the event ids ``notifier``'s target has received so far."""
        pytest.fail("NotifierContract needs a `received` fixture: the target's event ids")

    @pytest.fixture
    def failing_notifier(self) -> Notifier:
        """The same backend, not started, pointed at a target that is down or refuses."""
        pytest.skip("no `failing_notifier` fixture: the retry classification is not checked")

    @pytest.fixture
    def refusing_notifier(self) -> Notifier:
        """The same backend, not started, at a target whose refusal it deems permanent."""
        pytest.skip("no `refusing_notifier` fixture: permanent refusals are not checked")

    @pytest.fixture
    def received_payloads(self) -> ReceivedPayloads:
        """A function answering ``(event id, payload)`` of each delivery the target got."""
        pytest.skip("no `received_payloads` fixture: payloads are not compared")

    # -- helpers ----------------------------------------------------------------------------

    def events(self, notifier: Notifier, count: int | None = None) -> list[Event]:
        """``count`` (default: ``batch_size``) fresh events, at most ``max_batch`` of them."""
        assert notifier.wants(self.event_type), (
            f"the notifier does not want {self.event_type!r} events; configure it to (or set "
            "the contract's `event_type`)"
        )
        wanted = self.batch_size if count is None else count
        count = min(wanted, notifier.max_batch)
        return [contract_event(str(n), self.event_type) for n in range(count)]

    @contextlib.asynccontextmanager
    async def running(self, notifier: Notifier) -> AsyncIterator[Notifier]:
        """``start()`` and, whatever happens, ``close()``: a flow's lifetime in small."""
        await notifier.start()
        try:
            yield notifier
        finally:
            await notifier.close()

    async def deliver(
        self, notifier: Notifier, events: Sequence[Event]
    ) -> Mapping[str, DeliveryOutcome]:
        """One ``deliver`` call; raising fails the test (the contract is to report)."""
        try:
            async with asyncio.timeout(self.deliver_timeout_s):
                outcomes = await notifier.deliver(events)
        except TimeoutError:
            pytest.fail(f"deliver did not return within {self.deliver_timeout_s:g}s")
        except Exception as exc:
            pytest.fail(
                f"deliver raised {type(exc).__name__}: {exc}; report an outcome per event "
                "instead (the core then has no per-event error to record)"
            )
        return outcomes

    @staticmethod
    def assert_one_outcome_per_event(
        outcomes: Mapping[str, DeliveryOutcome], events: Sequence[Event]
    ) -> None:
        sent = {event.id for event in events}
        assert isinstance(outcomes, Mapping), f"deliver returned {type(outcomes).__name__}"
        unknown = sorted(set(outcomes) - sent)
        missing = sorted(sent - set(outcomes))
        assert not unknown, f"outcomes for ids never sent (keys must be event ids): {unknown}"
        assert not missing, f"no outcome for events (the core retries them blindly): {missing}"
        wrong = {k: v for k, v in outcomes.items() if not isinstance(v, DeliveryOutcome)}
        assert not wrong, f"outcomes that are not DeliveryOutcome: {wrong}"

    # -- the contract -----------------------------------------------------------------------

    async def test_starts_and_closes_without_delivering(self, notifier: Notifier) -> None:
        assert isinstance(notifier, Notifier), "the `notifier` fixture must return a Notifier"
        assert isinstance(notifier.max_batch, int) and notifier.max_batch >= 1, (
            f"max_batch must be a positive int, not {notifier.max_batch!r}"
        )
        async with self.running(notifier):
            pass

    async def test_a_batch_gets_one_outcome_per_event(self, notifier: Notifier) -> None:
        events = self.events(notifier)
        async with self.running(notifier):
            outcomes = await self.deliver(notifier, events)
        self.assert_one_outcome_per_event(outcomes, events)
        failed = {k: o for k, o in outcomes.items() if o.status is not DeliveryStatus.DELIVERED}
        assert not failed, f"a reachable target, yet not delivered: {failed}"

    async def test_what_is_reported_delivered_arrived_once(
        self, notifier: Notifier, received: Received
    ) -> None:
        before = Counter(await _call(received))
        events = self.events(notifier)
        async with self.running(notifier):
            outcomes = await self.deliver(notifier, events)
        arrived = Counter(await _call(received)) - before
        reported = sorted(k for k, o in outcomes.items() if o.status is DeliveryStatus.DELIVERED)
        assert sorted(arrived.elements()) == reported, (
            "the target must have received each event reported delivered, once, and nothing "
            f"else: reported {reported}, received {sorted(arrived.elements())}"
        )

    async def test_redelivery_carries_the_same_event_id(
        self, notifier: Notifier, received: Received
    ) -> None:
        """The core delivers at least once: an event whose acknowledgement was lost is sent
        again, and its stable id is what lets the receiver drop the repeat."""
        before = Counter(await _call(received))
        [event] = self.events(notifier, 1)
        async with self.running(notifier):
            first = await self.deliver(notifier, [event])
            again = await self.deliver(notifier, [event])
        for outcomes in (first, again):
            self.assert_one_outcome_per_event(outcomes, [event])
            assert outcomes[event.id].status is DeliveryStatus.DELIVERED, outcomes
        arrived = Counter(await _call(received)) - before
        assert set(arrived) == {event.id}, (
            f"both deliveries must carry the event's id {event.id}; the target got {dict(arrived)}"
        )

    async def test_the_payload_arrives_as_json_equal_to_the_events(
        self, notifier: Notifier, received_payloads: ReceivedPayloads
    ) -> None:
        before = len(await _call(received_payloads))
        events = self.events(notifier, 2)
        async with self.running(notifier):
            outcomes = await self.deliver(notifier, events)
        self.assert_one_outcome_per_event(outcomes, events)
        got: dict[str, list[Any]] = {}
        for event_id, payload in (await _call(received_payloads))[before:]:
            got.setdefault(event_id, []).append(payload)
        for event in events:
            expected = json.loads(json.dumps(dict(event.payload)))
            assert got.get(event.id) == [expected], (
                f"event {event.id}: the target got {got.get(event.id)}, expected [{expected}]"
            )

    async def test_a_down_target_is_retried_per_event(self, failing_notifier: Notifier) -> None:
        events = self.events(failing_notifier, 3)
        async with self.running(failing_notifier):
            outcomes = await self.deliver(failing_notifier, events)
        self.assert_one_outcome_per_event(outcomes, events)
        wrong = {k: o for k, o in outcomes.items() if o.status is not DeliveryStatus.RETRY}
        assert not wrong, f"a target that is down must give RETRY (the core retries): {wrong}"
        assert all(o.error for o in outcomes.values()), f"say why, in `error`: {outcomes}"

    async def test_a_permanent_refusal_is_not_retried(self, refusing_notifier: Notifier) -> None:
        events = self.events(refusing_notifier, 3)
        async with self.running(refusing_notifier):
            outcomes = await self.deliver(refusing_notifier, events)
        self.assert_one_outcome_per_event(outcomes, events)
        wrong = {k: o for k, o in outcomes.items() if o.status not in PERMANENT}
        assert not wrong, f"a permanent refusal must give REJECTED or DISABLED: {wrong}"
        assert all(o.error for o in outcomes.values()), f"say why, in `error`: {outcomes}"
