"""Request and response models of the playback API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from media_gateway.catalog.schemas import ContentKind, Monetization, Region

SessionState = Literal["playing", "paused", "ended"]
# What a client may set; only `POST .../end` ends a session.
ClientState = Literal["playing", "paused"]
DeviceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:\-]{1,128}$")]
Platform = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")]
Seconds = Annotated[float, Field(ge=0, le=7 * 24 * 3600)]
Duration = Annotated[float, Field(gt=0, le=7 * 24 * 3600)]


class _Body(BaseModel):
    # Unknown fields are refused: a misspelt `position_second` must not silently restart a title.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SessionStart(_Body):
    content_id: uuid.UUID
    device_id: DeviceId | None = None
    platform: Platform | None = None
    region: Region | None = Field(default=None, description="Two-letter country code; the default is US.")
    duration_seconds: Duration | None = Field(
        default=None, description="The stream's length; the catalog runtime when omitted."
    )
    position_seconds: Seconds | None = Field(
        default=None,
        description="Where to start; by default the resume point (0 once the title was finished).",
    )

    @model_validator(mode="after")
    def _position_within_duration(self) -> SessionStart:
        _check_within(self.position_seconds, self.duration_seconds)
        return self


class PositionUpdate(_Body):
    position_seconds: Seconds
    duration_seconds: Duration | None = None
    state: ClientState | None = None

    @model_validator(mode="after")
    def _position_within_duration(self) -> PositionUpdate:
        _check_within(self.position_seconds, self.duration_seconds)
        return self


class SessionEnd(_Body):
    position_seconds: Seconds | None = None


def _check_within(position: float | None, duration: float | None) -> None:
    if position is not None and duration is not None and position > duration:
        raise ValueError("position_seconds must not exceed duration_seconds")


class DeepLinkOut(BaseModel):
    """The catalog's links into the title on one platform, and the second to start from.

    The links are the platform's own, unchanged: no platform's URL format for a start time is
    verified, so the client seeks to `position_seconds` itself after opening the title."""

    platform: str
    region: str
    monetization: Monetization
    app: str | None = Field(description="Opens the title in the platform's mobile app.")
    web: str | None = Field(description="The title's page on the platform's website.")
    tv: str | None = Field(description="Opens the title in the platform's TV app.")
    position_seconds: float


class SessionOut(BaseModel):
    id: uuid.UUID
    content_id: uuid.UUID
    device_id: str | None
    platform: str | None
    region: str
    state: SessionState
    position_seconds: float
    duration_seconds: float | None
    completion: float | None = Field(
        description="position / duration, 0 to 1; null while the duration is unknown."
    )
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    deep_link: DeepLinkOut | None


class SessionList(BaseModel):
    items: list[SessionOut]
    next_cursor: str | None


class ResumeOut(BaseModel):
    content_id: uuid.UUID
    position_seconds: float
    duration_seconds: float | None
    completion: float | None
    updated_at: datetime
    deep_link: DeepLinkOut | None


class ContinueWatchingItem(ResumeOut):
    title: str
    kind: ContentKind
    year: int | None
    poster: str | None


class ContinueWatchingPage(BaseModel):
    items: list[ContinueWatchingItem]
    next_cursor: str | None
