"""Authorization code with PKCE through the real sign-in page, and its failure modes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from media_gateway.auth.app import create_app
from media_gateway.core.settings import Settings
from tests.auth.conftest import (
    PASSWORD,
    REDIRECT_URI,
    AuthApi,
    auth_test_settings,
    hidden_field,
    pkce_pair,
    query_of,
)
from tests.support import free_port, serving


def _authorize_params(client_id: str, challenge: str, **overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v != "<omit>"}


async def _public_client(api: AuthApi, **fields: Any) -> str:
    client = await api.new_client(confidential=False, **fields)
    client_id: str = client["client_id"]
    return client_id


async def test_code_flow_with_a_public_client(auth_api: AuthApi) -> None:
    email, _ = await auth_api.new_user()
    client_id = await _public_client(auth_api)
    verifier, challenge = pkce_pair()
    code = await auth_api.authorize(client_id, challenge, email=email, scope="openid profile")
    r = await auth_api.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": verifier,
        }
    )
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["scope"] == "openid profile"
    assert tokens["refresh_token"]
    me = await auth_api.http.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["email"] == email


async def test_code_flow_with_a_confidential_client_and_basic_auth(auth_api: AuthApi) -> None:
    email, _ = await auth_api.new_user()
    client = await auth_api.new_client(confidential=True)
    verifier, challenge = pkce_pair()
    code = await auth_api.authorize(client["client_id"], challenge, email=email)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    r = await auth_api.token(data, auth=(client["client_id"], "wrong"))
    assert r.status_code == 401
    r = await auth_api.token(data, auth=(client["client_id"], client["client_secret"]))
    # The failed attempt above was rejected before the code was looked at: it still works once.
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("verifier_kind", "error"),
    [("wrong", "invalid_grant"), ("missing", "invalid_grant"), ("challenge-as-plain", "invalid_grant")],
)
async def test_pkce_verifier_failures(auth_api: AuthApi, verifier_kind: str, error: str) -> None:
    email, _ = await auth_api.new_user()
    client_id = await _public_client(auth_api)
    verifier, challenge = pkce_pair()
    code = await auth_api.authorize(client_id, challenge, email=email)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": client_id,
    }
    if verifier_kind == "wrong":
        data["code_verifier"] = pkce_pair()[0]
    elif verifier_kind == "challenge-as-plain":
        data["code_verifier"] = challenge
    r = await auth_api.token(data)
    assert r.status_code == 400
    assert r.json()["error"] == error
    # A failed exchange burns the code: the right verifier no longer helps.
    r = await auth_api.token({**data, "code_verifier": verifier})
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": "<omit>"}, "invalid_request"),
        ({"code_challenge": "<omit>", "code_challenge_method": "<omit>"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "admin"}, "invalid_scope"),
    ],
)
async def test_authorize_errors_go_back_to_the_redirect_uri_with_state(
    auth_api: AuthApi, overrides: dict[str, str], error: str
) -> None:
    client_id = await _public_client(auth_api)
    _, challenge = pkce_pair()
    r = await auth_api.http.get(
        "/auth/authorize", params=_authorize_params(client_id, challenge, **overrides)
    )
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == "xyz"
    assert query["iss"] == auth_api.settings.token_issuer


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        REDIRECT_URI + "/../evil",
        REDIRECT_URI + "?next=https://evil.example",
        REDIRECT_URI.replace("https", "http"),
        REDIRECT_URI.upper(),
        REDIRECT_URI + "#x",
        "//evil.example/callback",
    ],
)
async def test_redirect_uri_mismatch_never_redirects(auth_api: AuthApi, redirect_uri: str) -> None:
    client_id = await _public_client(auth_api)
    _, challenge = pkce_pair()
    params = _authorize_params(client_id, challenge, redirect_uri=redirect_uri)
    r = await auth_api.http.get("/auth/authorize", params=params)
    assert r.status_code == 400
    assert "location" not in r.headers
    assert "evil" not in r.text


async def test_unknown_client_and_missing_redirect_never_redirect(auth_api: AuthApi) -> None:
    _, challenge = pkce_pair()
    r = await auth_api.http.get("/auth/authorize", params=_authorize_params("nope", challenge))
    assert r.status_code == 400
    assert "location" not in r.headers
    two = await _public_client(auth_api, redirect_uris=[REDIRECT_URI, "https://other.example/cb"])
    r = await auth_api.http.get(
        "/auth/authorize", params=_authorize_params(two, challenge, redirect_uri="<omit>")
    )
    assert r.status_code == 400


async def test_code_replay_revokes_the_tokens_issued_from_it(auth_api: AuthApi) -> None:
    email, _ = await auth_api.new_user()
    client_id = await _public_client(auth_api)
    verifier, challenge = pkce_pair()
    code = await auth_api.authorize(client_id, challenge, email=email)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    first = await auth_api.token(data)
    assert first.status_code == 200
    replay = await auth_api.token(data)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    r = await auth_api.token(
        {
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": client_id,
        }
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    services = await auth_api.new_client(
        name="rs", redirect_uris=[], grant_types=["client_credentials"], scopes=["internal"]
    )
    r = await auth_api.http.post(
        "/auth/introspect",
        data={"token": first.json()["access_token"]},
        auth=(services["client_id"], services["client_secret"]),
    )
    assert r.json() == {"active": False}


async def test_code_is_bound_to_client_and_redirect_uri(auth_api: AuthApi) -> None:
    email, _ = await auth_api.new_user()
    client_id = await _public_client(auth_api)
    other = await _public_client(auth_api, redirect_uris=[REDIRECT_URI, "https://app.example.test/other"])
    verifier, challenge = pkce_pair()
    code = await auth_api.authorize(client_id, challenge, email=email)
    r = await auth_api.token(
        {"grant_type": "authorization_code", "code": code, "client_id": other, "code_verifier": verifier,
         "redirect_uri": REDIRECT_URI}
    )  # fmt: skip
    assert r.json()["error"] == "invalid_grant"
    code = await auth_api.authorize(client_id, challenge, email=email)
    r = await auth_api.token(
        {"grant_type": "authorization_code", "code": code, "client_id": client_id, "code_verifier": verifier,
         "redirect_uri": "https://app.example.test/other"}
    )  # fmt: skip
    assert r.json()["error"] == "invalid_grant"


async def test_sign_in_page_failures(auth_api: AuthApi) -> None:
    email, _ = await auth_api.new_user()
    client_id = await _public_client(auth_api, name='<script>alert("x")</script>')
    _, challenge = pkce_pair()
    async with httpx.AsyncClient(base_url=auth_api.base_url) as browser:
        page = await browser.get("/auth/authorize", params=_authorize_params(client_id, challenge))
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;" in page.text
        assert page.headers["x-frame-options"] == "DENY"
        request_id = hidden_field(page.text, "request_id")
        csrf = hidden_field(page.text, "csrf_token")
        form = {"request_id": request_id, "email": email, "password": PASSWORD, "action": "allow"}
        # No CSRF token, or a forged one: refused.
        r = await browser.post("/auth/authorize", data=form)
        assert r.status_code == 400
        r = await browser.post("/auth/authorize", data={**form, "csrf_token": "forged"})
        assert r.status_code == 400
        # Wrong password: the page again, with a fresh token, no redirect.
        r = await browser.post(
            "/auth/authorize", data={**form, "csrf_token": csrf, "password": "wrong password"}
        )
        assert r.status_code == 401
        assert "location" not in r.headers
        assert "Invalid email or password" in r.text
        csrf = hidden_field(r.text, "csrf_token")
        r = await browser.post("/auth/authorize", data={**form, "csrf_token": csrf, "action": "deny"})
        assert r.status_code == 303
        assert query_of(r.headers["location"]) | {"iss": ""} == {
            "error": "access_denied",
            "error_description": "the user denied the request",
            "state": "xyz",
            "iss": "",
        }
    async with httpx.AsyncClient(base_url=auth_api.base_url) as stranger:
        # A CSRF token from another browser (no cookie) does not work either.
        r = await stranger.post("/auth/authorize", data={**form, "csrf_token": csrf})
        assert r.status_code == 400


async def test_sign_in_page_offers_google_only_when_configured(
    auth_api: AuthApi, migrated_settings: Settings
) -> None:
    client_id = await _public_client(auth_api)
    _, challenge = pkce_pair()
    page = await auth_api.http.get("/auth/authorize", params=_authorize_params(client_id, challenge))
    assert "/auth/oauth/google/authorize" not in page.text
    port = free_port()
    settings = auth_test_settings(migrated_settings, port, google_client_id="google-client.example")
    async with (
        serving(create_app(settings), port=port) as base_url,
        httpx.AsyncClient(base_url=base_url) as http,
    ):
        page = await http.get("/auth/authorize", params=_authorize_params(client_id, challenge))
    request_id = hidden_field(page.text, "request_id")
    assert f'href="/auth/oauth/google/authorize?request_id={request_id}"' in page.text


async def test_repeated_parameters_are_invalid_requests(auth_api: AuthApi) -> None:
    client_id = await _public_client(auth_api)
    _, challenge = pkce_pair()
    params = [*_authorize_params(client_id, challenge).items(), ("scope", "openid"), ("scope", "profile")]
    r = await auth_api.http.get("/auth/authorize", params=params)
    assert r.status_code == 303
    assert query_of(r.headers["location"])["error"] == "invalid_request"
    r = await auth_api.http.post(
        "/auth/token",
        content=f"grant_type=refresh_token&refresh_token=a&refresh_token=b&client_id={client_id}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
