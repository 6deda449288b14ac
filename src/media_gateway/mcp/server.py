"""The MCP tools and resources: the gateway's public API for AI assistants.

The user is whoever the caller's access token says (the HTTP transport's bearer token, or the token
`media-gateway mcp-stdio` was started with), never a tool argument; the token goes on to the gateway
with every call, so what a tool may do is exactly what the user may do through the API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Final

from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from media_gateway.catalog.genres import CANONICAL_GENRES
from media_gateway.catalog.schemas import PLATFORMS
from media_gateway.mcp.auth import AccessTokenVerifier, request_token
from media_gateway.mcp.clients import GatewayError
from media_gateway.mcp.schemas import (
    ContinueWatching,
    Recommendations,
    SearchResults,
    SimilarTitles,
    TitleDetails,
    Watchlist,
    WatchlistChange,
)
from media_gateway.mcp.service import McpService

INSTRUCTIONS: Final = (
    "Media Gateway answers 'what should I watch tonight, and where?' across streaming services. "
    "search_titles finds titles from a description ('dark sci-fi like Arrival under 2 hours'); get_title "
    "tells where one can be watched in a region, with deep links. For the signed-in user: recommend, "
    "similar_titles, continue_watching, and the watchlist (get_watchlist, add_to_watchlist, "
    "remove_from_watchlist). Tools take the content_id values other tools return."
)
SIGN_IN_NEEDED: Final = (
    "This tool acts for a signed-in user and this connection has no access token. Over HTTP, connect "
    "with the user's bearer token; with `media-gateway mcp-stdio`, set MG_MCP__ACCESS_TOKEN."
)
PLATFORMS_URI: Final = "media-gateway://platforms"
GENRES_URI: Final = "media-gateway://genres"

ContentId = Annotated[
    uuid.UUID, Field(description="A content_id returned by search_titles, recommend or get_watchlist.")
]
Region = Annotated[
    str | None,
    Field(
        pattern=r"^[A-Za-z]{2}$",
        description="ISO 3166-1 country code whose offers to show (US, GB, DE, ...); default US.",
    ),
]
READ: Final = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE: Final = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)
REMOVE: Final = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)


def build_mcp_server(
    service: Callable[[], McpService],
    *,
    auth: AuthSettings | None = None,
    token_verifier: AccessTokenVerifier | None = None,
    stdio_token: str | None = None,
) -> MCPServer:
    """`service` is called per tool call: the app makes its gateway client at startup. `auth` and
    `token_verifier` protect the HTTP transport; `stdio_token` is the identity of a stdio server."""
    server: MCPServer = MCPServer(
        name="media-gateway",
        title="Media Gateway",
        instructions=INSTRUCTIONS,
        version="0.1.0",
        auth=auth,
        token_verifier=token_verifier,
    )

    def caller_token() -> str | None:
        return request_token() or stdio_token

    def user_token() -> str:
        token = caller_token()
        if not token:
            raise ToolError(SIGN_IN_NEEDED)
        return token

    @server.tool(annotations=READ)
    async def search_titles(
        query: Annotated[
            str,
            Field(
                min_length=1,
                max_length=500,
                description="What to watch, in plain words: a title, a person, a mood, 'like <title>'.",
            ),
        ],
        region: Region = None,
        platforms: Annotated[
            list[str] | None,
            Field(max_length=20, description=f"Only titles on these platforms: {', '.join(PLATFORMS)}."),
        ] = None,
        genres: Annotated[
            list[str] | None,
            Field(
                max_length=20, description=f"Only titles in all these genres: {', '.join(CANONICAL_GENRES)}."
            ),
        ] = None,
        max_results: Annotated[int, Field(ge=1, le=25)] = 10,
    ) -> SearchResults:
        """Search the catalog (every streaming platform) by description, title or person. Results are
        best first, each with where to watch it in the region; signed-in users get them re-ranked by
        their tastes."""
        return await service().search(
            caller_token(), query, _region(region), platforms or [], genres or [], max_results
        )

    @server.tool(annotations=READ)
    async def get_title(content_id: ContentId, region: Region = None) -> TitleDetails:
        """One title in full: overview, cast, directors, age rating, and every way to watch it today in
        the region (subscription, free, rent, buy), cheapest first, with deep links."""
        return await service().title(caller_token(), str(content_id), _region(region))

    @server.tool(annotations=READ)
    async def recommend(
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        region: Region = None,
    ) -> Recommendations:
        """Personal picks for the signed-in user, from what they watched, saved and like (popular titles
        while too little is known), each with why it was picked and where to watch it."""
        return await service().recommend(user_token(), limit, _region(region))

    @server.tool(annotations=READ)
    async def similar_titles(
        content_id: ContentId,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        region: Region = None,
    ) -> SimilarTitles:
        """Titles like the given one (co-watched, same genres, cast or crew, close in plot), for the
        signed-in user."""
        return await service().similar(user_token(), str(content_id), limit, _region(region))

    @server.tool(annotations=READ)
    async def get_watchlist() -> Watchlist:
        """The signed-in user's watchlist, most recently added first (the same list on all their devices)."""
        return await service().watchlist(user_token())

    @server.tool(annotations=WRITE)
    async def add_to_watchlist(content_id: ContentId) -> WatchlistChange:
        """Add a title to the signed-in user's watchlist (adding it twice changes nothing)."""
        return await service().add_to_watchlist(user_token(), str(content_id))

    @server.tool(annotations=REMOVE)
    async def remove_from_watchlist(content_id: ContentId) -> WatchlistChange:
        """Remove a title from the signed-in user's watchlist (removing one not on it changes nothing)."""
        return await service().remove_from_watchlist(user_token(), str(content_id))

    @server.tool(annotations=READ)
    async def continue_watching(limit: Annotated[int, Field(ge=1, le=50)] = 10) -> ContinueWatching:
        """Titles the signed-in user started and has not finished, most recent first, with where they
        stopped and a link to resume."""
        return await service().continue_watching(user_token(), limit)

    @server.resource(
        PLATFORMS_URI,
        name="platforms",
        title="Streaming platforms",
        description="Platforms in the catalog: id, name, titles watchable today, regions, kinds of offer.",
        mime_type="application/json",
    )
    async def platforms() -> str:
        return await _resource(service, caller_token(), "/api/v1/platforms", "the catalog")

    @server.resource(
        GENRES_URI,
        name="genres",
        title="Genres",
        description="The genre taxonomy search filters use, with the number of titles in each genre.",
        mime_type="application/json",
    )
    async def genres() -> str:
        return await _resource(service, caller_token(), "/api/v1/genres", "the catalog")

    return server


def _region(region: str | None) -> str | None:
    return region.upper() if region else None


async def _resource(service: Callable[[], McpService], token: str | None, path: str, what: str) -> str:
    try:
        body = await service().gateway.raw(token, path, what)
    except GatewayError as exc:
        # A resource read reports a `ResourceError` as is; anything else would reach the client as a
        # bare "error reading resource".
        raise ResourceError(str(exc)) from exc
    return body.decode()
