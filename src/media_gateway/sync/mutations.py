"""What a write asks for (`Mutation`) and what became of it (`MutationResult`).

Requests are validated into mutations before they reach the group committer, so that one bad
request can never fail the batch it would have shared a transaction with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from media_gateway.sync.crdt.hlc import Timestamp
from media_gateway.sync.oplog import SyncOperation


@dataclass(frozen=True, slots=True)
class WatchlistAdd:
    content_id: str


@dataclass(frozen=True, slots=True)
class WatchlistRemove:
    content_id: str
    # The add tags the remover observed; None: the tags visible when the server applies it.
    tags: frozenset[UUID] | None = None
    # An online remove of an item that is not there is a 404; a replayed one just records tombstones.
    require_present: bool = True


@dataclass(frozen=True, slots=True)
class ProgressSet:
    content_id: str
    position_seconds: float
    duration_seconds: float
    state: str  # playing, paused, stopped


Change = WatchlistAdd | WatchlistRemove | ProgressSet


@dataclass(frozen=True, slots=True)
class Mutation:
    user_id: UUID
    op_id: UUID
    device_id: str | None
    change: Change
    # A client's timestamp (offline replay); None: the server stamps the mutation when it applies it.
    hlc: Timestamp | None = None
    # Client-chosen op ids may be replays of operations already in the log.
    replay: bool = False


class MutationStatus(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the op id is already in the log: nothing happened again
    NOT_FOUND = "not_found"  # removing an item that is not in the watchlist


@dataclass(frozen=True, slots=True)
class ProgressState:
    content_id: str
    position_seconds: float
    duration_seconds: float
    state: str
    completed: bool
    hlc: str
    device_id: str
    updated_at: datetime

    @property
    def completion(self) -> float:
        return min(1.0, self.position_seconds / self.duration_seconds) if self.duration_seconds else 0.0


@dataclass(slots=True)
class MutationResult:
    status: MutationStatus
    operations: list[SyncOperation] = field(default_factory=list)
    # Watchlist: whether the item is in the watchlist once this mutation applied.
    in_watchlist: bool | None = None
    # Progress: whether this write became the register's value, and the value after it.
    progress_won: bool | None = None
    progress: ProgressState | None = None
    completed: bool = False
