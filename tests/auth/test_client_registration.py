"""RFC 7591 dynamic client registration and RFC 8707 resource indicators, through the real auth app over
HTTP: a client registers itself, signs a user in for the MCP endpoint, and the token's `aud` says so."""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from media_gateway.auth.app import create_app
from media_gateway.core.security.tokens import InvalidTokenError, Principal, TokenVerifier
from media_gateway.core.settings import Settings
from media_gateway.mcp.auth import resource_url
from tests.auth.conftest import (
    ADMIN_TOKEN,
    AuthApi,
    auth_test_settings,
    pkce_pair,
    query_of,
    sign_in,
)
from tests.conftest import RUN_ID
from tests.support import free_port, serving

CALLBACK = "http://127.0.0.1:33418/callback"
UNLIMITED_REGISTRATION = {"rate_limit_client_registration_per_hour": 1_000_000}


@dataclass
class Dcr:
    api: AuthApi
    mcp_resource: str
    gateway_resource: str

    async def register(self, **metadata: Any) -> httpx.Response:
        body = {"client_name": "Test Assistant", "redirect_uris": [CALLBACK], **metadata}
        return await self.api.http.post("/auth/register", json=body)

    async def public_client(self, **metadata: Any) -> str:
        r = await self.register(token_endpoint_auth_method="none", **metadata)
        assert r.status_code == 201, r.text
        client_id: str = r.json()["client_id"]
        return client_id


def dcr_settings(migrated: Settings, auth_port: int, mcp_port: int, **auth: Any) -> Settings:
    settings = auth_test_settings(migrated, auth_port, **UNLIMITED_REGISTRATION, **auth)
    return settings.model_copy(
        update={
            "service_urls": settings.service_urls.model_copy(update={"mcp": f"http://127.0.0.1:{mcp_port}"})
        }
    )


