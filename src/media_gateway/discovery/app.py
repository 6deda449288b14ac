from __future__ import annotations

from fastapi import FastAPI

from media_gateway.core.app import create_service_app
from media_gateway.core.settings import Settings
from media_gateway.discovery.catalog_routes import router as catalog_router
from media_gateway.discovery.search.hybrid_runtime import search_runtime
from media_gateway.discovery.search.runtime import keyword_runtime
from media_gateway.discovery.search_routes import router as search_router
from media_gateway.discovery.search_service import search_service_runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "discovery",
        settings or Settings(),
        routers=[catalog_router, search_router],
        # Each part reads what the one before it publishes.
        lifespan_parts=[keyword_runtime, search_runtime, search_service_runtime],
    )
