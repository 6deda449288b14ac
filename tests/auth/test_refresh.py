"""Refresh-token rotation, reuse detection (RFC 9700 §4.14.2) and atomic rotation under concurrency."""

from __future__ import annotations

import asyncio

import httpx

from media_gateway.auth.app import create_app
from media_gateway.core.settings import Settings
from tests.auth.conftest import AuthApi, auth_test_settings
from tests.support import free_port, serving


def _refresh(api: AuthApi, token: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": api.settings.auth.first_party_client_id,
    }


async def test_refresh_rotates_and_reuse_revokes_the_family(auth_api: AuthApi) -> None:
    _, tokens = await auth_api.new_user()
    first = tokens["refresh_token"]
    r = await auth_api.token(_refresh(auth_api, first))
    assert r.status_code == 200, r.text
    second = r.json()["refresh_token"]
    assert second != first
    assert r.json()["access_token"] != tokens["access_token"]
    r = await auth_api.token(_refresh(auth_api, second))
    assert r.status_code == 200
    third = r.json()["refresh_token"]
    # The first token again: a reuse. It fails, and so does the newest token of the family.
    r = await auth_api.token(_refresh(auth_api, first))
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    r = await auth_api.token(_refresh(auth_api, third))
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


async def test_refresh_token_is_bound_to_its_client_and_scope(auth_api: AuthApi) -> None:
    _, tokens = await auth_api.new_user()
    other = await auth_api.new_client(confidential=False)
    r = await auth_api.token(
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": other["client_id"],
        }
    )
    assert r.json()["error"] == "invalid_grant"
    r = await auth_api.token({**_refresh(auth_api, tokens["refresh_token"]), "scope": "openid admin"})
    assert r.json()["error"] == "invalid_scope"
    r = await auth_api.token({**_refresh(auth_api, tokens["refresh_token"]), "scope": "openid"})
    assert r.status_code == 200
    assert r.json()["scope"] == "openid"


async def test_fifty_concurrent_refreshes_give_exactly_one_success(auth_api: AuthApi) -> None:
    _, tokens = await auth_api.new_user()
    data = _refresh(auth_api, tokens["refresh_token"])
    responses = await asyncio.gather(*(auth_api.token(data) for _ in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(400) == 49
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}


async def test_user_access_token_carries_the_contract_claims(auth_api: AuthApi) -> None:
    import jwt

    _, tokens = await auth_api.new_user()
    header = jwt.get_unverified_header(tokens["access_token"])
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert header["kid"]
    assert header["alg"] == "RS256"
    assert claims["iss"] == auth_api.settings.token_issuer
    assert claims["aud"] == auth_api.settings.auth.audience
    assert claims["exp"] == claims["iat"] + 3600
    assert claims["token_use"] == "user"
    assert claims["client_id"] == auth_api.settings.auth.first_party_client_id
    assert claims["scope"] == tokens["scope"]
    assert claims["jti"]
    me = await auth_api.http.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert claims["sub"] == me.json()["id"]


async def test_introspecting_a_refresh_token_follows_its_rotation(auth_api: AuthApi) -> None:
    _, tokens = await auth_api.new_user()
    rs = await auth_api.new_client(
        name="rs", redirect_uris=[], grant_types=["client_credentials"], scopes=["x"]
    )
    creds = (rs["client_id"], rs["client_secret"])
    r = await auth_api.http.post("/auth/introspect", data={"token": tokens["refresh_token"]}, auth=creds)
    info = r.json()
    assert info["active"] is True
    assert info["token_type"] == "refresh_token"
    assert info["client_id"] == auth_api.settings.auth.first_party_client_id
    await auth_api.token(_refresh(auth_api, tokens["refresh_token"]))
    r = await auth_api.http.post("/auth/introspect", data={"token": tokens["refresh_token"]}, auth=creds)
    assert r.json() == {"active": False}


async def test_key_reloads_never_starve_token_requests_of_connections(migrated_settings: Settings) -> None:
    # Keys reread on every use and a two-connection pool: a reload that waited for a connection
    # while the grants hold both would time out every request.
    port = free_port()
    settings = auth_test_settings(migrated_settings, port, keys_reload_sec=0.0)
    settings = settings.model_copy(
        update={"database": settings.database.model_copy(update={"pool_size": 2, "max_overflow": 0})}
    )
    async with (
        serving(create_app(settings), port=port) as base_url,
        httpx.AsyncClient(base_url=base_url) as http,
    ):
        api = AuthApi(base_url=base_url, settings=settings, http=http)
        sessions = [(await api.new_user())[1] for _ in range(2)]
        chains = [s["refresh_token"] for s in sessions]

        async def rotate(index: int) -> int:
            for _ in range(5):
                r = await api.token(_refresh(api, chains[index]))
                if r.status_code != 200:
                    return r.status_code
                chains[index] = r.json()["refresh_token"]
            return 200

        assert await asyncio.gather(*(rotate(i) for i in range(len(chains)))) == [200] * len(chains)
