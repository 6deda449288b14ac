from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from media_gateway.core.app import create_service_app
from media_gateway.core.ratelimit import install_rate_limiting
from media_gateway.core.settings import Settings
from media_gateway.gateway.routes import PROXIED_METHODS, proxy_router, router
from media_gateway.gateway.service import GatewayRuntime


def create_app(settings: Settings | None = None) -> FastAPI:
    app = create_service_app(
        "gateway",
        settings or Settings(),
        routers=[router, proxy_router],
        lifespan_parts=[GatewayRuntime.running],
    )
    install_rate_limiting(app)
    origins = app.state.ctx.settings.gateway.cors_origins
    if origins:
        # Outermost, so a preflight is answered here and refusals (401, 429) still carry the headers
        # a browser needs to show them to the app.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=PROXIED_METHODS,
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "X-Device-ID"],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
            max_age=600,
        )
    return app
