"""The real auth app served over HTTP on this run's database, with cheap argon2 parameters."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from media_gateway.auth.app import create_app
from media_gateway.core.settings import Settings
from tests.conftest import make_settings
from tests.support import free_port, serving

ADMIN_TOKEN = "test-admin-token"
CHEAP_ARGON2 = {"password_hash_time_cost": 1, "password_hash_memory_kib": 64, "password_hash_parallelism": 1}
# These tests exercise the grants; the rate limits have their own tests (test_rate_limit.py).
UNLIMITED = {
    "rate_limit_token_per_min": 1_000_000,
    "rate_limit_device_per_min": 1_000_000,
    "rate_limit_authorize_per_min": 1_000_000,
    "rate_limit_login_per_min": 1_000_000,
    "rate_limit_register_per_hour": 1_000_000,
}
PASSWORD = "correct horse battery staple"
REDIRECT_URI = "https://app.example.test/callback"


def auth_test_settings(migrated: Settings, port: int, **auth: Any) -> Settings:
    return make_settings(
        database_url=migrated.database_url,
        redis=migrated.redis.model_dump(),
        admin_token=ADMIN_TOKEN,
        service_urls={"auth": f"http://127.0.0.1:{port}"},
        auth={**CHEAP_ARGON2, **UNLIMITED, **auth},
    )


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden_field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def sign_in(
    base_url: str, email: str, *, params: dict[str, str] | None = None, url: str = "/auth/authorize"
) -> tuple[str, str]:
    """Like a browser: opens the sign-in and consent page, signs in and allows.
    Returns (the page's html, the redirect location)."""
    async with httpx.AsyncClient(base_url=base_url) as browser:
        page = await browser.get(url, params=params)
        assert page.status_code == 200, page.text
        r = await browser.post(
            "/auth/authorize",
            data={
                "request_id": hidden_field(page.text, "request_id"),
                "csrf_token": hidden_field(page.text, "csrf_token"),
                "email": email,
                "password": PASSWORD,
                "action": "allow",
            },
        )
    assert r.status_code == 303, r.text
    location: str = r.headers["location"]
    return page.text, location


@dataclass
class AuthApi:
    base_url: str
    settings: Settings
    http: httpx.AsyncClient

    async def new_user(self, password: str = PASSWORD) -> tuple[str, dict[str, Any]]:
        """A registered account (email) and the tokens of its first login."""
        email = f"user-{uuid.uuid4().hex[:10]}@example.test"
        r = await self.http.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert r.status_code == 202, r.text
        r = await self.http.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return email, r.json()

    async def new_client(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Test app", "redirect_uris": [REDIRECT_URI], **fields}
        r = await self.http.post(
            "/api/v1/admin/clients", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert r.status_code == 201, r.text
        client: dict[str, Any] = r.json()
        return client

    async def authorize(
        self, client_id: str, challenge: str, *, email: str, state: str = "st-1", scope: str | None = None
    ) -> str:
        """Drives the sign-in page like a browser; returns the `code` sent to the redirect_uri."""
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if scope:
            params["scope"] = scope
        _, location = await sign_in(self.base_url, email, params=params)
        assert location.startswith(REDIRECT_URI + "?")
        query = query_of(location)
        assert query["state"] == state
        return query["code"]

    async def token(self, data: dict[str, str], auth: tuple[str, str] | None = None) -> httpx.Response:
        return await self.http.post("/auth/token", data=data, auth=auth)


@pytest.fixture(scope="session")
async def auth_api(migrated_settings: Settings) -> AsyncIterator[AuthApi]:
    port = free_port()
    settings = auth_test_settings(migrated_settings, port)
    async with (
        serving(create_app(settings), port=port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        yield AuthApi(base_url=base_url, settings=settings, http=http)