@pytest.fixture(scope="module")
async def dcr(migrated_settings: Settings) -> AsyncIterator[Dcr]:
    port = free_port()
    settings = dcr_settings(migrated_settings, port, free_port())
    async with (
        serving(create_app(settings), port=port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        yield Dcr(
            api=AuthApi(base_url=base_url, settings=settings, http=http),
            mcp_resource=resource_url(settings),
            gateway_resource=settings.service_url("gateway"),
        )


def authorize_params(client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "state": "st-9",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def code_for(dcr: Dcr, client_id: str, email: str, **extra: str) -> tuple[str, str]:
    """(code, verifier) of a completed authorization request."""
    verifier, challenge = pkce_pair()
    _, location = await sign_in(
        dcr.api.base_url, email, params=authorize_params(client_id, challenge, **extra)
    )
    assert location.startswith(CALLBACK + "?"), location
    return query_of(location)["code"], verifier


async def verified(dcr: Dcr, token: str, audience: str | None = None) -> Principal:
    """The token checked by core.security's verifier, as every service does (JWKS over HTTP)."""
    settings = dcr.api.settings
    if audience is not None:
        settings = settings.model_copy(
            update={"auth": settings.auth.model_copy(update={"audience": audience})}
        )
    async with httpx.AsyncClient(timeout=10) as http:
        return await TokenVerifier.from_settings(settings, http).verify(token)


def error_of(r: httpx.Response) -> str:
    error: str = r.json()["error"]
    return error


# Registration ----------------------------------------------------------------------------------------


async def test_metadata_advertises_the_registration_endpoint_and_no_service_scopes(dcr: Dcr) -> None:
    issuer = dcr.api.settings.token_issuer
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        metadata = (await dcr.api.http.get(path)).json()
        assert metadata["registration_endpoint"] == f"{issuer}/auth/register"
        # MCP clients ask for every advertised scope; the services' own must not be among them.
        assert set(metadata["scopes_supported"]) == {"openid", "profile", "email", "offline_access"}


async def test_a_public_client_registers_signs_a_user_in_for_the_mcp_endpoint(dcr: Dcr) -> None:
    email, _ = await dcr.api.new_user()
    r = await dcr.register(
        token_endpoint_auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        scope="openid profile offline_access",
        # Members we do not act on are ignored (RFC 7591 §2), not refused.
        application_type="native",
        logo_uri="https://assistant.example.test/logo.png",
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    registered = r.json()
    assert "client_secret" not in registered
    assert registered["token_endpoint_auth_method"] == "none"
    assert registered["redirect_uris"] == [CALLBACK]
    assert registered["grant_types"] == ["authorization_code", "refresh_token"]
    assert registered["response_types"] == ["code"]
    assert registered["scope"] == "openid profile offline_access"
    assert registered["client_name"] == "Test Assistant"
    assert isinstance(registered["client_id_issued_at"], int)
    client_id = registered["client_id"]

    verifier, challenge = pkce_pair()
    params = authorize_params(client_id, challenge, resource=dcr.mcp_resource, scope="openid profile")
    page, location = await sign_in(dcr.api.base_url, email, params=params)
    assert "Test Assistant" in page
    assert "third-party application" in page
    assert "127.0.0.1:33418" in page
    code = query_of(location)["code"]
    r = await dcr.api.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": dcr.mcp_resource,
        }
    )
    assert r.status_code == 200, r.text
    access = r.json()["access_token"]
    principal = await verified(dcr, access)
    assert principal.claims["aud"] == [dcr.api.settings.auth.audience, dcr.mcp_resource]
    assert principal.claims["client_id"] == client_id
    assert principal.scopes == {"openid", "profile"}
    # A resource server that checks its own identifier (RFC 9728) accepts it too ...
    assert (await verified(dcr, access, audience=dcr.mcp_resource)).subject == principal.subject
    # ... and the user is the one who signed in.
    me = await dcr.api.http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {access}"})
    assert me.json()["email"] == email

    clients = await dcr.api.http.get(
        "/api/v1/admin/clients", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    listed = next(c for c in clients.json() if c["client_id"] == client_id)
    assert listed["self_registered"] is True
    assert listed["confidential"] is False


async def test_a_public_client_must_use_pkce(dcr: Dcr) -> None:
    client_id = await dcr.public_client()
    params = authorize_params(client_id, "x" * 43)
    del params["code_challenge"]
    async with httpx.AsyncClient(base_url=dcr.api.base_url) as browser:
        r = await browser.get("/auth/authorize", params=params)
    assert r.status_code == 303
    assert query_of(r.headers["location"])["error"] == "invalid_request"


async def test_a_confidential_client_gets_its_secret_once_and_authenticates_with_it(dcr: Dcr) -> None:
    email, _ = await dcr.api.new_user()
    r = await dcr.register(token_endpoint_auth_method="client_secret_post")
    assert r.status_code == 201, r.text
    registered = r.json()
    secret = registered["client_secret"]
    assert registered["client_secret_expires_at"] == 0
    # The RFC 7591 default grant is the code grant alone.
    assert registered["grant_types"] == ["authorization_code"]
    client_id = registered["client_id"]
    code, verifier = await code_for(dcr, client_id, email)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    assert (await dcr.api.token({**data, "client_secret": "wrong"})).status_code == 401
    r = await dcr.api.token({**data, "client_secret": secret})
    assert r.status_code == 200, r.text
    # A self-registered client acts only for a user: no client_credentials, nor a grant it did not ask for.
    for grant in ("client_credentials", "refresh_token"):
        r = await dcr.api.token({"grant_type": grant, "refresh_token": "x"}, auth=(client_id, secret))
        assert r.status_code == 400, r.text
        assert error_of(r) == "unauthorized_client"


async def test_the_basic_auth_default_method_gets_a_secret(dcr: Dcr) -> None:
    r = await dcr.register()
    assert r.status_code == 201, r.text
    assert r.json()["token_endpoint_auth_method"] == "client_secret_basic"
    assert r.json()["client_secret"]


@pytest.mark.parametrize(
    "redirect_uris",
    [
        [],
        ["http://assistant.example.test/callback"],
        ["https://assistant.example.test/callback#fragment"],
        ["com.example.assistant:/callback"],
        ["https://trusted.example.test@evil.example.test/callback"],
        ["/callback"],
        ["https:///callback"],
        ["http://127.0.0.1:99999/callback"],
        [CALLBACK, "javascript:alert(1)"],
    ],
)
async def test_bad_redirect_uris_are_invalid_redirect_uri(dcr: Dcr, redirect_uris: list[str]) -> None:
    r = await dcr.register(token_endpoint_auth_method="none", redirect_uris=redirect_uris)
    assert r.status_code == 400, r.text
    assert error_of(r) == "invalid_redirect_uri"
    assert r.json()["error_description"]


async def test_loopback_redirect_uris_may_be_http(dcr: Dcr) -> None:
    uris = [
        "http://localhost:8765/cb",
        "http://[::1]:8765/cb",
        "http://127.0.0.1/cb",
        "https://a.example.test/cb",
    ]
    r = await dcr.register(token_endpoint_auth_method="none", redirect_uris=uris)
    assert r.status_code == 201, r.text
    assert r.json()["redirect_uris"] == uris


@pytest.mark.parametrize(
    "metadata",
    [
        {"scope": "openid admin"},
        {"scope": "internal"},
        {"grant_types": ["client_credentials"]},
        {"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]},
        {"grant_types": ["authorization_code", "implicit"]},
        {"grant_types": ["refresh_token"]},
        {"grant_types": []},
        {"response_types": ["token"]},
        {"response_types": ["code", "id_token"]},
        {"token_endpoint_auth_method": "private_key_jwt"},
        {"token_endpoint_auth_method": 7},
        {"redirect_uris": CALLBACK},
        {"client_name": "Bad\nname"},
        {"client_name": "x" * 201},
    ],
)
async def test_bad_client_metadata_is_invalid_client_metadata(dcr: Dcr, metadata: dict[str, Any]) -> None:
    r = await dcr.register(**metadata)
    assert r.status_code == 400, r.text
    assert error_of(r) == "invalid_client_metadata"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"not json", "application/json"), (b"[1, 2]", "application/json"), (b"client_name=x", "text/plain")],
)
async def test_a_body_that_is_not_a_json_object_is_invalid_client_metadata(
    dcr: Dcr, content: bytes, content_type: str
) -> None:
    r = await dcr.api.http.post("/auth/register", content=content, headers={"content-type": content_type})
    assert r.status_code == 400, r.text
    assert error_of(r) == "invalid_client_metadata"


async def test_a_self_registered_client_cannot_ask_a_user_for_service_scopes(dcr: Dcr) -> None:
    client_id = await dcr.public_client()
    _, challenge = pkce_pair()
    async with httpx.AsyncClient(base_url=dcr.api.base_url) as browser:
        r = await browser.get("/auth/authorize", params=authorize_params(client_id, challenge, scope="admin"))
    assert r.status_code == 303
    assert query_of(r.headers["location"])["error"] == "invalid_scope"


async def test_the_consent_page_of_a_first_party_client_has_no_third_party_notice(dcr: Dcr) -> None:
    client = await dcr.api.new_client(name="Operator app", confidential=False, redirect_uris=[CALLBACK])
    _, challenge = pkce_pair()
    async with httpx.AsyncClient(base_url=dcr.api.base_url) as browser:
        page = await browser.get("/auth/authorize", params=authorize_params(client["client_id"], challenge))
    assert page.status_code == 200
    assert "Operator app" in page.text
    assert "third-party application" not in page.text


# Registration settings ---------------------------------------------------------------------------------


StartAuth = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def served(migrated_settings: Settings) -> AsyncIterator[StartAuth]:
    """Starts auth apps with the given auth settings, each with a Redis prefix (rate budgets) of its own."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**auth: Any) -> httpx.AsyncClient:
            port = free_port()
            settings = auth_test_settings(migrated_settings, port, **auth)
            prefix = f"mgtest-{RUN_ID}-dcr-{uuid.uuid4().hex[:8]}"
            settings = settings.model_copy(
                update={"redis": settings.redis.model_copy(update={"prefix": prefix})}
            )
            base_url = await stack.enter_async_context(serving(create_app(settings), port=port))
            return await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=30))

        yield start


async def test_registration_can_be_turned_off(served: StartAuth) -> None:
    http = await served(client_registration_enabled=False)
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert "registration_endpoint" not in metadata
    assert "registration_endpoint" not in (await http.get("/.well-known/openid-configuration")).json()
    r = await http.post(
        "/auth/register", json={"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}
    )
    assert r.status_code == 403, r.text
    assert error_of(r) == "access_denied"


async def test_an_initial_access_token_can_be_required(served: StartAuth) -> None:
    iat = "initial-" + uuid.uuid4().hex
    http = await served(registration_access_token=iat, **UNLIMITED_REGISTRATION)
    assert "registration_endpoint" in (await http.get("/.well-known/oauth-authorization-server")).json()
    body = {"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}
    basic = base64.b64encode(f"x:{iat}".encode()).decode()
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {iat}x"},
        {"Authorization": f"Basic {basic}"},
    ):
        r = await http.post("/auth/register", json=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert error_of(r) == "invalid_token"
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = await http.post("/auth/register", json=body, headers={"Authorization": f"Bearer {iat}"})
    assert r.status_code == 201, r.text


async def test_registration_is_rate_limited_per_client_address(served: StartAuth) -> None:
    http = await served(rate_limit_client_registration_per_hour=2)
    body = {"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}
    for _ in range(2):
        assert (await http.post("/auth/register", json=body)).status_code == 201
    # Made-up credentials do not buy a budget of their own.
    for user in ("a", "b"):
        basic = base64.b64encode(f"{user}:pw".encode()).decode()
        r = await http.post("/auth/register", json=body, headers={"Authorization": f"Basic {basic}"})
        assert r.status_code == 429, r.text
        assert error_of(r) == "too_many_requests"
        assert int(r.headers["retry-after"]) > 0


# Resource indicators (RFC 8707) ----------------------------------------------------------------------


async def test_a_foreign_or_malformed_resource_is_invalid_target_at_the_authorization_endpoint(
    dcr: Dcr,
) -> None:
    client_id = await dcr.public_client()
    _, challenge = pkce_pair()
    async with httpx.AsyncClient(base_url=dcr.api.base_url) as browser:
        for resource in ("https://evil.example.test/mcp", "/mcp", f"{dcr.mcp_resource}#x", "urn:foo"):
            params = authorize_params(client_id, challenge, resource=resource)
            r = await browser.get("/auth/authorize", params=params)
            assert r.status_code == 303, (resource, r.text)
            query = query_of(r.headers["location"])
            assert query["error"] == "invalid_target", resource
            assert query["state"] == "st-9"
        repeated: list[tuple[str, str | int | float | bool | None]] = [
            *authorize_params(client_id, challenge).items(),
            ("resource", dcr.mcp_resource),
            ("resource", dcr.gateway_resource),
        ]
        r = await browser.get("/auth/authorize", params=repeated)
        assert query_of(r.headers["location"])["error"] == "invalid_target"


async def test_a_token_request_cannot_name_another_resource_than_the_code(dcr: Dcr) -> None:
    email, _ = await dcr.api.new_user()
    client_id = await dcr.public_client(grant_types=["authorization_code", "refresh_token"])
    base = {"grant_type": "authorization_code", "redirect_uri": CALLBACK, "client_id": client_id}
    # A foreign resource is refused before the code is spent ...
    code, verifier = await code_for(dcr, client_id, email, resource=dcr.mcp_resource)
    r = await dcr.api.token(
        {**base, "code": code, "code_verifier": verifier, "resource": "https://evil.example.test/"}
    )
    assert error_of(r) == "invalid_target"
    # ... one of ours that the code was not for is refused too.
    r = await dcr.api.token(
        {**base, "code": code, "code_verifier": verifier, "resource": dcr.gateway_resource}
    )
    assert r.status_code == 400
    assert error_of(r) == "invalid_target"
    # A code granted without a resource cannot be widened to one at the token endpoint.
    code, verifier = await code_for(dcr, client_id, email)
    r = await dcr.api.token({**base, "code": code, "code_verifier": verifier, "resource": dcr.mcp_resource})
    assert error_of(r) == "invalid_target"
    # Without a resource the token carries the system audience only, as before.
    code, verifier = await code_for(dcr, client_id, email)
    r = await dcr.api.token({**base, "code": code, "code_verifier": verifier})
    assert r.status_code == 200, r.text
    principal = await verified(dcr, r.json()["access_token"])
    assert principal.claims["aud"] == dcr.api.settings.auth.audience
    with pytest.raises(InvalidTokenError):
        await verified(dcr, r.json()["access_token"], audience=dcr.mcp_resource)


async def test_a_refresh_keeps_the_resource_and_cannot_change_it(dcr: Dcr) -> None:
    email, _ = await dcr.api.new_user()
    client_id = await dcr.public_client(grant_types=["authorization_code", "refresh_token"])
    code, verifier = await code_for(dcr, client_id, email, resource=dcr.mcp_resource)
    r = await dcr.api.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": client_id,
            "code_verifier": verifier,
        }
    )
    assert r.status_code == 200, r.text
    # The resource named at the authorization endpoint binds the grant even when the token request omits it.
    assert (await verified(dcr, r.json()["access_token"])).claims["aud"][1] == dcr.mcp_resource
    refresh = r.json()["refresh_token"]
    for other in (dcr.gateway_resource, "https://evil.example.test/mcp"):
        r = await dcr.api.token(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "client_id": client_id,
                "resource": other,
            }
        )
        assert r.status_code == 400, r.text
        assert error_of(r) == "invalid_target"
    # The refused requests did not use the refresh token up (no reuse detection fired either).
    r = await dcr.api.token(
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": client_id,
            "resource": dcr.mcp_resource + "/",
        }
    )
    assert r.status_code == 200, r.text
    aud = (await verified(dcr, r.json()["access_token"])).claims["aud"]
    assert aud == [dcr.api.settings.auth.audience, dcr.mcp_resource]
    r = await dcr.api.token(
        {"grant_type": "refresh_token", "refresh_token": r.json()["refresh_token"], "client_id": client_id}
    )
    assert r.status_code == 200, r.text
    assert (await verified(dcr, r.json()["access_token"])).claims["aud"][1] == dcr.mcp_resource


async def test_client_credentials_accept_one_of_our_resources_only(dcr: Dcr) -> None:
    client = await dcr.api.new_client(
        name="worker", grant_types=["client_credentials"], scopes=["catalog:read"], redirect_uris=[]
    )
    creds = (client["client_id"], client["client_secret"])
    r = await dcr.api.token(
        {"grant_type": "client_credentials", "resource": dcr.gateway_resource}, auth=creds
    )
    assert r.status_code == 200, r.text
    aud = (await verified(dcr, r.json()["access_token"])).claims["aud"]
    assert aud == [dcr.api.settings.auth.audience, dcr.gateway_resource]
    for resource in ("https://evil.example.test", "not a uri", f"{dcr.gateway_resource}#f"):
        r = await dcr.api.token({"grant_type": "client_credentials", "resource": resource}, auth=creds)
        assert r.status_code == 400, r.text
        assert error_of(r) == "invalid_target"


async def test_the_device_grant_takes_no_resource(dcr: Dcr) -> None:
    client = await dcr.api.new_client(
        confidential=False, grant_types=["urn:ietf:params:oauth:grant-type:device_code"]
    )
    started = await dcr.api.http.post("/auth/device", data={"client_id": client["client_id"]})
    assert started.status_code == 200, started.text
    data = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": started.json()["device_code"],
        "client_id": client["client_id"],
    }
    r = await dcr.api.token({**data, "resource": dcr.mcp_resource})
    assert error_of(r) == "invalid_target"
    assert error_of(await dcr.api.token(data)) == "authorization_pending"
