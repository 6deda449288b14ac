from __future__ import annotations

from fastapi import FastAPI

from media_gateway.core.app import create_service_app
from media_gateway.core.settings import Settings
from media_gateway.sona.experiment_routes import router as experiment_router
from media_gateway.sona.routes import router
from media_gateway.sona.runtime import sona_runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "sona",
        settings or Settings(),
        routers=[router, experiment_router],
        lifespan_parts=[sona_runtime],
    )
