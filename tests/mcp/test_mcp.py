"""The MCP server over its real streamable-HTTP transport (and stdio), in front of the real gateway and
services: tools with schemas, the user taken from the bearer token, upstream errors as tool errors,
and the MCP authorization spec's 401 challenge and protected-resource metadata."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.client import ConnectMode
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent, TextResourceContents

from media_gateway.core.settings import Settings
from media_gateway.gateway.app import create_app as create_gateway
from media_gateway.mcp.app import create_app as create_mcp
from tests.gateway.test_gateway import ADMIN_TOKEN, World, bearer, sign_up
from tests.support import free_port, serving

USER_TOOLS = {
    "recommend",
    "similar_titles",
    "get_watchlist",
    "add_to_watchlist",
    "remove_from_watchlist",
    "continue_watching",
}
TOOLS = {"search_titles", "get_title"} | USER_TOOLS
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "0"},
    },
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture(scope="module")
async def mcp_url(world: World) -> AsyncIterator[str]:
    async with serving(create_mcp(world.settings), port=world.settings.ports.of("mcp")) as url:
        yield f"{url}/mcp"


@contextlib.asynccontextmanager
async def connect(url: str, token: str, mode: ConnectMode = "auto") -> AsyncIterator[Client]:
    """`mode="legacy"`: the initialize handshake of the 2025 revisions most assistants speak today."""
    async with (
        httpx2.AsyncClient(headers=bearer(token), timeout=httpx2.Timeout(30, read=60)) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


async def title_of(world: World, content_id: str) -> str:
    response = await world.gateway.get(f"/api/v1/content/{content_id}")
    assert response.status_code == 200, response.text
    title: str = response.json()["title"]
    return title


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_and_resources_are_listed_with_schemas(world: World, mcp_url: str, mode: str) -> None:
    async with connect(mcp_url, world.token, mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description, tool.name
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None, tool.name
        assert tool.output_schema["type"] == "object", tool.name
        # The user is the token's; no tool lets a caller name one.
        assert not any("user" in name for name in tool.input_schema.get("properties", {})), tool.name
    search = tools["search_titles"].input_schema
    assert search["required"] == ["query"]
    assert set(search["properties"]) == {"query", "region", "platforms", "genres", "max_results"}
    assert "results" in tools["search_titles"].output_schema["properties"]  # type: ignore[index]
    assert tools["add_to_watchlist"].input_schema["required"] == ["content_id"]
    assert tools["get_watchlist"].input_schema.get("properties", {}) == {}
    annotations = tools["get_title"].annotations
    assert annotations is not None
    assert annotations.read_only_hint
    assert resources == {"media-gateway://platforms", "media-gateway://genres"}


async def test_search_finds_an_ingested_title_and_get_title_tells_where_to_watch(
    world: World, mcp_url: str
) -> None:
    content_id = world.content_ids[0]
    title = await title_of(world, content_id)
    async with connect(mcp_url, world.token) as client:
        found = structured(await client.call_tool("search_titles", {"query": title, "max_results": 5}))
        details = structured(await client.call_tool("get_title", {"content_id": content_id, "region": "us"}))
    assert found["region"] == "US"
    assert content_id in [card["content_id"] for card in found["results"]], found
    card = next(card for card in found["results"] if card["content_id"] == content_id)
    assert card["title"] == title

    availability = await world.gateway.get(
        f"/api/v1/content/{content_id}/availability", params={"region": "US"}
    )
    assert availability.status_code == 200, availability.text
    offers = [offer for group in availability.json()["groups"] for offer in group["offers"]]
    assert details["content_id"] == content_id
    assert details["title"] == title
    assert details["region"] == "US"
    assert details["watchable_now"] is bool(offers)
    assert [(w["platform"], w["monetization"]) for w in details["where_to_watch"]] == [
        (o["platform"], o["monetization"]) for o in offers
    ]
    assert [w["link"] for w in details["where_to_watch"]] == [o["deep_links"]["web"] for o in offers]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_signed_in_user_manages_the_watchlist_seen_through_the_gateway_too(
    world: World, mcp_url: str, mode: str
) -> None:
    token = await sign_up(world.gateway)
    content_id = world.content_ids[2]
    title = await title_of(world, content_id)
    async with connect(mcp_url, token, mode) as client:
        assert structured(await client.call_tool("get_watchlist"))["items"] == []
        added = structured(await client.call_tool("add_to_watchlist", {"content_id": content_id}))
        assert added == {"content_id": content_id, "title": title, "in_watchlist": True}

        listed = await world.gateway.get("/api/v1/sync/watchlist", headers=bearer(token))
        assert listed.status_code == 200, listed.text
        assert [item["content_id"] for item in listed.json()["items"]] == [content_id]
        watchlist = structured(await client.call_tool("get_watchlist"))
        assert watchlist["count"] == 1
        assert [(i["content_id"], i["title"]) for i in watchlist["items"]] == [(content_id, title)]

        removed = structured(await client.call_tool("remove_from_watchlist", {"content_id": content_id}))
        assert removed["in_watchlist"] is False
        listed = await world.gateway.get("/api/v1/sync/watchlist", headers=bearer(token))
        assert listed.json()["items"] == []
        assert structured(await client.call_tool("get_watchlist"))["count"] == 0
    # The change was this user's alone.
    async with connect(mcp_url, world.token) as other:
        others = structured(await other.call_tool("get_watchlist"))
    assert content_id not in [item["content_id"] for item in others["items"]]


async def test_recommendations_similar_titles_and_continue_watching(world: World, mcp_url: str) -> None:
    token = await sign_up(world.gateway)
    content_id = world.content_ids[4]
    started = await world.gateway.post(
        "/api/v1/sessions",
        json={"content_id": content_id, "device_id": "tv-1", "duration_seconds": 6000},
        headers=bearer(token),
    )
    assert started.status_code == 201, started.text
    moved = await world.gateway.patch(
        f"/api/v1/sessions/{started.json()['id']}/position",
        json={"position_seconds": 1500},
        headers=bearer(token),
    )
    assert moved.status_code == 200, moved.text
    async with connect(mcp_url, token) as client:
        picks = structured(await client.call_tool("recommend", {"limit": 5}))
        similar = structured(await client.call_tool("similar_titles", {"content_id": content_id, "limit": 3}))
        watching = structured(await client.call_tool("continue_watching"))
    assert isinstance(picks["recommendations"], list)
    assert len(picks["recommendations"]) <= 5
    for pick in picks["recommendations"]:
        assert pick["content_id"] in world.content_ids
        assert pick["title"]
        assert isinstance(pick["why"], str)
    assert similar["content_id"] == content_id
    assert content_id not in [s["content_id"] for s in similar["similar"]]
    [item] = watching["items"]
    assert item["content_id"] == content_id
    assert item["title"] == await title_of(world, content_id)
    assert item["position_seconds"] == 1500
    assert item["percent_watched"] == 25.0


async def test_upstream_errors_are_tool_errors_with_the_upstream_detail(world: World, mcp_url: str) -> None:
    unknown = str(uuid.uuid4())
    async with connect(mcp_url, world.token) as client:
        missing = error_text(await client.call_tool("get_title", {"content_id": unknown}))
        not_added = error_text(await client.call_tool("add_to_watchlist", {"content_id": unknown}))
        bad_filter = error_text(
            await client.call_tool("search_titles", {"query": "space", "platforms": ["myspace"]})
        )
        malformed = error_text(await client.call_tool("get_title", {"content_id": "not-an-id"}))
        watchlist = structured(await client.call_tool("get_watchlist"))
    # discovery's problem detail, through the gateway.
    assert f"No content {unknown}." in missing
    assert "404" in missing
    assert f"No content {unknown}." in not_added
    assert unknown not in [item["content_id"] for item in watchlist["items"]]
    assert "unknown platforms: ['myspace']" in bad_filter
    assert "422" in bad_filter
    assert "content_id" in malformed
    for text in (missing, not_added, bad_filter, malformed):
        assert "Traceback" not in text


async def test_a_client_token_gets_public_tools_and_a_clear_refusal_from_user_tools(
    world: World, mcp_url: str
) -> None:
    registered = await world.gateway.post(
        "/api/v1/admin/clients",
        json={"name": "Assistant", "redirect_uris": [], "grant_types": ["client_credentials"], "scopes": []},
        headers=bearer(ADMIN_TOKEN),
    )
    assert registered.status_code == 201, registered.text
    client_id, secret = registered.json()["client_id"], registered.json()["client_secret"]
    issued = await world.gateway.post(
        "/auth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert issued.status_code == 200, issued.text
    async with connect(mcp_url, issued.json()["access_token"]) as client:
        found = structured(await client.call_tool("search_titles", {"query": "adventure", "max_results": 3}))
        refused = error_text(await client.call_tool("get_watchlist"))
    assert found["results"]
    assert "403" in refused
    assert "client token" in refused


def with_urls(settings: Settings, **urls: str) -> Settings:
    return settings.model_copy(update={"service_urls": settings.service_urls.model_copy(update=urls)})


async def test_a_gateway_or_service_that_is_down_makes_tools_say_unavailable(world: World) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with (
        serving(create_mcp(with_urls(world.settings, gateway=dead))) as url,
        connect(f"{url}/mcp", world.token) as client,
    ):
        unreachable = error_text(await client.call_tool("search_titles", {"query": "space"}))
    assert "could not be reached" in unreachable
    assert "try again later" in unreachable

    # A gateway whose SONA is down answers 502 problem+json; the tool says so, and the rest still works.
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    settings = with_urls(world.settings, sona=dead, gateway=gateway)
    async with (
        serving(create_gateway(settings), port=port),
        serving(create_mcp(settings)) as url,
        connect(f"{url}/mcp", world.token) as client,
    ):
        failed = error_text(await client.call_tool("recommend"))
        found = structured(await client.call_tool("search_titles", {"query": "adventure", "max_results": 1}))
    assert "recommendations is unavailable right now (502" in failed
    assert "try again later" in failed
    assert found["results"]


async def test_without_a_valid_token_the_http_transport_answers_401_with_a_challenge(mcp_url: str) -> None:
    metadata_url = mcp_url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    async with httpx.AsyncClient(timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="}):
            response = await http.post(mcp_url, json=INITIALIZE, headers=MCP_HEADERS | headers)
            assert response.status_code == 401, (headers, response.text)
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith("Bearer ")
            assert f'resource_metadata="{metadata_url}"' in challenge
    # The SDK's client cannot connect with a refused token either.
    with pytest.raises(ExceptionGroup) as refused:
        async with connect(mcp_url, "not-a-token") as client:
            await client.list_tools()
    assert refused.group_contains(MCPError)


async def test_protected_resource_metadata_names_our_auth_server(world: World, mcp_url: str) -> None:
    base = mcp_url.removesuffix("/mcp")
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        documents = [
            (await http.get("/.well-known/oauth-protected-resource/mcp")),
            (await http.get("/.well-known/oauth-protected-resource")),
        ]
    for response in documents:
        assert response.status_code == 200, response.text
        document = response.json()
        assert document["resource"] == mcp_url
        assert document["authorization_servers"] == [world.settings.token_issuer]
        assert document["bearer_methods_supported"] == ["header"]
    # ... and that server publishes its own metadata, where a client learns how to sign the user in.
    async with httpx.AsyncClient(timeout=10) as http:
        issuer = world.settings.token_issuer
        server = await http.get(f"{issuer}/.well-known/oauth-authorization-server")
    assert server.status_code == 200, server.text
    assert server.json()["issuer"] == issuer


async def test_stdio_acts_for_the_token_in_its_environment_and_only_public_tools_without_one(
    world: World,
) -> None:
    token = await sign_up(world.gateway)
    content_id = world.content_ids[5]
    added = await world.gateway.put(f"/api/v1/sync/watchlist/{content_id}", headers=bearer(token))
    assert added.status_code == 200, added.text

    def stdio(access_token: str) -> StdioServerParameters:
        env = {key: value for key, value in os.environ.items() if not key.startswith("MG_")}
        env |= {
            "MG_SERVICE_URLS__GATEWAY": world.settings.service_url("gateway"),
            "MG_MCP__ACCESS_TOKEN": access_token,
            "MG_LOG_LEVEL": "WARNING",
        }
        return StdioServerParameters(
            command=sys.executable, args=["-m", "media_gateway.cli", "mcp-stdio"], env=env
        )

    async with Client(stdio(token)) as client:
        watchlist = structured(await client.call_tool("get_watchlist"))
    assert [item["content_id"] for item in watchlist["items"]] == [content_id]

    async with Client(stdio("")) as client:
        refused = error_text(await client.call_tool("get_watchlist"))
        found = structured(await client.call_tool("search_titles", {"query": "adventure", "max_results": 3}))
        platforms = await client.read_resource("media-gateway://platforms")
    assert "MG_MCP__ACCESS_TOKEN" in refused
    assert found["personalized"] is False
    assert found["results"]
    [contents] = platforms.contents
    assert isinstance(contents, TextResourceContents)
    assert "platforms" in contents.text
