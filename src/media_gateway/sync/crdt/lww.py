"""Last-writer-wins register, ordered by (hybrid logical clock, device id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from media_gateway.sync.crdt.hlc import Timestamp

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LWWRegister(Generic[T]):
    value: T
    hlc: Timestamp
    device_id: str = ""

    @property
    def key(self) -> tuple[Timestamp, str]:
        # The device id breaks ties between equal timestamps (same millis, counter and node).
        return (self.hlc, self.device_id)

    def wins_over(self, other: LWWRegister[T] | None) -> bool:
        return other is None or self.key > other.key

    def merge(self, other: LWWRegister[T] | None) -> LWWRegister[T]:
        """Commutative, associative and idempotent: the greater key is kept."""
        if other is None or self.key >= other.key:
            return self
        return other
