from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class UpstreamHealth(BaseModel):
    status: Literal["ready", "not_ready", "unreachable"]
    url: str
    latency_ms: float
    detail: str | None = None


class AggregateHealth(BaseModel):
    status: Literal["ready", "degraded"]
    services: dict[str, UpstreamHealth]
