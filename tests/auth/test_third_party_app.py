"""A third-party app signs a user in with a standard OAuth client library (Authlib), unchanged."""

from __future__ import annotations

import secrets

from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.auth.conftest import REDIRECT_URI, AuthApi, sign_in


async def _browser_signs_in(base_url: str, authorization_url: str, email: str) -> str:
    """The user's browser: follows the authorization URL, fills the sign-in page, lands on the app."""
    _, location = await sign_in(base_url, email, url=authorization_url)
    return location


async def test_authlib_client_runs_the_code_flow(auth_api: AuthApi) -> None:
    email, _ = await auth_api.new_user()
    registered = await auth_api.new_client(name="Third-party app", confidential=True)
    metadata = (await auth_api.http.get("/.well-known/oauth-authorization-server")).json()
    async with AsyncOAuth2Client(
        client_id=registered["client_id"],
        client_secret=registered["client_secret"],
        redirect_uri=REDIRECT_URI,
        scope="openid profile",
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    ) as app:
        code_verifier = secrets.token_urlsafe(48)
        url, state = app.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=code_verifier
        )
        callback = await _browser_signs_in(auth_api.base_url, url, email)
        token = await app.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=code_verifier,
            state=state,
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "openid profile"
        me = await app.get(f"{auth_api.base_url}/api/v1/users/me")
        assert me.status_code == 200
        assert me.json()["email"] == email
        refreshed = await app.refresh_token(metadata["token_endpoint"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        revoked = await app.revoke_token(metadata["revocation_endpoint"], token=refreshed["refresh_token"])
        assert revoked.status_code == 200
        r = await auth_api.token(
            {"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
            auth=(registered["client_id"], registered["client_secret"]),
        )
        assert r.json()["error"] == "invalid_grant"


async def test_authlib_public_client_with_pkce(auth_api: AuthApi) -> None:
    email, _ = await auth_api.new_user()
    registered = await auth_api.new_client(name="Mobile app", confidential=False)
    metadata = (await auth_api.http.get("/.well-known/openid-configuration")).json()
    async with AsyncOAuth2Client(
        client_id=registered["client_id"],
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as app:
        code_verifier = secrets.token_urlsafe(48)
        url, state = app.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=code_verifier
        )
        callback = await _browser_signs_in(auth_api.base_url, url, email)
        token = await app.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=code_verifier,
            state=state,
        )
        assert token["access_token"]
