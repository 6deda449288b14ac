# The gateway tests' world (auth, ingestion with a small demo feed, sync, SONA, playback, discovery and
# the gateway, each on its own port, and a signed-up user) is the MCP server's upstream here too.
from tests.gateway.test_gateway import world

__all__ = ["world"]
