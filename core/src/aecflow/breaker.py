"""Per-dependency circuit breaker: stop hammering a dependency that is down, probe it now and then.

One breaker guards one dependency (a storage backend, a notifier destination). It counts only
*health* failures, never cancellation, and lets exactly one probe through after the cool-down.
It is in-house because the maintained libraries each miss one of those (see DESIGN.md,
"Resilience"). Not thread-safe: it is meant for one event loop, where it is correct under
concurrency because no method awaits.

``admitted()`` is the one way to call through a breaker:

    with admitted(breaker):  # raises CircuitOpen before the body runs when the circuit is open
        await backend.put(key, data)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any

from aecflow.errors import AecflowError, StorageUnavailable

log = logging.getLogger(__name__)


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(AecflowError):
    """The dependency is considered down; callers should postpone, not fail, the work."""

    code = "circuit_open"
    http_status = 503
    exit_code = 69  # EX_UNAVAILABLE

    def __init__(self, breaker: str, retry_after_s: float) -> None:
        retry_after_s = max(0.0, retry_after_s)
        super().__init__(f"{breaker} is unavailable (circuit open); retry in {retry_after_s:.1f}s")
        self.breaker = breaker
        self.retry_after_s = retry_after_s


def is_health_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the dependency is unhealthy, as opposed to refusing this request.

    Connection errors, timeouts, OS errors, ``StorageUnavailable`` and HTTP 5xx/429 count.
    Anything else that is an ``Exception`` (a 404, ``InvalidInput``) means the dependency
    answered, so the breaker treats it as a success. Cancellation and other non-``Exception``
    ``BaseException``s say nothing about the dependency and never count.
    """
    if not isinstance(exc, Exception):
        return False
    if isinstance(exc, OSError | StorageUnavailable):  # includes ConnectionError, TimeoutError
        return True
    status = _http_status(exc)
    return status is not None and (status >= 500 or status == 429)


def _http_status(exc: Exception) -> int | None:
    """The HTTP status an exception carries: on itself, or on ``.response`` (httpx, requests)."""
    for holder in (exc, getattr(exc, "response", None)):
        for attr in ("status_code", "status"):
            status = getattr(holder, attr, None)
            if isinstance(status, int) and not isinstance(status, bool):
                return status
    return None


_NO_TASK = object()  # the caller when acquire() runs outside an event loop


def _caller() -> object:
    """Who is calling: the probe's outcome only counts when its own task reports it."""
    try:
        return asyncio.current_task() or _NO_TASK
    except RuntimeError:
        return _NO_TASK


