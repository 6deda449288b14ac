from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from media_gateway.core.app import ServiceContext, create_service_app
from media_gateway.core.health import DependencyCheck
from media_gateway.core.settings import Settings
from media_gateway.mcp.server import build_mcp_server


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    server = build_mcp_server()
    transport = server.streamable_http_app(streamable_http_path="/mcp", host=settings.host)

    @asynccontextmanager
    async def run_sessions(ctx: ServiceContext) -> AsyncIterator[None]:
        # Mounted routes do not get their own lifespan, so the session manager is run here.
        async with server.session_manager.run():
            yield

    def gateway_check(ctx: ServiceContext) -> Sequence[DependencyCheck]:
        async def gateway_live() -> None:
            client = ctx.http.client("gateway", ctx.settings.service_url("gateway"))
            response = await client.get("/health/live")
            response.raise_for_status()

        return [DependencyCheck("gateway", gateway_live)]

    app = create_service_app("mcp", settings, extra_checks=gateway_check, lifespan_parts=[run_sessions])
    app.router.routes.extend(transport.routes)
    return app
