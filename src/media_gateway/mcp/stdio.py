"""`media-gateway mcp-stdio`: the same tools over stdin/stdout, for assistants that launch a local
process. No HTTP request carries a token here, so the user is the one of `MG_MCP__ACCESS_TOKEN`; without
it only the public tools (search, titles) work. Logs go to stderr: stdout is the protocol."""

from __future__ import annotations

from media_gateway.core.http import HttpClientFactory
from media_gateway.core.settings import Settings
from media_gateway.mcp.clients import GatewayClient
from media_gateway.mcp.server import build_mcp_server
from media_gateway.mcp.service import McpService


async def run_stdio(settings: Settings) -> None:
    http = HttpClientFactory(settings)
    service = McpService(GatewayClient(http.client("gateway", settings.service_url("gateway"))))
    token = settings.mcp.access_token.get_secret_value().strip() or None
    server = build_mcp_server(lambda: service, stdio_token=token)
    try:
        await server.run_stdio_async()
    finally:
        await http.aclose()
