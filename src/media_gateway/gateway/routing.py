"""The gateway's routing table: which upstream serves a public path, and what the gateway checks first.

Paths pass through unchanged (every service already serves its API under the public path), so a client
can switch from a service's own port to the gateway by changing the host alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from media_gateway.core.settings import ServiceName

# "user": a valid user access token is required, and a request without one is refused here, before any
# upstream work. "lenient": a bearer JWT that verifies sets the rate-limit tier; anything else (no
# token, the operator's admin token, HTTP Basic client authentication at the token endpoint, a signed
# webhook) is forwarded for the upstream to judge, and counted against the caller's address.
Access = Literal["user", "lenient"]


@dataclass(frozen=True)
class Route:
    # A path prefix ending in "/" matches below it; one without matches the path itself and below it.
    pattern: str
    upstream: ServiceName
    access: Access = "lenient"
    # Platform webhooks carry whole feed pages; everything else is small JSON.
    large_body: bool = False
    regex: re.Pattern[str] | None = None

    def matches(self, path: str) -> bool:
        if self.regex is not None:
            return self.regex.fullmatch(path) is not None
        if self.pattern.endswith("/"):
            return path.startswith(self.pattern)
        return path == self.pattern or path.startswith(self.pattern + "/")


def _regex(pattern: str, upstream: ServiceName, access: Access = "lenient") -> Route:
    return Route(pattern, upstream, access, regex=re.compile(pattern))


# First match wins, so narrower routes come before the prefixes they sit under.
ROUTES: Final[tuple[Route, ...]] = (
    # auth: OAuth 2 endpoints and pages (RFC 6749 errors, Basic client auth), discovery documents,
    # accounts. Admin endpoints take the operator's token, which is not a JWT.
    Route("/auth/", "auth"),
    Route("/.well-known/", "auth"),
    Route("/api/v1/auth/", "auth"),
    Route("/api/v1/users", "auth", "user"),
    Route("/api/v1/admin/clients", "auth"),
    Route("/api/v1/admin/keys", "auth"),
    # SONA
    _regex(r"/api/v1/content/[^/]+/similar", "sona", "user"),
    Route("/api/v1/recommendations", "sona", "user"),
    Route("/api/v1/personalization/", "sona", "user"),
    Route("/api/v1/events", "sona", "user"),
    Route("/api/v1/profile", "sona", "user"),
    Route("/api/v1/embeddings", "sona", "user"),
    Route("/api/v1/experiments", "sona"),
    Route("/api/v1/admin/sona/", "sona"),
    # discovery: the catalog read API and search, signed-in or not.
    Route("/api/v1/search", "discovery"),
    Route("/api/v1/content/", "discovery"),
    Route("/api/v1/genres", "discovery"),
    Route("/api/v1/platforms", "discovery"),
    Route("/api/v1/changes", "discovery"),
    # sync (the live WebSocket `/api/v1/sync/ws` is relayed by the gateway's WebSocket route)
    Route("/api/v1/sync/", "sync", "user"),
    Route("/api/v1/devices", "sync", "user"),
    # playback
    Route("/api/v1/sessions", "playback", "user"),
    Route("/api/v1/playback/", "playback", "user"),
    # ingestion: signed platform webhooks and the operator's API.
    Route("/api/v1/webhooks/", "ingestion", large_body=True),
    Route("/api/v1/admin/", "ingestion"),
)


def route_for(path: str) -> Route | None:
    for route in ROUTES:
        if route.matches(path):
            return route
    return None
