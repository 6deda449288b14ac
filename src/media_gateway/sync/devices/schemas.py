"""Request and response bodies of the device endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

DEVICE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"

DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
ContentId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
DeviceType = Literal["tv", "phone", "tablet", "web", "desktop"]
CommandName = Literal["play", "pause", "seek", "stop"]
CommandStatus = Literal["pending", "acknowledged", "expired"]
# A day is beyond any title; it bounds what a client can make a TV seek to.
Position = Annotated[float, Field(ge=0, le=86_400)]


class DeviceCapabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_resolution: Literal["SD", "HD", "FHD", "UHD"] | None = None
    hdr: bool = False
    audio_codecs: list[Annotated[str, StringConstraints(min_length=1, max_length=32)]] = Field(
        default_factory=list, max_length=16
    )
    # False: the device plays locally but takes no remote commands (a handoff to it is refused).
    remote_controllable: bool = True
    can_cast: bool = False


class DeviceRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # Chosen by the client (stable across reinstalls if it wants), or minted by the server.
    device_id: DeviceId | None = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    device_type: DeviceType = Field(alias="type")
    platform: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = (
        None
    )
    capabilities: DeviceCapabilities = Field(default_factory=DeviceCapabilities)


class DeviceView(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    device_id: str
    name: str
    device_type: DeviceType = Field(alias="type")
    platform: str | None
    capabilities: DeviceCapabilities
    last_seen_at: datetime | None
    created_at: datetime
    # A heartbeat within `sync.device_online_sec` (60 s by default).
    online: bool


class DeviceList(BaseModel):
    devices: list[DeviceView]


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: CommandName
    content_id: ContentId | None = None
    position_seconds: Position | None = None


class HandoffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_device_id: DeviceId
    content_id: ContentId
    # Default: the user's saved progress for the title (0 when none or finished).
    position_seconds: Position | None = None


class CommandView(BaseModel):
    command_id: uuid.UUID
    command: CommandName
    target_device_id: str
    source_device_id: str | None
    content_id: str | None
    position_seconds: float | None
    created_at: datetime
    expires_at: datetime
    acknowledged_at: datetime | None
    status: CommandStatus


class CommandList(BaseModel):
    commands: list[CommandView]
