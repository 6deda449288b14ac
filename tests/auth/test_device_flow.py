"""RFC 8628 device authorization: codes, polling states, approval by page and by API."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from media_gateway.auth.app import create_app
from media_gateway.core.settings import Settings
from tests.auth.conftest import PASSWORD, AuthApi, auth_test_settings, hidden_field
from tests.support import free_port, serving

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def _start(http: httpx.AsyncClient, client_id: str) -> dict[str, Any]:
    r = await http.post("/auth/device", data={"client_id": client_id, "scope": "openid profile"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _poll(http: httpx.AsyncClient, client_id: str, device_code: str) -> httpx.Response:
    return await http.post(
        "/auth/token", data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id}
    )


async def test_device_authorization_response(auth_api: AuthApi) -> None:
    client_id = auth_api.settings.auth.first_party_client_id
    body = await _start(auth_api.http, client_id)
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", body["user_code"])
    assert body["verification_uri"] == f"{auth_api.settings.token_issuer}/auth/device"
    assert body["verification_uri_complete"] == f"{body['verification_uri']}?user_code={body['user_code']}"
    assert body["expires_in"] == 900
    assert body["interval"] == 5
    assert len(body["device_code"]) >= 32


async def test_polling_pending_slow_down_then_tokens_exactly_once(auth_api: AuthApi) -> None:
    _, tokens = await auth_api.new_user()
    client_id = auth_api.settings.auth.first_party_client_id
    body = await _start(auth_api.http, client_id)
    r = await _poll(auth_api.http, client_id, body["device_code"])
    assert r.status_code == 400
    assert r.json()["error"] == "authorization_pending"
    r = await _poll(auth_api.http, client_id, body["device_code"])
    assert r.json()["error"] == "slow_down"
    assert r.json()["interval"] == 10
    r = await _poll(auth_api.http, client_id, body["device_code"])
    assert r.json()["error"] == "slow_down"
    assert r.json()["interval"] == 15
    r = await auth_api.http.post(
        "/auth/device/approve",
        json={"user_code": body["user_code"].lower()},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert r.status_code == 200, r.text
    polls = await asyncio.gather(*(_poll(auth_api.http, client_id, body["device_code"]) for _ in range(5)))
    granted = [p for p in polls if p.status_code == 200]
    assert len(granted) == 1
    assert {p.json()["error"] for p in polls if p.status_code != 200} == {"invalid_grant"}
    device_tokens = granted[0].json()
    assert device_tokens["scope"] == "openid profile"
    me = await auth_api.http.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {device_tokens['access_token']}"}
    )
    assert me.status_code == 200
    # A decided code cannot be approved again.
    r = await auth_api.http.post(
        "/auth/device/approve",
        json={"user_code": body["user_code"]},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert r.status_code == 404


async def test_device_page_approve_and_deny(auth_api: AuthApi) -> None:
    email, _ = await auth_api.new_user()
    client_id = auth_api.settings.auth.first_party_client_id
    approved, denied = await _start(auth_api.http, client_id), await _start(auth_api.http, client_id)
    async with httpx.AsyncClient(base_url=auth_api.base_url) as browser:
        page = await browser.get("/auth/device", params={"user_code": approved["user_code"]})
        assert page.status_code == 200
        assert approved["user_code"] in page.text
        form = {"user_code": approved["user_code"], "email": email, "password": PASSWORD, "action": "approve"}
        r = await browser.post("/auth/device/verify", data={**form, "csrf_token": "forged"})
        assert r.status_code == 400
        r = await browser.post(
            "/auth/device/verify",
            data={**form, "csrf_token": hidden_field(r.text, "csrf_token"), "password": "bad"},
        )
        assert r.status_code == 401
        r = await browser.post(
            "/auth/device/verify", data={**form, "csrf_token": hidden_field(r.text, "csrf_token")}
        )
        assert r.status_code == 200, r.text
        assert "connected" in r.text
        page = await browser.get("/auth/device")
        r = await browser.post(
            "/auth/device/verify",
            data={
                **form,
                "user_code": denied["user_code"],
                "action": "deny",
                "csrf_token": hidden_field(page.text, "csrf_token"),
            },
        )
        assert r.status_code == 200
    r = await _poll(auth_api.http, client_id, approved["device_code"])
    assert r.status_code == 200
    r = await _poll(auth_api.http, client_id, denied["device_code"])
    assert r.json()["error"] == "access_denied"


async def test_device_code_errors(auth_api: AuthApi) -> None:
    client_id = auth_api.settings.auth.first_party_client_id
    body = await _start(auth_api.http, client_id)
    other = await auth_api.new_client(confidential=False, grant_types=[DEVICE_GRANT])
    r = await _poll(auth_api.http, other["client_id"], body["device_code"])
    assert r.json()["error"] == "invalid_grant"
    r = await _poll(auth_api.http, client_id, "no-such-code")
    assert r.json()["error"] == "invalid_grant"
    no_device = await auth_api.new_client(confidential=False)
    r = await auth_api.http.post("/auth/device", data={"client_id": no_device["client_id"]})
    assert r.json()["error"] == "unauthorized_client"


async def test_expired_device_code(migrated_settings: Settings) -> None:
    port = free_port()
    settings = auth_test_settings(migrated_settings, port, device_code_ttl_sec=1)
    async with (
        serving(create_app(settings), port=port) as base_url,
        httpx.AsyncClient(base_url=base_url) as http,
    ):
        client_id = settings.auth.first_party_client_id
        body = await _start(http, client_id)
        await asyncio.sleep(1.2)
        r = await _poll(http, client_id, body["device_code"])
        assert r.status_code == 400
        assert r.json()["error"] == "expired_token"
