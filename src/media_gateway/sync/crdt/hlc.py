"""Hybrid logical clock: 48-bit wall milliseconds, a 16-bit counter and a node id for tie-breaks.

Encoded as `<12 hex digits ms>-<4 hex digits counter>-<node>`, lowercase, fixed width, so that the
byte order of two encodings (`COLLATE "C"` in PostgreSQL) is the order of the timestamps.

Drift: a remote timestamp more than `max_drift_ms` (60 s) ahead of the local wall clock is never
taken into the clock. `update` raises `ClockDriftError`; `receive` logs it and *clamps*: the remote
event is re-stamped with the local clock's current time (keeping its node id), so one device with a
wrong clock cannot push every other device's writes into the past.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MAX_MILLIS = (1 << 48) - 1
MAX_COUNTER = (1 << 16) - 1
DEFAULT_MAX_DRIFT_MS = 60_000
_ENCODED = re.compile(r"([0-9a-f]{12})-([0-9a-f]{4})-([\x21-\x7e]{1,128})")


@functools.lru_cache(maxsize=4096)
def _valid_node(node: str) -> bool:
    return _ENCODED.fullmatch(f"{0:012x}-{0:04x}-{node}") is not None


class ClockDriftError(ValueError):
    def __init__(self, drift_ms: int) -> None:
        super().__init__(f"remote clock is {drift_ms} ms ahead")
        self.drift_ms = drift_ms


@dataclass(frozen=True, order=True, slots=True)
class Timestamp:
    millis: int
    counter: int
    node: str

    def __post_init__(self) -> None:
        if not 0 <= self.millis <= MAX_MILLIS or not 0 <= self.counter <= MAX_COUNTER:
            raise ValueError("timestamp out of range")
        if not _valid_node(self.node):
            raise ValueError("node id must be 1-128 printable ASCII characters without spaces")

    def encode(self) -> str:
        return f"{self.millis:012x}-{self.counter:04x}-{self.node}"

    @classmethod
    def parse(cls, value: str) -> Timestamp:
        match = _ENCODED.fullmatch(value)
        if match is None:
            raise ValueError("malformed hybrid logical clock timestamp")
        return cls(int(match[1], 16), int(match[2], 16), match[3])

    def __str__(self) -> str:
        return self.encode()


def wall_millis() -> int:
    return time.time_ns() // 1_000_000


class HybridLogicalClock:
    def __init__(
        self,
        node: str,
        *,
        max_drift_ms: int = DEFAULT_MAX_DRIFT_MS,
        wall: Callable[[], int] = wall_millis,
    ) -> None:
        Timestamp(0, 0, node)  # validates the node id
        self.node = node
        self.max_drift_ms = max_drift_ms
        self._wall = wall
        self._millis = 0
        self._counter = 0
        # Request handlers run on one loop, but a test or a thread may share the clock.
        self._lock = threading.Lock()

    def _tick(self, millis: int, counter: int) -> Timestamp:
        if counter > MAX_COUNTER:
            # 65,536 events in one millisecond: borrow the next millisecond rather than wrap.
            millis, counter = millis + 1, 0
        self._millis, self._counter = millis, counter
        return Timestamp(millis, counter, self.node)

    def now(self) -> Timestamp:
        """A timestamp for a local event, greater than every timestamp this clock produced or saw."""
        with self._lock:
            wall = self._wall()
            if wall > self._millis:
                return self._tick(wall, 0)
            return self._tick(self._millis, self._counter + 1)

    def update(self, remote: Timestamp) -> Timestamp:
        """Merge a received timestamp; the result is greater than both it and the local clock."""
        with self._lock:
            wall = self._wall()
            drift = remote.millis - wall
            if drift > self.max_drift_ms:
                raise ClockDriftError(drift)
            millis = max(self._millis, remote.millis, wall)
            if millis == self._millis == remote.millis:
                counter = max(self._counter, remote.counter) + 1
            elif millis == self._millis:
                counter = self._counter + 1
            elif millis == remote.millis:
                counter = remote.counter + 1
            else:
                counter = 0
            return self._tick(millis, counter)

    def observe(self, remote: Timestamp) -> None:
        """Take `remote` into the clock (so later local events sort after it), without drift
        errors: a timestamp too far ahead is ignored here and dealt with by `receive`."""
        with contextlib.suppress(ClockDriftError):
            self.update(remote)

    def receive(self, remote: Timestamp) -> Timestamp:
        """The timestamp to store for a remote event: `remote` itself when within the drift bound
        (the clock is advanced past it), else a clamped local timestamp keeping the remote node."""
        try:
            self.update(remote)
            return remote
        except ClockDriftError as exc:
            logger.warning(
                "clock drift beyond bound: remote timestamp clamped",
                extra={"drift_ms": exc.drift_ms, "node": remote.node},
            )
            local = self.now()
            return Timestamp(local.millis, local.counter, remote.node)
