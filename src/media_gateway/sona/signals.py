"""What an interaction means: viewing events as log rows, and a title's aggregate as one affinity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

InteractionKind = Literal[
    "started", "progress", "completed", "rated", "dismissed", "watchlist_added", "watchlist_removed"
]

# A title played this far counts as finished, whatever the event was called.
COMPLETION_THRESHOLD = 0.9
# A rating is explicit and overrides what viewing suggests.
RATING_AFFINITY = {5: 1.0, 4: 0.8, 3: 0.3, 2: -0.5, 1: -1.0}


@dataclass(frozen=True, slots=True)
class InteractionRow:
    """One event as logged: `value` is the rating (1-5) or the completion (0-1)."""

    user_id: uuid.UUID
    event_id: uuid.UUID
    content_id: uuid.UUID
    kind: InteractionKind
    value: float | None
    occurred_at: datetime
    source: Literal["api", "bus"]


@dataclass(frozen=True, slots=True)
class UserItem:
    """The aggregate of every event one user sent about one title."""

    content_id: str
    started: bool
    completion: float
    completed: bool
    rating: int | None
    dismissed: bool
    in_watchlist: bool
    events: int
    last_at: datetime

    @property
    def watched(self) -> bool:
        return self.started or self.completed or self.completion > 0 or self.rating is not None

    @property
    def engaged(self) -> bool:
        """Counts towards the user's interactions (cold start ends after a few of these)."""
        return self.watched or self.in_watchlist or self.dismissed

    @property
    def affinity(self) -> float:
        """-1 (disliked) to 1 (loved). 0 means no opinion (e.g. added then removed from the watchlist)."""
        if self.rating is not None:
            return RATING_AFFINITY.get(self.rating, 0.0)
        if self.completed or self.completion >= COMPLETION_THRESHOLD:
            value = 1.0
        elif self.completion > 0:
            # Abandoned early is weak interest; most of the way through is strong.
            value = 0.2 + 0.6 * self.completion
        elif self.started:
            value = 0.2
        else:
            value = 0.0
        if self.in_watchlist:
            value = max(value, 0.5)
        if self.dismissed and value < 0.5:
            return -1.0
        return value


def completion_of(payload: dict[str, Any]) -> float | None:
    """The completion a playback or progress payload states, or derives from position / duration."""
    raw = payload.get("completion")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return min(1.0, max(0.0, float(raw)))
    position, duration = payload.get("position_seconds"), payload.get("duration_seconds")
    if isinstance(position, int | float) and isinstance(duration, int | float) and duration > 0:
        return min(1.0, max(0.0, float(position) / float(duration)))
    return None


# Event-bus types (sync's user.activity, playback's session events) → interaction kinds.
BUS_EVENT_KINDS: dict[str, InteractionKind] = {
    "watchlist.added": "watchlist_added",
    "watchlist.removed": "watchlist_removed",
    "progress.updated": "progress",
    "content.completed": "completed",
    "playback.position_updated": "progress",
    "playback.session_ended": "progress",
    "playback.session_started": "started",
}


def bus_interaction(
    event_id: str, event_type: str, payload: dict[str, Any], occurred_at: datetime
) -> InteractionRow | None:
    """The interaction a bus event carries, or None when it is not one SONA learns from."""
    kind = BUS_EVENT_KINDS.get(event_type)
    if kind is None:
        return None
    try:
        user_id = uuid.UUID(str(payload["user_id"]))
        content_id = uuid.UUID(str(payload["content_id"]))
    except (KeyError, ValueError):
        return None
    value: float | None = None
    if kind in ("progress", "completed"):
        value = completion_of(payload)
        if kind == "completed" and value is None:
            value = 1.0
        if kind == "progress" and value is None:
            return None
        if kind == "progress" and value is not None and value >= COMPLETION_THRESHOLD:
            kind = "completed"
    return InteractionRow(
        user_id=user_id,
        event_id=uuid.UUID(event_id),
        content_id=content_id,
        kind=kind,
        value=value,
        occurred_at=occurred_at,
        source="bus",
    )
