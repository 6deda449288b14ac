from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.mcpserver.exceptions import ToolError
from starlette.routing import Route

from media_gateway.core.app import ServiceContext, create_service_app
from media_gateway.core.health import DependencyCheck
from media_gateway.core.security.dependencies import token_verifier
from media_gateway.core.settings import Settings
from media_gateway.mcp.auth import (
    MCP_PATH,
    PROTECTED_RESOURCE_METADATA_PATH,
    AccessTokenVerifier,
    auth_settings,
)
from media_gateway.mcp.clients import GatewayClient
from media_gateway.mcp.server import build_mcp_server
from media_gateway.mcp.service import McpService

_SERVICE = "mcp_service"


def _service(ctx: ServiceContext) -> McpService:
    service = ctx.extras.get(_SERVICE)
    if not isinstance(service, McpService):
        raise ToolError("The MCP server is still starting; try again in a moment.")
    return service


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    # The tools and the verifier reach the app's context once it exists (below), at call time.
    def context() -> ServiceContext:
        ctx: ServiceContext = app.state.ctx
        return ctx

    server = build_mcp_server(
        lambda: _service(context()),
        auth=auth_settings(settings),
        token_verifier=AccessTokenVerifier(lambda: token_verifier(context())),
    )
    # Stateless: no MCP session lives in this process, so any replica or worker can answer any request
    # (the tools need no server-to-client requests). Clients of the 2026 protocol revision are served
    # this way whatever the setting.
    transport = server.streamable_http_app(
        streamable_http_path=MCP_PATH, host=settings.host, stateless_http=True
    )

    @asynccontextmanager
    async def run_sessions(ctx: ServiceContext) -> AsyncIterator[None]:
        client = ctx.http.client("gateway", ctx.settings.service_url("gateway"))
        ctx.extras[_SERVICE] = McpService(GatewayClient(client))
        # Mounted routes do not get their own lifespan, so the session manager is run here.
        async with server.session_manager.run():
            yield

    def gateway_check(ctx: ServiceContext) -> Sequence[DependencyCheck]:
        async def gateway_live() -> None:
            await _service(ctx).gateway.live()

        return [DependencyCheck("gateway", gateway_live)]

    app = create_service_app("mcp", settings, extra_checks=gateway_check, lifespan_parts=[run_sessions])
    for route in transport.routes:
        if not isinstance(route, Route):
            continue
        # Each path goes to the whole transport app, not to the bare route, so the SDK's bearer-token
        # middleware runs in front of the MCP endpoint.
        app.router.routes.append(Route(route.path, endpoint=transport, include_in_schema=False))
        if (
            route.path.startswith(PROTECTED_RESOURCE_METADATA_PATH)
            and route.path != PROTECTED_RESOURCE_METADATA_PATH
        ):
            # RFC 9728 puts the metadata under the resource's path; clients of older MCP revisions
            # look at the root of the host, so it is served there too.
            app.router.routes.append(
                Route(
                    PROTECTED_RESOURCE_METADATA_PATH,
                    endpoint=route.endpoint,
                    methods=list(route.methods or ()),
                    include_in_schema=False,
                )
            )
    return app
