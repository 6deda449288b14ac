from __future__ import annotations

from mcp.server.mcpserver import MCPServer

INSTRUCTIONS = (
    "Media Gateway answers 'what should I watch tonight, and where?' across streaming services. "
    "Tools search the catalog, recommend titles and manage the user's watchlist through the gateway API."
)


def build_mcp_server() -> MCPServer:
    return MCPServer(name="media-gateway", instructions=INSTRUCTIONS, version="0.1.0")
