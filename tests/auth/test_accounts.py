"""Registration, login, logout and the profile at /api/v1/users/me."""

from __future__ import annotations

import uuid

from tests.auth.conftest import PASSWORD, AuthApi


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_and_login_do_not_reveal_whether_an_account_exists(auth_api: AuthApi) -> None:
    email, _ = await auth_api.new_user()
    fresh = f"new-{uuid.uuid4().hex[:8]}@example.test"
    again = await auth_api.http.post(
        "/api/v1/auth/register", json={"email": email, "password": "another password"}
    )
    new = await auth_api.http.post("/api/v1/auth/register", json={"email": fresh, "password": PASSWORD})
    assert again.status_code == new.status_code == 202
    assert again.json() == new.json()
    # The existing account keeps its password.
    r = await auth_api.http.post("/api/v1/auth/login", json={"email": email, "password": "another password"})
    assert r.status_code == 401
    unknown = await auth_api.http.post(
        "/api/v1/auth/login", json={"email": f"nobody-{uuid.uuid4().hex}@example.test", "password": PASSWORD}
    )
    assert unknown.status_code == 401
    assert {k: v for k, v in r.json().items() if k != "request_id"} == {
        k: v for k, v in unknown.json().items() if k != "request_id"
    }
    # Email addresses are case-insensitive.
    r = await auth_api.http.post("/api/v1/auth/login", json={"email": email.upper(), "password": PASSWORD})
    assert r.status_code == 200


async def test_register_validates_input(auth_api: AuthApi) -> None:
    for body in (
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "a@example.test", "password": "short"},
        {"email": "a@example.test"},
    ):
        r = await auth_api.http.post("/api/v1/auth/register", json=body)
        assert r.status_code == 422
        assert PASSWORD not in r.text


async def test_profile_read_and_update(auth_api: AuthApi) -> None:
    email, tokens = await auth_api.new_user()
    headers = _bearer(tokens["access_token"])
    r = await auth_api.http.get("/api/v1/users/me", headers=headers)
    assert r.status_code == 200
    profile = r.json()
    assert profile["email"] == email
    assert set(profile) == {
        "id", "email", "email_verified", "display_name", "region", "platforms", "favourite_genres",
        "max_certification",
    }  # fmt: skip
    update = {
        "display_name": "Ana",
        "region": "gb",
        "platforms": ["netflix", "hulu", "netflix"],
        "favourite_genres": ["science fiction", "Drama"],
        "max_certification": "pg-13",
    }
    r = await auth_api.http.patch("/api/v1/users/me", headers=headers, json=update)
    assert r.status_code == 200, r.text
    assert r.json() | {"id": None} == {
        "id": None,
        "email": email,
        "email_verified": False,
        "display_name": "Ana",
        "region": "GB",
        "platforms": ["netflix", "hulu"],
        "favourite_genres": ["Science Fiction", "Drama"],
        "max_certification": "PG-13",
    }
    r = await auth_api.http.patch("/api/v1/users/me", headers=headers, json={"max_certification": None})
    assert r.json()["max_certification"] is None
    assert r.json()["region"] == "GB"


async def test_profile_update_rejects_unknown_values(auth_api: AuthApi) -> None:
    _, tokens = await auth_api.new_user()
    headers = _bearer(tokens["access_token"])
    for body in (
        {"platforms": ["myspace"]},
        {"favourite_genres": ["Nonsense"]},
        {"region": "GBR"},
        {"max_certification": "XXX"},
        {"email": "other@example.test"},
    ):
        r = await auth_api.http.patch("/api/v1/users/me", headers=headers, json=body)
        assert r.status_code == 422, body


async def test_profile_needs_a_user_token(auth_api: AuthApi) -> None:
    r = await auth_api.http.get("/api/v1/users/me")
    assert r.status_code == 401
    r = await auth_api.http.get("/api/v1/users/me", headers=_bearer("not.a.token"))
    assert r.status_code == 401


async def test_logout_revokes_the_session_family(auth_api: AuthApi) -> None:
    email, tokens = await auth_api.new_user()
    client_id = auth_api.settings.auth.first_party_client_id
    r = await auth_api.http.post("/api/v1/auth/logout", headers=_bearer(tokens["access_token"]))
    assert r.status_code == 204
    r = await auth_api.token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    # Another session of the same user is untouched.
    r = await auth_api.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    other = r.json()
    r = await auth_api.token(
        {"grant_type": "refresh_token", "refresh_token": other["refresh_token"], "client_id": client_id}
    )
    assert r.status_code == 200


async def test_logout_with_a_refresh_token_of_another_session(auth_api: AuthApi) -> None:
    email, first = await auth_api.new_user()
    r = await auth_api.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    second = r.json()
    r = await auth_api.http.post(
        "/api/v1/auth/logout",
        headers=_bearer(first["access_token"]),
        json={"refresh_token": second["refresh_token"]},
    )
    assert r.status_code == 204
    client_id = auth_api.settings.auth.first_party_client_id
    for tokens in (first, second):
        r = await auth_api.token(
            {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
        )
        assert r.json()["error"] == "invalid_grant"


async def test_third_party_tokens_without_profile_scope_cannot_read_the_profile(auth_api: AuthApi) -> None:
    from tests.auth.conftest import REDIRECT_URI, pkce_pair

    email, _ = await auth_api.new_user()
    client = await auth_api.new_client(confidential=False)
    verifier, challenge = pkce_pair()
    code = await auth_api.authorize(client["client_id"], challenge, email=email, scope="openid")
    r = await auth_api.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client["client_id"],
            "code_verifier": verifier,
        }
    )
    token = r.json()["access_token"]
    r = await auth_api.http.get("/api/v1/users/me", headers=_bearer(token))
    assert r.status_code == 403
    assert 'scope="profile"' in r.headers["www-authenticate"]
    r = await auth_api.http.patch("/api/v1/users/me", headers=_bearer(token), json={"display_name": "x"})
    assert r.status_code == 403
    # Nor may it approve a device code for our own client.
    device = await auth_api.http.post(
        "/auth/device", data={"client_id": auth_api.settings.auth.first_party_client_id}
    )
    r = await auth_api.http.post(
        "/auth/device/approve", headers=_bearer(token), json={"user_code": device.json()["user_code"]}
    )
    assert r.status_code == 403
