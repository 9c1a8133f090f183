"""NotifierContract certifies a notifier: the kit's and the core's own pass it, and deliberately
broken ones fail exactly the checks they break (run in a separate pytest with ``pytester``)."""

from __future__ import annotations

import json
import logging
import re
import textwrap
from collections.abc import Callable

import pytest

from aecflow.notifiers.log import LogNotifier, LogNotifierConfig
from aecflow.notify import Notifier
from aecflow.testing import NotifierContract, RecordingNotifier, RecordingNotifierConfig

pytest_plugins = ["pytester"]


class TestRecordingNotifier(NotifierContract):
    @pytest.fixture
    def notifier(self) -> RecordingNotifier:
        return RecordingNotifier()

    @pytest.fixture
    def received(self, notifier: RecordingNotifier) -> Callable[[], list[str]]:
        return lambda: [event.id for event in notifier.events]

    @pytest.fixture
    def received_payloads(self, notifier: RecordingNotifier) -> Callable[[], list[tuple]]:
        return lambda: [(e.id, json.loads(json.dumps(dict(e.payload)))) for e in notifier.events]

    @pytest.fixture
    def failing_notifier(self) -> Notifier:
        return RecordingNotifier(RecordingNotifierConfig(fail_times=1000))


class TestLogNotifier(NotifierContract):
    """The log is the log notifier's target: what it received is what was logged."""

    @pytest.fixture
    def notifier(self) -> Notifier:
        return LogNotifier(LogNotifierConfig())

    @pytest.fixture
    def received(self, caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
        caplog.set_level(logging.INFO, logger="aecflow.events")
        line = re.compile(r"\(event (\S+)\)$")
        return lambda: [
            match[1]
            for record in caplog.records
            if record.name == "aecflow.events" and (match := line.search(record.getMessage()))
        ]


BROKEN = '''
import json
import pytest
from aecflow.notify import DeliveryOutcome, DeliveryStatus, Notifier
from aecflow.testing import NotifierContract

OK = DeliveryOutcome(DeliveryStatus.DELIVERED)


class Target:
    """An in-memory destination: (event id, payload) of each delivery."""

    def __init__(self):
        self.got = []

    def ids(self):
        return [event_id for event_id, _ in self.got]


class Honest(Notifier):
    def __init__(self, target, down=False, refuses=False):
        self.target, self.down, self.refuses = target, down, refuses

    def send(self, event_id, payload):
        self.target.got.append((event_id, json.loads(json.dumps(payload))))

    async def deliver(self, events):
        if self.down:
            return {e.id: DeliveryOutcome(DeliveryStatus.RETRY, "refused") for e in events}
        if self.refuses:
            return {e.id: DeliveryOutcome(DeliveryStatus.REJECTED, "too big") for e in events}
        for e in events:
            self.send(e.id, dict(e.payload))
        return {e.id: OK for e in events}


class DropsTheLast(Honest):
    """Reports success for the last event of a batch, which it never sent."""

    async def deliver(self, events):
        if self.down or self.refuses:
            return await super().deliver(events)
        for e in events[:-1] if len(events) > 1 else events:
            self.send(e.id, dict(e.payload))
        return {e.id: OK for e in events}


class NewIdOnRetry(Honest):
    """Sends a repeated event under a new id (an attempt counter in the id)."""

    seen = ()

    async def deliver(self, events):
        if self.down or self.refuses:
            return await super().deliver(events)
        for e in events:
            self.send(e.id + "-again" if e.id in self.seen else e.id, dict(e.payload))
            self.seen = (*self.seen, e.id)
        return {e.id: OK for e in events}


class KeyedByPosition(Honest):
    """Keys outcomes by position in the batch, not by event id."""

    async def deliver(self, events):
        outcomes = await super().deliver(events)
        return {str(n): outcome for n, outcome in enumerate(outcomes.values())}


class ManglesText(Honest):
    """Sends the payload through Latin-1: what is not Latin-1 turns into question marks."""

    def send(self, event_id, payload):
        text = json.dumps(payload, ensure_ascii=False).encode("latin-1", "replace")
        self.target.got.append((event_id, json.loads(text.decode("latin-1"))))


class DeliveredWhenDown(Honest):
    """Claims delivery while its target is down."""

    async def deliver(self, events):
        if self.down:
            return {e.id: OK for e in events}
        return await super().deliver(events)


class RaisesWhenDown(Honest):
    async def deliver(self, events):
        if self.down:
            raise ConnectionError("connection refused")
        return await super().deliver(events)


class RetriesForever(Honest):
    """Treats a refusal that will never change as worth retrying."""

    async def deliver(self, events):
        if self.refuses:
            return {e.id: DeliveryOutcome(DeliveryStatus.RETRY, "too big") for e in events}
        return await super().deliver(events)


def contract_for(backend):
    class Contract(NotifierContract):
        @pytest.fixture
        def target(self):
            return Target()

        @pytest.fixture
        def notifier(self, target):
            return backend(target)

        @pytest.fixture
        def received(self, target):
            return target.ids

        @pytest.fixture
        def received_payloads(self, target):
            async def payloads():  # an async function is accepted too
                return list(target.got)

            return payloads

        @pytest.fixture
        def failing_notifier(self):
            return backend(Target(), down=True)

        @pytest.fixture
        def refusing_notifier(self):
            return backend(Target(), refuses=True)

    return Contract


TestHonest = contract_for(Honest)
TestDropsTheLast = contract_for(DropsTheLast)
TestNewIdOnRetry = contract_for(NewIdOnRetry)
TestKeyedByPosition = contract_for(KeyedByPosition)
TestManglesText = contract_for(ManglesText)
TestDeliveredWhenDown = contract_for(DeliveredWhenDown)
TestRaisesWhenDown = contract_for(RaisesWhenDown)
TestRetriesForever = contract_for(RetriesForever)


class TestWithoutOptionalFixtures(NotifierContract):
    @pytest.fixture
    def target(self):
        return Target()

    @pytest.fixture
    def notifier(self, target):
        return Honest(target)

    @pytest.fixture
    def received(self, target):
        return target.ids
'''

CONTRACT_TESTS = {
    "test_starts_and_closes_without_delivering",
    "test_a_batch_gets_one_outcome_per_event",
    "test_what_is_reported_delivered_arrived_once",
    "test_redelivery_carries_the_same_event_id",
    "test_the_payload_arrives_as_json_equal_to_the_events",
    "test_a_down_target_is_retried_per_event",
    "test_a_permanent_refusal_is_not_retried",
}
OPTIONAL = {
    "test_the_payload_arrives_as_json_equal_to_the_events",
    "test_a_down_target_is_retried_per_event",
    "test_a_permanent_refusal_is_not_retried",
}


def test_broken_notifiers_fail_exactly_the_checks_they_break(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=textwrap.dedent(BROKEN))
    # no ini file: pytest-asyncio in strict mode, as a plugin author may run it
    result = pytester.inline_run(
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    outcomes: dict[str, dict[str, set[str]]] = {}
    for report in result.getreports("pytest_runtest_logreport"):
        if report.when == "call" or report.outcome != "passed":
            cls, name = report.nodeid.split("::")[1:]
            outcome = outcomes.setdefault(cls, {"passed": set(), "failed": set(), "skipped": set()})
            outcome[report.outcome].add(name)
    failed = {cls: o["failed"] for cls, o in outcomes.items()}
    assert failed == {
        "TestHonest": set(),
        "TestDropsTheLast": {
            "test_what_is_reported_delivered_arrived_once",
            "test_the_payload_arrives_as_json_equal_to_the_events",
        },
        "TestNewIdOnRetry": {"test_redelivery_carries_the_same_event_id"},
        "TestKeyedByPosition": {
            "test_a_batch_gets_one_outcome_per_event",
            "test_what_is_reported_delivered_arrived_once",
            "test_redelivery_carries_the_same_event_id",
            "test_the_payload_arrives_as_json_equal_to_the_events",
            "test_a_down_target_is_retried_per_event",
            "test_a_permanent_refusal_is_not_retried",
        },
        "TestManglesText": {"test_the_payload_arrives_as_json_equal_to_the_events"},
        "TestDeliveredWhenDown": {"test_a_down_target_is_retried_per_event"},
        "TestRaisesWhenDown": {"test_a_down_target_is_retried_per_event"},
        "TestRetriesForever": {"test_a_permanent_refusal_is_not_retried"},
        "TestWithoutOptionalFixtures": set(),
    }
    assert outcomes["TestHonest"]["passed"] == CONTRACT_TESTS
    assert outcomes["TestWithoutOptionalFixtures"]["skipped"] == OPTIONAL
    assert outcomes["TestWithoutOptionalFixtures"]["passed"] == CONTRACT_TESTS - OPTIONAL
    raised = [r for r in result.getfailures() if "TestRaisesWhenDown" in r.nodeid]
    assert "deliver raised ConnectionError" in str(raised[0].longrepr)


def test_a_contract_without_its_notifier_says_what_is_missing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_empty="""
        from aecflow.testing import NotifierContract

        class TestNothing(NotifierContract):
            pass
        """
    )
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "-k",
        "batch_gets",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*NotifierContract needs a `notifier` fixture*"])
