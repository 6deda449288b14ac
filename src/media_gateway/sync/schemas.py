"""Request bodies of the sync endpoints (responses are built in routes.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# Printable text: PostgreSQL refuses NUL in text, and control characters have no business in an id.
ContentId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
PlaybackState = Literal["playing", "paused", "stopped"]


class WatchlistChange(BaseModel):
    # A plain string: an unknown operation is a 400 with a reason, not a schema error.
    operation: str
    content_id: ContentId
    # For a remove: the add tags the client observed (from GET /sync/watchlist or /sync/changes).
    # Without them the server removes the tags visible when it applies the remove.
    tags: list[UUID] | None = Field(default=None, max_length=10_000)


class ProgressReport(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    content_id: ContentId
    position_seconds: float = Field(ge=0)
    duration_seconds: float = Field(gt=0)
    state: PlaybackState

    @model_validator(mode="after")
    def _position_within_duration(self) -> ProgressReport:
        if self.position_seconds > self.duration_seconds:
            raise ValueError("position_seconds must not exceed duration_seconds")
        return self


class QueuedOperation(BaseModel):
    """One operation of an offline queue, stamped by the client."""

    op_id: UUID
    kind: str
    content_id: ContentId
    hlc: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict)


class OperationBatch(BaseModel):
    operations: list[QueuedOperation]


class RemovePayload(BaseModel):
    tags: list[UUID] = Field(max_length=10_000)


class ProgressPayload(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    position_seconds: float = Field(ge=0)
    duration_seconds: float = Field(gt=0)
    state: PlaybackState

    @model_validator(mode="after")
    def _position_within_duration(self) -> ProgressPayload:
        if self.position_seconds > self.duration_seconds:
            raise ValueError("position_seconds must not exceed duration_seconds")
        return self
