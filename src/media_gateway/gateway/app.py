from __future__ import annotations

from fastapi import FastAPI

from media_gateway.core.app import create_service_app
from media_gateway.core.ratelimit import install_rate_limiting
from media_gateway.core.settings import Settings
from media_gateway.gateway.routes import proxy_router, router
from media_gateway.gateway.service import GatewayRuntime


def create_app(settings: Settings | None = None) -> FastAPI:
    app = create_service_app(
        "gateway",
        settings or Settings(),
        routers=[router, proxy_router],
        lifespan_parts=[GatewayRuntime.running],
    )
    install_rate_limiting(app)
    return app
