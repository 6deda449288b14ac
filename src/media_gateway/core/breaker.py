"""The per-upstream circuit breaker of the outbound HTTP clients (DESIGN.md §6, "Resilience")."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["BreakerPermit", "BreakerState", "CircuitBreaker", "CircuitOpenError"]

# Named after the client module, so every outbound-HTTP record (retries and breaker transitions)
# stays under one logger.
logger = logging.getLogger("media_gateway.core.http")


class BreakerState(IntEnum):
    """Values double as the `mg_http_breaker_state` gauge reading."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitOpenError(Exception):
    """The upstream's breaker is open (or its single half-open trial is in flight): nothing was sent."""

    def __init__(self, upstream: str, retry_after: float = 0.0) -> None:
        super().__init__(f"circuit open for upstream {upstream!r}")
        self.upstream = upstream
        # Seconds until the breaker will admit a trial; 0 while a trial is already in flight.
        self.retry_after = retry_after


@dataclass(eq=False)
class BreakerPermit:
    """Admission to call the upstream; hand it back with exactly one outcome."""

    is_trial: bool
    settled: bool = False


class CircuitBreaker:
    """Consecutive-failure breaker for one upstream: closed → open → half-open → closed/open.

    Half-open is derived from the clock rather than set by a timer, so the state (and the gauge that
    reads it) is right even when no call arrives after the cool-down.
    """

    def __init__(
        self,
        upstream: str,
        *,
        failure_threshold: int,
        cooldown_sec: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown_sec < 0:
            raise ValueError("cooldown_sec must not be negative")
        self.upstream = upstream
        self.failure_threshold = failure_threshold
        self.cooldown_sec = cooldown_sec
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False
        # Apps may run on different threads of one process; the critical sections never await.
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state_locked()

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def acquire(self) -> BreakerPermit:
        """Admit a call or raise `CircuitOpenError` without touching the network."""
        with self._lock:
            state = self._state_locked()
            if state is BreakerState.CLOSED:
                return BreakerPermit(is_trial=False)
            if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                logger.info("circuit half-open, sending trial call", extra={"upstream": self.upstream})
                return BreakerPermit(is_trial=True)
            raise CircuitOpenError(self.upstream, retry_after=self._remaining_cooldown_locked())

    def record_success(self, permit: BreakerPermit) -> None:
        with self._lock:
            if not self._settle(permit):
                return
            if permit.is_trial:
                self._failures = 0
                self._opened_at = None
                self._trial_in_flight = False
                logger.info("circuit closed", extra={"upstream": self.upstream})
            elif self._opened_at is None:
                self._failures = 0

    def record_failure(self, permit: BreakerPermit) -> None:
        with self._lock:
            if not self._settle(permit):
                return
            if permit.is_trial:
                self._trial_in_flight = False
                self._open_locked()
            elif self._opened_at is None:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._open_locked()
            # A late failure from a call admitted before the breaker opened says nothing new, and
            # must not push the cool-down further out.

    def release(self, permit: BreakerPermit) -> None:
        """Give a permit back with no verdict (cancelled, or failed through our own fault), so a
        half-open breaker does not wait forever for a trial that will never report."""
        with self._lock:
            if self._settle(permit) and permit.is_trial:
                self._trial_in_flight = False

    @staticmethod
    def _settle(permit: BreakerPermit) -> bool:
        if permit.settled:
            return False
        permit.settled = True
        return True

    def _open_locked(self) -> None:
        self._opened_at = self._clock()
        logger.warning(
            "circuit opened",
            extra={"upstream": self.upstream, "failures": self._failures, "cooldown_sec": self.cooldown_sec},
        )

    def _state_locked(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._trial_in_flight or self._remaining_cooldown_locked() <= 0:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def _remaining_cooldown_locked(self) -> float:
        if self._opened_at is None or self._trial_in_flight:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown_sec - self._clock())
