from __future__ import annotations

from fastapi import FastAPI

from media_gateway.core.app import create_service_app
from media_gateway.core.settings import Settings
from media_gateway.sync.devices.routes import router as devices_router
from media_gateway.sync.live.fanout import live_hub_lifespan
from media_gateway.sync.live.ws import router as live_router
from media_gateway.sync.routes import router as sync_router
from media_gateway.sync.runtime import sync_runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "sync",
        settings or Settings(),
        routers=[sync_router, devices_router, live_router],
        lifespan_parts=[sync_runtime, live_hub_lifespan],
    )