class CircuitBreaker:
    """Refuse calls while a dependency is down, then admit one probe after ``reset_timeout_s``.

    Outcomes decide the state only while closed, and in half-open only the probe's own outcome
    counts: a slow call admitted before the circuit opened must not close or reopen it.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        is_failure: Callable[[BaseException], bool] = is_health_failure,
        on_transition: Callable[[str, State, State], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if reset_timeout_s <= 0:
            raise ValueError(f"reset_timeout_s must be > 0, got {reset_timeout_s}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock  # must be monotonic: wall-clock jumps would open or close circuits
        self._is_failure = is_failure
        self._on_transition = on_transition
        self._state = State.CLOSED
        self._failures = 0
        self._opened_count = 0
        self._probe_at = 0.0  # clock time from which an open circuit admits a probe
        self._prober: object | None = None  # the task holding the half-open probe slot

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._state}>"

    @property
    def state(self) -> State:
        return self._state

    # -- asking ---------------------------------------------------------------------------

    def retry_after(self) -> float | None:
        """Seconds until a call would be admitted, or ``None`` if one would be admitted now.

        A peek for callers that postpone work (the outbox) instead of spending an attempt; it
        does not take the probe slot. While a probe is in flight this is ``reset_timeout_s``:
        the probe may fail and reopen the circuit, and guessing lower would make callers spin.
        """
        wait = self._wait()
        return None if wait is None or wait <= 0 else wait

    def allow(self) -> bool:
        """Whether a call would be admitted now (``retry_after() is None``)."""
        return self.retry_after() is None

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state for ``/ready`` and metrics."""
        return {
            "name": self.name,
            "state": self._state.value,
            "consecutive_failures": self._failures,
            "failure_threshold": self.failure_threshold,
            "retry_after_s": self._wait(),
            "opened_count": self._opened_count,
        }

    # -- calling --------------------------------------------------------------------------

    # Only ``admitted()`` calls these: every admitted call must end in exactly one verdict, or
    # a probe would hold its slot until its task ends.

    def is_failure(self, exc: BaseException) -> bool:
        """Whether ``exc`` counts against the dependency (never for cancellation)."""
        return isinstance(exc, Exception) and self._is_failure(exc)

    def _acquire(self) -> None:
        """Admit one call or raise ``CircuitOpen``; the first call after the cool-down probes."""
        self._reap_probe()
        if self._state is State.CLOSED:
            return
        if self._state is State.HALF_OPEN:
            raise CircuitOpen(self.name, self.reset_timeout_s)
        wait = self._probe_at - self._clock()
        if wait > 0:
            raise CircuitOpen(self.name, wait)
        self._prober = _caller()
        self._transition(State.HALF_OPEN)

    def _record_success(self) -> None:
        """The dependency answered, even with a refusal: reset the count, close after a probe."""
        if self._state is State.CLOSED:
            self._failures = 0
        elif self._is_probe():
            self._prober = None
            self._failures = 0
            self._transition(State.CLOSED)

    def _record_failure(self, exc: BaseException | None = None) -> None:
        """The dependency is unhealthy; the caller decided (e.g. a notifier got a 503 response).

        Cancellation is still never a failure: a non-``Exception`` ``exc`` only releases.
        """
        if exc is not None and not isinstance(exc, Exception):
            self._release()
        elif self._state is State.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()
        elif self._is_probe():
            self._failures += 1
            self._open()

    def _release(self) -> None:
        """The call ended without a verdict (cancelled): count nothing, free the probe slot."""
        if self._is_probe():
            self._release_probe()

    # -- internals ------------------------------------------------------------------------

    def _wait(self) -> float | None:
        """``None`` when closed, else seconds (>= 0) until a probe is admitted."""
        self._reap_probe()
        if self._state is State.CLOSED:
            return None
        if self._state is State.HALF_OPEN:
            return self.reset_timeout_s
        return max(0.0, self._probe_at - self._clock())

    def _is_probe(self) -> bool:
        return self._state is State.HALF_OPEN and self._prober is _caller()

    def _open(self) -> None:
        self._prober = None
        self._probe_at = self._clock() + self.reset_timeout_s
        self._opened_count += 1
        self._transition(State.OPEN)

    def _release_probe(self) -> None:
        # Back to open with the cool-down already over, so the next call probes at once.
        self._prober = None
        self._transition(State.OPEN)

    def _reap_probe(self) -> None:
        """Free the slot of a probe whose task ended without reporting, rather than stay stuck."""
        prober = self._prober
        if self._state is State.HALF_OPEN and isinstance(prober, asyncio.Task) and prober.done():
            log.warning("circuit %s: probe ended without an outcome; releasing it", self.name)
            self._release_probe()

    def _transition(self, new: State) -> None:
        old, self._state = self._state, new
        level = logging.WARNING if new is State.OPEN else logging.INFO
        log.log(level, "circuit %s: %s -> %s", self.name, old, new)
        if self._on_transition is not None:
            try:
                self._on_transition(self.name, old, new)
            except Exception:
                log.exception("circuit %s: on_transition callback failed", self.name)


class Admission:
    """One call admitted by ``admitted()``; its body may give a verdict no exception carries."""

    __slots__ = ("unhealthy",)

    def __init__(self) -> None:
        self.unhealthy = False

    def failed(self) -> None:
        """The dependency answered but is unhealthy (a notifier's 503 response, say)."""
        self.unhealthy = True


def settle(breaker: CircuitBreaker, exc: BaseException, *, blame_caller: bool) -> None:
    """Tell ``breaker`` how a call it admitted ended with ``exc``, judged by its ``is_failure``.

    Cancellation and failures the caller caused (a client gone, a size limit) say nothing
    about the dependency's health: the admission is released without a verdict.
    """
    if blame_caller or not isinstance(exc, Exception):
        breaker._release()
    elif breaker.is_failure(exc):
        breaker._record_failure(exc)
    else:
        breaker._record_success()


@contextlib.contextmanager
def admitted(
    breaker: CircuitBreaker, *, caller_failed: Callable[[], bool] = lambda: False
) -> Iterator[Admission]:
    """Run one call to the dependency through ``breaker`` (raises at once while it is open).

    ``caller_failed`` says, when the body raises, that the caller caused it (no verdict).
    """
    breaker._acquire()
    call = Admission()
    try:
        yield call
    except BaseException as exc:
        if call.unhealthy and isinstance(exc, Exception) and not caller_failed():
            breaker._record_failure(exc)
        else:
            settle(breaker, exc, blame_caller=caller_failed())
        raise
    if call.unhealthy:
        breaker._record_failure()
    else:
        breaker._record_success()
