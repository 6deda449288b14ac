"""Google sign-in end to end: the real auth app over HTTP, a fake Google that signs real ID tokens,
and a browser (httpx with cookies) following the redirects; the client finally holds OUR tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from media_gateway.auth.app import create_app
from media_gateway.core.db import make_engine
from media_gateway.core.redis import redis_key
from media_gateway.core.security.tokens import TokenVerifier
from media_gateway.core.settings import Settings
from tests.auth.conftest import (
    ADMIN_TOKEN,
    CHEAP_ARGON2,
    PASSWORD,
    REDIRECT_URI,
    hidden_field,
    pkce_pair,
    query_of,
)
from tests.conftest import REDIS_URL, RUN_ID, make_settings
from tests.fakes.google_server import FakeGoogle, GoogleUser
from tests.support import free_port, serving

CALLBACK = "/auth/oauth/google/callback"
# Made once: every httpx client would otherwise load the trust store again (~70 ms each).
TLS = ssl.create_default_context()
# High limits: these tests sign in many times a minute from one address.
GENEROUS_LIMITS = {
    "rate_limit_authorize_per_min": 10_000,
    "rate_limit_login_per_min": 10_000,
    "rate_limit_register_per_hour": 10_000,
    "rate_limit_token_per_min": 10_000,
}


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_google(google: FakeGoogle) -> None:
    google.reset()


@dataclass
class GoogleFlow:
    base_url: str
    settings: Settings
    http: httpx.AsyncClient
    client: dict[str, Any]

    async def start(self, *, state: str = "client-state") -> tuple[httpx.AsyncClient, str, str]:
        """A browser at our sign-in page, sent on to Google: (browser, Google URL, code_verifier)."""
        verifier, challenge = pkce_pair()
        browser = httpx.AsyncClient(base_url=self.base_url, timeout=30, verify=TLS)
        page = await browser.get(
            "/auth/authorize",
            params={
                "response_type": "code",
                "client_id": self.client["client_id"],
                "redirect_uri": REDIRECT_URI,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        assert page.status_code == 200, page.text
        link = re.search(r'href="(/auth/oauth/google/authorize\?[^"]+)"', page.text)
        assert link, "the sign-in page links to Google sign-in"
        assert query_of(html.unescape(link.group(1)))["request_id"] == hidden_field(page.text, "request_id")
        to_google = await browser.get(html.unescape(link.group(1)))
        assert to_google.status_code == 302, to_google.text
        return browser, to_google.headers["location"], verifier

    async def through_google(self, browser: httpx.AsyncClient, google_url: str) -> httpx.Response:
        """Google's page, then its redirect back to our callback; returns the callback's answer."""
        back = await browser.get(google_url)
        assert back.status_code == 302, back.text
        assert back.headers["location"].startswith(f"{self.base_url}{CALLBACK}?")
        return await browser.get(back.headers["location"])

    async def sign_in(self, *, state: str = "client-state") -> dict[str, Any]:
        """The whole flow; returns OUR token response."""
        browser, google_url, verifier = await self.start(state=state)
        async with aclosing(browser):
            done = await self.through_google(browser, google_url)
        assert done.status_code == 302, done.text
        location = done.headers["location"]
        assert location.startswith(REDIRECT_URI + "?")
        query = query_of(location)
        assert query["state"] == state
        tokens = await self.http.post(
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(self.client["client_id"], self.client["client_secret"]),
        )
        assert tokens.status_code == 200, tokens.text
        body: dict[str, Any] = tokens.json()
        return body

    async def verify(self, access_token: str) -> uuid.UUID:
        principal = await TokenVerifier.from_settings(self.settings, self.http).verify(access_token)
        assert principal.user_id is not None
        return principal.user_id


@pytest.fixture(scope="module")
async def flow(migrated_settings: Settings, google: FakeGoogle) -> AsyncIterator[GoogleFlow]:
    port = free_port()
    settings = make_settings(
        database_url=migrated_settings.database_url,
        redis={"prefix": f"mgtest-{RUN_ID}-google"},
        admin_token=ADMIN_TOKEN,
        service_urls={"auth": f"http://127.0.0.1:{port}"},
        auth={**CHEAP_ARGON2, **GENEROUS_LIMITS, **google.auth_settings()},
    )
    async with (
        serving(create_app(settings), port=port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30, verify=TLS) as http,
    ):
        r = await http.post(
            "/api/v1/admin/clients",
            json={"name": "Google test app", "redirect_uris": [REDIRECT_URI]},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert r.status_code == 201, r.text
        # As in Google's console: only our callback URL is registered.
        google.redirect_uris = {f"{base_url}{CALLBACK}"}
        yield GoogleFlow(base_url=base_url, settings=settings, http=http, client=r.json())


async def _identity_user(settings: Settings, subject: str) -> uuid.UUID | None:
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT user_id FROM auth.user_identities WHERE provider = 'google' AND subject = :s"),
                {"s": subject},
            )
            user_id: uuid.UUID | None = result.scalar_one_or_none()
            return user_id
    finally:
        await engine.dispose()


async def _user_row(settings: Settings, user_id: uuid.UUID) -> Any:
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT email, email_verified, password_hash, display_name FROM auth.users WHERE id = :id"
                ),
                {"id": user_id},
            )
            return result.first()
    finally:
        await engine.dispose()


def _new_google_user(**fields: Any) -> GoogleUser:
    return GoogleUser(
        sub=str(uuid.uuid4().int)[:21], email=f"g-{uuid.uuid4().hex[:10]}@gmail.example", **fields
    )


async def test_google_sign_in_ends_with_our_tokens_for_a_new_user(
    flow: GoogleFlow, google: FakeGoogle
) -> None:
    google.user = _new_google_user(name="Grace Hopper")
    tokens = await flow.sign_in()

    user_id = await flow.verify(tokens["access_token"])
    assert str(user_id) != google.user.sub
    assert "refresh_token" in tokens
    # Signed by us, not a Google token passed through.
    assert jwt.get_unverified_header(tokens["access_token"])["kid"] != google.key.kid
    assert not tokens["access_token"].startswith("ya29.")
    assert await _identity_user(flow.settings, google.user.sub) == user_id
    row = await _user_row(flow.settings, user_id)
    assert row.email == google.user.email
    assert row.email_verified is True
    assert row.password_hash is None
    assert row.display_name == "Grace Hopper"

    # What we sent Google: PKCE S256, state, nonce, the OpenID scopes; then the verifier.
    sent = google.authorize_requests()[-1]
    assert sent["scope"] == "openid email profile"
    assert sent["code_challenge_method"] == "S256"
    assert sent["nonce"]
    assert sent["state"]
    assert sent["redirect_uri"] == f"{flow.base_url}{CALLBACK}"
    exchange = google.token_requests()[-1]
    verifier = exchange.form["code_verifier"]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == sent["code_challenge"]
    assert exchange.client_auth == "client_secret_post"
    assert google.userinfo_calls >= 1


async def test_returning_google_user_gets_the_same_account(flow: GoogleFlow, google: FakeGoogle) -> None:
    google.user = _new_google_user()
    first = await flow.verify((await flow.sign_in())["access_token"])
    # A new email at Google does not make a new account: the subject is the identity.
    google.user.email = f"renamed-{uuid.uuid4().hex[:6]}@gmail.example"
    second = await flow.verify((await flow.sign_in())["access_token"])
    assert first == second


async def test_concurrent_first_sign_ins_make_one_account(flow: GoogleFlow, google: FakeGoogle) -> None:
    google.user = _new_google_user()
    results = await asyncio.gather(flow.sign_in(state="a"), flow.sign_in(state="b"))
    users = {await flow.verify(r["access_token"]) for r in results}
    assert len(users) == 1


async def test_verified_email_links_an_existing_password_account(
    flow: GoogleFlow, google: FakeGoogle
) -> None:
    email = f"linked-{uuid.uuid4().hex[:8]}@example.test"
    r = await flow.http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 202, r.text
    login = await flow.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    password_user = await flow.verify(login.json()["access_token"])

    google.user = GoogleUser(sub=str(uuid.uuid4().int)[:21], email=email.upper())
    google_user = await flow.verify((await flow.sign_in())["access_token"])

    assert google_user == password_user
    # The password was set by someone who never proved the address; Google's owner wins.
    again = await flow.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert again.status_code in (400, 401), again.text
    refreshed = await flow.http.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": login.json()["refresh_token"]},
    )
    assert refreshed.status_code in (400, 401), refreshed.text


async def test_unverified_google_email_is_not_linked(flow: GoogleFlow, google: FakeGoogle) -> None:
    email = f"victim-{uuid.uuid4().hex[:8]}@example.test"
    r = await flow.http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 202, r.text
    google.user = GoogleUser(sub=str(uuid.uuid4().int)[:21], email=email, email_verified=False)

    browser, google_url, _ = await flow.start()
    async with aclosing(browser):
        answer = await flow.through_google(browser, google_url)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "verified" in answer.json()["detail"]
    assert await _identity_user(flow.settings, google.user.sub) is None
    login = await flow.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text


@pytest.mark.parametrize(
    "fault", ["bad_signature", "wrong_aud", "wrong_issuer", "expired", "wrong_nonce", "no_nonce"]
)
async def test_bad_id_tokens_are_refused(flow: GoogleFlow, google: FakeGoogle, fault: Any) -> None:
    google.user = _new_google_user()
    google.id_token_fault = fault
    browser, google_url, _ = await flow.start()
    async with aclosing(browser):
        answer = await flow.through_google(browser, google_url)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "ID token" in answer.json()["detail"]
    assert await _identity_user(flow.settings, google.user.sub) is None


async def test_access_denied_at_google_is_a_403(flow: GoogleFlow, google: FakeGoogle) -> None:
    google.deny = True
    browser, google_url, _ = await flow.start()
    async with aclosing(browser):
        answer = await flow.through_google(browser, google_url)
        assert answer.status_code == 403
        assert "access_denied" in answer.json()["detail"]
        # The state was used up: replaying the callback is refused too.
        replay = await browser.get(answer.request.url)
        assert replay.status_code == 400
    assert google.token_requests() == []


async def test_unknown_and_replayed_state_are_refused(flow: GoogleFlow, google: FakeGoogle) -> None:
    google.user = _new_google_user()
    browser, google_url, _ = await flow.start()
    async with aclosing(browser):
        back = await browser.get(google_url)
        callback = back.headers["location"]
        forged = re.sub(r"state=[^&]+", "state=not-a-state-we-made", callback)
        unknown = await browser.get(forged)
        assert unknown.status_code == 400
        assert "state" in unknown.json()["detail"]
        assert (await browser.get(callback)).status_code == 302
        assert (await browser.get(callback)).status_code == 400


async def test_expired_state_is_refused(flow: GoogleFlow, google: FakeGoogle) -> None:
    google.user = _new_google_user()
    browser, google_url, _ = await flow.start()
    state = query_of(google_url)["state"]
    key = redis_key(flow.settings, "auth", "google", "state", state)
    redis = aioredis.from_url(REDIS_URL)
    try:
        ttl = await redis.ttl(key)
        assert 590 <= ttl <= 600, "state is kept for 10 minutes"
        await redis.pexpire(key, 1)
        await asyncio.sleep(0.01)
    finally:
        await redis.aclose()
    async with aclosing(browser):
        answer = await flow.through_google(browser, google_url)
    assert answer.status_code == 400
    assert "expired" in answer.json()["detail"]
    assert google.token_requests() == []


async def test_callback_from_another_browser_is_refused(flow: GoogleFlow, google: FakeGoogle) -> None:
    google.user = _new_google_user()
    browser, google_url, _ = await flow.start()
    async with aclosing(browser):
        back = await browser.get(google_url)
    async with httpx.AsyncClient(timeout=30, verify=TLS) as other_browser:
        answer = await other_browser.get(back.headers["location"])
    assert answer.status_code == 400
    assert "another browser" in answer.json()["detail"]
    assert await _identity_user(flow.settings, google.user.sub) is None


async def test_sign_in_needs_a_pending_authorization_request(flow: GoogleFlow) -> None:
    missing = await flow.http.get("/auth/oauth/google/authorize")
    assert missing.status_code == 400
    assert "request_id" in missing.json()["detail"]
    unknown = await flow.http.get("/auth/oauth/google/authorize", params={"request_id": "nope"})
    assert unknown.status_code == 400


async def test_userinfo_outage_does_not_stop_sign_in(flow: GoogleFlow, google: FakeGoogle) -> None:
    google.user = _new_google_user(name="From The ID Token")
    google.userinfo_fails = True
    user_id = await flow.verify((await flow.sign_in())["access_token"])
    assert (await _user_row(flow.settings, user_id)).display_name == "From The ID Token"


async def test_a_code_google_refuses_is_a_400(flow: GoogleFlow, google: FakeGoogle) -> None:
    browser, google_url, _ = await flow.start()
    state = query_of(google_url)["state"]
    async with aclosing(browser):
        # Straight back to the callback with a code Google never issued.
        answer = await browser.get(CALLBACK, params={"state": state, "code": "4/0A-forged"})
    assert answer.status_code == 400
    assert "refused" in answer.json()["detail"]
    assert google.token_requests()[-1].form["code"] == "4/0A-forged"


async def test_google_outage_at_the_code_exchange_is_a_502(flow: GoogleFlow, google: FakeGoogle) -> None:
    google.user = _new_google_user()
    google.token_endpoint_fails = True
    browser, google_url, _ = await flow.start()
    async with aclosing(browser):
        answer = await flow.through_google(browser, google_url)
    assert answer.status_code == 502
    assert await _identity_user(flow.settings, google.user.sub) is None


def test_plain_google_env_vars_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLIENT_ID", "plain-id.apps.googleusercontent.com")
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", "plain-secret")
    monkeypatch.delenv("MG_AUTH__GOOGLE_CLIENT_ID", raising=False)
    settings = Settings()
    assert settings.auth.google_client_id == "plain-id.apps.googleusercontent.com"
    assert settings.auth.google_client_secret.get_secret_value() == "plain-secret"
    # The MG_ name wins when both are set.
    monkeypatch.setenv("MG_AUTH__GOOGLE_CLIENT_ID", "mg-id")
    assert Settings().auth.google_client_id == "mg-id"
    assert Settings().auth.google_client_secret.get_secret_value() == "plain-secret"


async def test_without_a_google_client_id_sign_in_is_off(migrated_settings: Settings) -> None:
    settings = make_settings(
        database_url=migrated_settings.database_url, redis={"prefix": f"mgtest-{RUN_ID}-google-off"}
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test", verify=TLS) as http:
        for path in ("/auth/oauth/google/authorize", CALLBACK):
            answer = await http.get(path, params={"request_id": "x", "state": "y", "code": "z"})
            assert answer.status_code == 404
            assert "not configured" in answer.json()["detail"]
