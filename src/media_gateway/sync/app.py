from __future__ import annotations

from fastapi import FastAPI

from media_gateway.core.app import create_service_app
from media_gateway.core.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app("sync", settings or Settings())
