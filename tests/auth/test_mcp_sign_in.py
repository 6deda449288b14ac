"""An MCP client signs a user in by itself, as the MCP authorization spec has it: the `mcp` SDK's own
OAuth client meets the real MCP server's 401, discovers our auth server (RFC 9728, RFC 8414),
registers (RFC 7591), runs the code flow with PKCE and `resource` (RFC 8707), and calls the server."""

from __future__ import annotations

import uuid

import httpx
import httpx2
from mcp.client import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from media_gateway.auth.app import create_app as create_auth
from media_gateway.core.security.tokens import TokenVerifier
from media_gateway.core.settings import Settings
from media_gateway.mcp.app import create_app as create_mcp
from media_gateway.mcp.auth import resource_url
from tests.auth.conftest import PASSWORD, AuthApi, hidden_field, query_of
from tests.auth.test_client_registration import dcr_settings
from tests.support import free_port, serving

CALLBACK = "http://127.0.0.1:33419/callback"


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Browser:
    """The user's browser: opens the authorization URL, signs in and allows, follows no further."""

    def __init__(self, email: str) -> None:
        self.email = email
        self.consent_page = ""
        self.authorization_url = ""
        self.location = ""

    async def open(self, url: str) -> None:
        self.authorization_url = url
        async with httpx.AsyncClient() as browser:
            page = await browser.get(url)
            assert page.status_code == 200, page.text
            self.consent_page = page.text
            r = await browser.post(
                url.split("?", 1)[0],
                data={
                    "request_id": hidden_field(page.text, "request_id"),
                    "csrf_token": hidden_field(page.text, "csrf_token"),
                    "email": self.email,
                    "password": PASSWORD,
                    "action": "allow",
                },
            )
        assert r.status_code == 303, r.text
        self.location = r.headers["location"]

    async def callback(self) -> AuthorizationCodeResult:
        query = query_of(self.location)
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


async def test_an_mcp_client_registers_itself_signs_the_user_in_and_calls_the_server(
    migrated_settings: Settings,
) -> None:
    auth_port, mcp_port = free_port(), free_port()
    settings: Settings = dcr_settings(migrated_settings, auth_port, mcp_port)
    async with (
        serving(create_auth(settings), port=auth_port) as auth_url,
        serving(create_mcp(settings), port=mcp_port),
        httpx.AsyncClient(base_url=auth_url, timeout=30) as http,
    ):
        email, _ = await AuthApi(base_url=auth_url, settings=settings, http=http).new_user()
        browser = Browser(email)
        storage = MemoryStorage()
        name = f"Assistant {uuid.uuid4().hex[:6]}"
        provider = OAuthClientProvider(
            server_url=resource_url(settings),
            client_metadata=OAuthClientMetadata(
                client_name=name,
                redirect_uris=[AnyUrl(CALLBACK)],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=storage,
            redirect_handler=browser.open,
            callback_handler=browser.callback,
        )
        async with (
            httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30, read=60)) as mcp_http,
            Client(streamable_http_client(resource_url(settings), http_client=mcp_http)) as client,
        ):
            tools = await client.list_tools()

        assert {tool.name for tool in tools.tools} >= {"search_titles", "recommend", "get_watchlist"}
        # It registered itself, as a public client, and the user was told it is a third party.
        assert storage.client_info is not None
        assert storage.client_info.client_secret is None
        assert name in browser.consent_page
        assert "third-party application" in browser.consent_page
        assert query_of(browser.authorization_url)["resource"] == resource_url(settings)
        # The token it got is for the MCP endpoint as well as for the system's audience.
        assert storage.tokens is not None
        async with httpx.AsyncClient(timeout=10) as jwks_http:
            principal = await TokenVerifier.from_settings(settings, jwks_http).verify(
                storage.tokens.access_token
            )
        assert principal.claims["aud"] == [settings.auth.audience, resource_url(settings)]
        assert principal.claims["client_id"] == storage.client_info.client_id
        me = await http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {storage.tokens.access_token}"}
        )
        assert me.json()["email"] == email
