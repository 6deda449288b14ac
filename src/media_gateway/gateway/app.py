from __future__ import annotations

from fastapi import FastAPI

from media_gateway.core.app import create_service_app
from media_gateway.core.settings import Settings
from media_gateway.gateway.routes import router


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app("gateway", settings or Settings(), routers=[router])
