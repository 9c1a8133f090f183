"""Circuit breaker behaviour, driven by a fake clock so no assertion depends on timing."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from aecflow.breaker import CircuitBreaker, CircuitOpen, State, admitted, is_health_failure
from aecflow.errors import (
    AecflowError,
    InvalidInput,
    NotFound,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class HTTPError(Exception):
    def __init__(self, *, status_code: int | None = None, status: int | None = None) -> None:
        super().__init__("http error")
        if status_code is not None:
            self.status_code = status_code
        if status is not None:
            self.status = status


class Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class ResponseError(Exception):
    """Like httpx.HTTPStatusError: the status lives on ``.response``."""

    def __init__(self, status_code: int) -> None:
        super().__init__("response error")
        self.response = Response(status_code)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def transitions() -> list[tuple[str, State, State]]:
    return []


@pytest.fixture
def breaker(clock: FakeClock, transitions: list[tuple[str, State, State]]) -> CircuitBreaker:
    return CircuitBreaker(
        "s3",
        failure_threshold=3,
        reset_timeout_s=30.0,
        clock=clock,
        on_transition=lambda *args: transitions.append(args),
    )


async def fail(breaker: CircuitBreaker, exc: BaseException | None = None) -> None:
    with pytest.raises(type(exc) if exc else ConnectionError), admitted(breaker):
        raise exc or ConnectionError("refused")


async def succeed(breaker: CircuitBreaker) -> None:
    with admitted(breaker):
        pass


async def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        await fail(breaker)
    assert breaker.state is State.OPEN


class Held:
    """A call held inside ``with admitted(breaker)`` until the test lets it finish."""

    def __init__(self, breaker: CircuitBreaker, exc: BaseException | None = None) -> None:
        self.entered = asyncio.Event()
        self.go = asyncio.Event()
        self.task = asyncio.create_task(self._run(breaker, exc))

    async def _run(self, breaker: CircuitBreaker, exc: BaseException | None) -> None:
        with admitted(breaker):
            self.entered.set()
            await self.go.wait()
            if exc is not None:
                raise exc

    async def start(self) -> Held:
        entered = asyncio.create_task(self.entered.wait())
        await asyncio.wait({entered, self.task}, return_when=asyncio.FIRST_COMPLETED)
        entered.cancel()
        if self.task.done():
            self.task.result()  # it never entered: surface why instead of hanging
        return self

    async def finish(self) -> None:
        self.go.set()
        await self.task


# -- opening and refusing ---------------------------------------------------------------------


async def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    await fail(breaker)
    await fail(breaker)
    assert breaker.state is State.CLOSED
    assert breaker.snapshot()["consecutive_failures"] == 2

    await fail(breaker)
    assert breaker.state is State.OPEN
    assert breaker.snapshot()["opened_count"] == 1


async def test_success_resets_the_consecutive_count(breaker: CircuitBreaker) -> None:
    await fail(breaker)
    await fail(breaker)
    await succeed(breaker)
    await fail(breaker)
    await fail(breaker)
    assert breaker.state is State.CLOSED
    assert breaker.snapshot()["consecutive_failures"] == 2


async def test_refuses_while_open_without_running_the_body(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    await open_breaker(breaker)
    clock.advance(10)
    ran = False
    with pytest.raises(CircuitOpen) as info, admitted(breaker):
        ran = True
    assert not ran
    assert info.value.breaker == "s3"
    assert info.value.retry_after_s == pytest.approx(20.0)


def test_circuit_open_is_an_actionable_error() -> None:
    err = CircuitOpen("smtp", 12.5)
    assert isinstance(err, AecflowError)
    assert (err.code, err.http_status, err.exit_code) == ("circuit_open", 503, 69)
    assert "smtp" in err.message
    assert CircuitOpen("smtp", -1.0).retry_after_s == 0.0


async def test_failures_while_open_change_nothing(breaker: CircuitBreaker) -> None:
    slow = await Held(breaker, ConnectionError("late")).start()  # admitted while closed
    await open_breaker(breaker)
    with pytest.raises(ConnectionError):
        await slow.finish()
    snap = breaker.snapshot()
    assert (snap["state"], snap["consecutive_failures"], snap["opened_count"]) == ("open", 3, 1)


# -- half-open probe --------------------------------------------------------------------------


async def test_only_one_probe_under_concurrent_callers(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    await open_breaker(breaker)
    clock.advance(30)
    probe = await Held(breaker).start()
    assert breaker.state is State.HALF_OPEN

    bodies_run = 0

    async def other() -> None:
        nonlocal bodies_run
        with admitted(breaker):
            bodies_run += 1

    results = await asyncio.gather(*(other() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, CircuitOpen) for r in results)
    assert bodies_run == 0

    await probe.finish()
    assert breaker.state is State.CLOSED
    await asyncio.gather(*(other() for _ in range(5)))
    assert bodies_run == 5


async def test_probe_success_closes_and_resets_counts(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    await open_breaker(breaker)
    clock.advance(30)
    await succeed(breaker)
    assert breaker.state is State.CLOSED
    assert breaker.snapshot()["consecutive_failures"] == 0
    # A fresh run of failures is needed to open again.
    await fail(breaker)
    await fail(breaker)
    assert breaker.state is State.CLOSED


async def test_probe_failure_reopens_with_a_fresh_timeout(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    await open_breaker(breaker)
    clock.advance(30)
    probe = await Held(breaker, TimeoutError()).start()
    clock.advance(7)  # the probe itself takes a while
    with pytest.raises(TimeoutError):
        await probe.finish()

    assert breaker.state is State.OPEN
    assert breaker.retry_after() == pytest.approx(30.0)  # from the probe's failure, not before
    assert breaker.snapshot()["opened_count"] == 2
    clock.advance(29.5)
    with pytest.raises(CircuitOpen), admitted(breaker):
        pass
    clock.advance(0.5)
    await succeed(breaker)
    assert breaker.state is State.CLOSED


async def test_stale_outcomes_do_not_decide_the_probe(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    slow_ok = await Held(breaker).start()  # admitted while closed
    slow_bad = await Held(breaker, ConnectionError()).start()
    await open_breaker(breaker)
    clock.advance(30)
    probe = await Held(breaker, ConnectionError()).start()

    await slow_ok.finish()
    assert breaker.state is State.HALF_OPEN
    with pytest.raises(ConnectionError):
        await slow_bad.finish()
    assert breaker.state is State.HALF_OPEN

    with pytest.raises(ConnectionError):
        await probe.finish()
    assert breaker.state is State.OPEN


async def test_probe_whose_task_ends_without_an_outcome_is_released(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    await open_breaker(breaker)
    clock.advance(30)

    async def forgetful() -> None:
        admitted(breaker).__enter__()  # and never leaves, so records nothing

    await asyncio.create_task(forgetful())
    await succeed(breaker)  # admitted as the new probe instead of refused forever
    assert breaker.state is State.CLOSED

    await open_breaker(breaker)
    clock.advance(30)
    await asyncio.create_task(forgetful())
    assert breaker.retry_after() is None


# -- what counts ------------------------------------------------------------------------------


async def test_cancellation_never_counts(breaker: CircuitBreaker) -> None:
    await fail(breaker)
    for _ in range(5):
        call = await Held(breaker).start()
        call.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call.task
    assert breaker.state is State.CLOSED
    assert breaker.snapshot()["consecutive_failures"] == 1  # neither counted nor reset


async def test_keyboard_interrupt_never_counts(breaker: CircuitBreaker) -> None:
    await fail(breaker)
    for _ in range(5):
        with pytest.raises(KeyboardInterrupt), admitted(breaker):
            raise KeyboardInterrupt
    assert breaker.snapshot()["consecutive_failures"] == 1


async def test_cancelled_probe_releases_the_slot(
    breaker: CircuitBreaker, clock: FakeClock, transitions: list[tuple[str, State, State]]
) -> None:
    await open_breaker(breaker)
    clock.advance(30)
    probe = await Held(breaker).start()
    probe.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe.task

    assert breaker.state is State.OPEN
    assert breaker.retry_after() is None  # the next call may probe at once
    snap = breaker.snapshot()
    assert (snap["consecutive_failures"], snap["opened_count"]) == (3, 1)
    assert transitions[-1] == ("s3", State.HALF_OPEN, State.OPEN)

    await succeed(breaker)
    assert breaker.state is State.CLOSED


async def test_non_health_errors_count_as_the_dependency_answering(
    breaker: CircuitBreaker,
) -> None:
    for exc in (InvalidInput("bad"), NotFound("gone"), ValueError("x"), HTTPError(status=404)):
        await fail(breaker, exc)
        await fail(breaker, exc)
    assert breaker.state is State.CLOSED

    await fail(breaker)
    await fail(breaker)
    await fail(breaker, InvalidInput("bad"))  # resets, like a success
    await fail(breaker)
    assert breaker.snapshot()["consecutive_failures"] == 1


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_http_5xx_and_429_count(breaker: CircuitBreaker, status: int) -> None:
    for _ in range(3):
        await fail(breaker, HTTPError(status_code=status))
    assert breaker.state is State.OPEN


async def test_custom_is_failure(clock: FakeClock) -> None:
    breaker = CircuitBreaker("x", failure_threshold=1, clock=clock, is_failure=lambda e: True)
    await fail(breaker, ValueError())
    assert breaker.state is State.OPEN


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionError(), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (OSError(), True),
        (StorageUnavailable("down"), True),
        (HTTPError(status_code=500), True),
        (HTTPError(status=503), True),
        (HTTPError(status_code=429), True),
        (ResponseError(502), True),
        (HTTPError(status_code=404), False),
        (HTTPError(status=400), False),
        (ResponseError(404), False),
        (StorageError("mapped"), False),
        (ObjectNotFound("missing"), False),
        (InvalidInput("bad"), False),
        (ValueError(), False),
        (asyncio.CancelledError(), False),
        (KeyboardInterrupt(), False),
        (SystemExit(), False),
    ],
    ids=repr,
)
def test_is_health_failure(exc: BaseException, expected: bool) -> None:
    assert is_health_failure(exc) is expected


# -- verdicts given by the body ---------------------------------------------------------------


async def test_a_failed_call_without_an_exception_counts(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        with admitted(breaker) as call:
            call.failed()  # e.g. a notifier got a 503 response, not an exception
    with pytest.raises(CircuitOpen), admitted(breaker):
        pass

    clock.advance(30)
    with admitted(breaker), pytest.raises(CircuitOpen), admitted(breaker):  # probe, then refused
        pass
    assert breaker.state is State.CLOSED


async def test_caller_failures_only_release(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(5):
        with pytest.raises(ConnectionError), admitted(breaker, caller_failed=lambda: True):
            raise ConnectionError("the client went away")
    assert breaker.snapshot()["consecutive_failures"] == 0

    await open_breaker(breaker)
    clock.advance(30)
    with pytest.raises(ConnectionError), admitted(breaker, caller_failed=lambda: True):
        raise ConnectionError("the client went away")
    assert breaker.state is State.OPEN
    assert breaker.allow()


# -- observing --------------------------------------------------------------------------------


async def test_retry_after_and_allow(breaker: CircuitBreaker, clock: FakeClock) -> None:
    assert breaker.retry_after() is None
    assert breaker.allow()
    await open_breaker(breaker)
    assert breaker.retry_after() == pytest.approx(30.0)
    clock.advance(12)
    assert breaker.retry_after() == pytest.approx(18.0)
    assert not breaker.allow()
    clock.advance(18)
    assert breaker.retry_after() is None  # a probe would be admitted
    assert breaker.state is State.OPEN  # peeking does not take the probe slot

    probe = await Held(breaker).start()
    assert breaker.retry_after() == pytest.approx(30.0)  # probe in flight: assume the worst
    await probe.finish()
    assert breaker.retry_after() is None


async def test_snapshot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    assert breaker.snapshot() == {
        "name": "s3",
        "state": "closed",
        "consecutive_failures": 0,
        "failure_threshold": 3,
        "retry_after_s": None,
        "opened_count": 0,
    }
    await open_breaker(breaker)
    clock.advance(5)
    snap = breaker.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert snap["state"] == "open"
    assert snap["consecutive_failures"] == 3
    assert snap["retry_after_s"] == pytest.approx(25.0)
    assert snap["opened_count"] == 1
    clock.advance(25)
    assert breaker.snapshot()["retry_after_s"] == 0.0


async def test_transition_callback_order(
    breaker: CircuitBreaker, clock: FakeClock, transitions: list[tuple[str, State, State]]
) -> None:
    await open_breaker(breaker)
    clock.advance(30)
    await fail(breaker)
    clock.advance(30)
    await succeed(breaker)
    assert transitions == [
        ("s3", State.CLOSED, State.OPEN),
        ("s3", State.OPEN, State.HALF_OPEN),
        ("s3", State.HALF_OPEN, State.OPEN),
        ("s3", State.OPEN, State.HALF_OPEN),
        ("s3", State.HALF_OPEN, State.CLOSED),
    ]


async def test_raising_callback_is_logged_and_swallowed(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(name: str, old: State, new: State) -> None:
        raise RuntimeError("callback bug")

    breaker = CircuitBreaker("smtp", failure_threshold=1, clock=clock, on_transition=boom)
    with caplog.at_level(logging.ERROR, logger="aecflow.breaker"):
        await fail(breaker)
    assert breaker.state is State.OPEN
    assert any("callback bug" in (r.exc_text or "") for r in caplog.records)

    clock.advance(30)
    await succeed(breaker)
    assert breaker.state is State.CLOSED


@pytest.mark.parametrize(
    "kwargs", [{"failure_threshold": 0}, {"reset_timeout_s": 0}, {"reset_timeout_s": -1}]
)
def test_rejects_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", **kwargs)


# -- admitted() honours is_failure ------------------------------------------------------------


async def test_admitted_honours_a_custom_is_failure(clock: FakeClock) -> None:
    only_key_errors = CircuitBreaker(
        "x", failure_threshold=1, clock=clock, is_failure=lambda e: isinstance(e, KeyError)
    )
    with pytest.raises(ConnectionError), admitted(only_key_errors):
        raise ConnectionError("not a failure for this dependency")
    assert only_key_errors.state is State.CLOSED
    with pytest.raises(KeyError), admitted(only_key_errors):
        raise KeyError("a failure for this one")
    assert only_key_errors.state is State.OPEN
