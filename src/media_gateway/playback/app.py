from __future__ import annotations

from fastapi import FastAPI

from media_gateway.core.app import create_service_app
from media_gateway.core.settings import Settings
from media_gateway.playback.routes import router
from media_gateway.playback.runtime import playback_runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "playback", settings or Settings(), routers=[router], lifespan_parts=[playback_runtime]
    )
