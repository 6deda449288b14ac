"""The auth service's rate limits through its real endpoints (real Redis, real app)."""

from __future__ import annotations

import asyncio
import base64
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import ValidationError

from media_gateway.auth.app import create_app
from media_gateway.auth.limits import limit_login, limit_token_endpoint
from media_gateway.core.app import create_service_app
from media_gateway.core.ratelimit import install_rate_limiting
from media_gateway.core.settings import Settings
from tests.auth.conftest import ADMIN_TOKEN, CHEAP_ARGON2, PASSWORD, REDIRECT_URI
from tests.conftest import RUN_ID, make_settings
from tests.fakes.token_issuer import TestTokenIssuer
from tests.support import free_port, serving

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TLS = ssl.create_default_context()
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "X-RateLimit-Limit")


def _settings(migrated: Settings, port: int | None = None, **auth: Any) -> Settings:
    """This test's own Redis prefix, so budgets never leak between tests or into other suites."""
    values: dict[str, Any] = {
        "database_url": migrated.database_url,
        "redis": {"prefix": f"mgtest-{RUN_ID}-rl-{uuid.uuid4().hex[:8]}"},
        "admin_token": ADMIN_TOKEN,
        "auth": {**CHEAP_ARGON2, **auth},
    }
    if port is not None:
        values["service_urls"] = {"auth": f"http://127.0.0.1:{port}"}
    return make_settings(**values)


@dataclass
class Served:
    http: httpx.AsyncClient

    async def client(self, grant_types: list[str]) -> tuple[str, str]:
        r = await self.http.post(
            "/api/v1/admin/clients",
            json={"name": "rate test", "redirect_uris": [REDIRECT_URI], "grant_types": grant_types},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert r.status_code == 201, r.text
        return r.json()["client_id"], r.json()["client_secret"]

    async def client_credentials(self, creds: tuple[str, str]) -> httpx.Response:
        return await self.http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=creds)


@pytest.fixture(scope="module")
async def served(migrated_settings: Settings) -> AsyncIterator[Served]:
    port = free_port()
    app = create_app(_settings(migrated_settings, port))
    async with (
        serving(app, port=port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30, verify=TLS) as http,
    ):
        yield Served(http)


async def test_eleventh_token_request_in_a_minute_is_429(served: Served) -> None:
    first = await served.client(["client_credentials"])
    allowed = [await served.client_credentials(first) for _ in range(10)]
    assert [r.status_code for r in allowed] == [200] * 10, allowed[-1].text
    assert [r.headers["RateLimit-Remaining"] for r in allowed] == [str(n) for n in range(9, -1, -1)]
    assert all(r.headers["RateLimit-Limit"] == r.headers["X-RateLimit-Limit"] == "10" for r in allowed)

    rejected = await served.client_credentials(first)
    assert rejected.status_code == 429
    assert 1 <= int(rejected.headers["Retry-After"]) <= 6
    assert rejected.headers["RateLimit-Remaining"] == rejected.headers["X-RateLimit-Remaining"] == "0"
    assert int(rejected.headers["RateLimit-Reset"]) <= 60
    assert rejected.headers["Cache-Control"] == "no-store"
    assert rejected.json()["error"] == "too_many_requests"

    # Another client has a budget of its own.
    second = await served.client(["client_credentials"])
    other = await served.client_credentials(second)
    assert other.status_code == 200
    assert other.headers["RateLimit-Remaining"] == "9"


async def test_device_code_polls_do_not_count(served: Served) -> None:
    creds = await served.client([DEVICE_GRANT, "client_credentials"])
    started = await served.http.post("/auth/device", data={"scope": "openid"}, auth=creds)
    assert started.status_code == 200, started.text
    device_code = started.json()["device_code"]
    # A TV polling every 5 s makes 12 polls a minute; 15 quick ones are paced by slow_down only.
    for _ in range(15):
        poll = await served.http.post(
            "/auth/token", data={"grant_type": DEVICE_GRANT, "device_code": device_code}, auth=creds
        )
        assert poll.status_code == 400, poll.text
        assert poll.json()["error"] in ("authorization_pending", "slow_down")
        assert "RateLimit-Remaining" not in poll.headers
    token = await served.client_credentials(creds)
    assert token.status_code == 200
    assert token.headers["RateLimit-Remaining"] == "9"


async def test_device_authorization_allows_five_a_minute(served: Served) -> None:
    creds = await served.client([DEVICE_GRANT])
    answers = [await served.http.post("/auth/device", data={"scope": "openid"}, auth=creds) for _ in range(6)]
    assert [r.status_code for r in answers] == [200] * 5 + [429]
    assert answers[-1].json()["error"] == "too_many_requests"
    assert "Retry-After" in answers[-1].headers


async def test_authorize_allows_twenty_a_minute_and_annotates_html(served: Served) -> None:
    params = {"response_type": "code", "client_id": "no-such-client", "redirect_uri": REDIRECT_URI}
    answers = [await served.http.get("/auth/authorize", params=params) for _ in range(21)]
    assert all(r.status_code == 400 for r in answers[:20]), answers[0].text
    assert answers[0].headers["content-type"].startswith("text/html")
    assert answers[0].headers["RateLimit-Remaining"] == "19"
    assert answers[-1].status_code == 429
    assert answers[-1].json()["error"] == "too_many_requests"


async def test_login_allows_ten_a_minute_then_problem_json(served: Served) -> None:
    body = {"email": f"nobody-{uuid.uuid4().hex[:6]}@example.test", "password": "wrong password!"}
    answers = [await served.http.post("/api/v1/auth/login", json=body) for _ in range(11)]
    assert all(r.status_code in (400, 401) for r in answers[:10]), answers[0].text
    assert [r.headers["RateLimit-Remaining"] for r in answers[:10]] == [str(n) for n in range(9, -1, -1)]
    rejected = answers[-1]
    assert rejected.status_code == 429
    assert rejected.headers["content-type"].startswith("application/problem+json")
    assert rejected.json()["status"] == 429
    assert int(rejected.headers["Retry-After"]) >= 1


async def test_register_allows_five_an_hour(served: Served) -> None:
    answers = [
        await served.http.post(
            "/api/v1/auth/register",
            json={"email": f"reg-{uuid.uuid4().hex[:8]}@example.test", "password": PASSWORD},
        )
        for _ in range(6)
    ]
    assert [r.status_code for r in answers] == [202] * 5 + [429], answers[-1].text
    # One registration comes back every 12 minutes.
    assert 600 < int(answers[-1].headers["Retry-After"]) <= 720
    assert answers[-1].headers["content-type"].startswith("application/problem+json")


async def test_the_window_recovers(migrated_settings: Settings) -> None:
    # Windows scaled to 1/50: 10 token requests per 1.2 s.
    port = free_port()
    settings = _settings(migrated_settings, port, rate_limit_window_scale=0.02)
    async with (
        serving(create_app(settings), port=port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30, verify=TLS) as http,
    ):
        api = Served(http)
        creds = await api.client(["client_credentials"])
        for _ in range(30):
            answer = await api.client_credentials(creds)
            if answer.status_code == 429:
                break
            assert answer.status_code == 200, answer.text
        assert answer.status_code == 429, "the budget ran out"
        await asyncio.sleep(int(answer.headers["Retry-After"]))
        recovered = await api.client_credentials(creds)
        assert recovered.status_code == 200
        assert int(recovered.headers["RateLimit-Remaining"]) >= 1


def _in_process(app: FastAPI, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://auth.test", verify=TLS)


async def _logins_until_limited(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    body = {"email": f"nobody-{uuid.uuid4().hex[:6]}@example.test", "password": "wrong password!"}
    return await http.post("/api/v1/auth/login", json=body, headers=headers)


async def test_client_chosen_forwarded_headers_do_not_buy_a_new_budget(migrated_settings: Settings) -> None:
    app = create_app(_settings(migrated_settings))
    async with _in_process(app, "203.0.113.7") as http:
        answers = [
            await _logins_until_limited(http, {"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(11)
        ]
    assert answers[-1].status_code == 429


async def test_trusted_proxies_forward_the_client_address(migrated_settings: Settings) -> None:
    app = create_app(_settings(migrated_settings, trusted_proxies=["10.0.0.0/8"]))
    async with _in_process(app, "10.0.0.5") as http:
        alice = {"X-Forwarded-For": "evil-prefix, 198.51.100.1"}
        answers = [await _logins_until_limited(http, alice) for _ in range(11)]
        assert answers[-1].status_code == 429
        bob = await _logins_until_limited(http, {"X-Forwarded-For": "198.51.100.2"})
        assert bob.status_code in (400, 401)
        assert bob.headers["RateLimit-Remaining"] == "9"


async def test_without_redis_auth_endpoints_answer_503_never_unlimited(migrated_settings: Settings) -> None:
    settings = _settings(migrated_settings).model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    app = create_app(settings)
    async with _in_process(app, "203.0.113.8") as http:
        for _ in range(12):
            login = await _logins_until_limited(http, {})
            assert login.status_code == 503
            assert login.headers["content-type"].startswith("application/problem+json")
            assert int(login.headers["Retry-After"]) >= 1
        token = await http.post(
            "/auth/token", data={"grant_type": "client_credentials"}, auth=("some-client", "secret")
        )
        assert token.status_code == 503
        assert token.json()["error"] == "temporarily_unavailable"
        assert int(token.headers["Retry-After"]) >= 1


async def test_callers_are_told_apart_by_client_user_then_address(token_issuer: TestTokenIssuer) -> None:
    settings = make_settings(
        redis={"prefix": f"mgtest-{RUN_ID}-rl-{uuid.uuid4().hex[:8]}"},
        auth={**token_issuer.auth_settings(), "rate_limit_login_per_min": 2},
    )
    router = APIRouter()

    @router.post("/probe", dependencies=[Depends(limit_login)], status_code=204)
    async def probe() -> None:
        return None

    app = create_service_app("auth", settings, routers=[router])
    install_rate_limiting(app)

    async def statuses(headers: dict[str, str], times: int = 3) -> list[int]:
        return [(await http.post("/probe", headers=headers)).status_code for _ in range(times)]

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    basic = base64.b64encode(b"client-one:secret").decode()
    async with _in_process(app, "203.0.113.9") as http:
        assert await statuses(bearer(token_issuer.mint(uuid.uuid4()))) == [204, 204, 429]
        assert await statuses(bearer(token_issuer.mint(uuid.uuid4()))) == [204, 204, 429]
        assert await statuses({"Authorization": f"Basic {basic}"}) == [204, 204, 429]
        assert await statuses({}) == [204, 204, 429]
        # A token we cannot verify names nobody: the address (already spent) is charged.
        assert await statuses(bearer("not-a-jwt"), times=1) == [429]


async def test_the_token_limiter_leaves_the_body_for_the_route(migrated_settings: Settings) -> None:
    router = APIRouter()

    @router.post("/token-probe", dependencies=[Depends(limit_token_endpoint)])
    async def probe(request: Request) -> dict[str, Any]:
        form = await request.form()
        return {"grant_type": form.get("grant_type"), "body_bytes": len(await request.body())}

    app = create_service_app("auth", _settings(migrated_settings), routers=[router])
    install_rate_limiting(app)
    async with _in_process(app, "203.0.113.10") as http:
        normal = await http.post("/token-probe", data={"grant_type": "client_credentials"})
        assert normal.json() == {"grant_type": "client_credentials", "body_bytes": 29}
        assert normal.headers["RateLimit-Remaining"] == "9"
        poll = await http.post("/token-probe", data={"grant_type": DEVICE_GRANT, "device_code": "x"})
        assert poll.json()["grant_type"] == DEVICE_GRANT
        assert "RateLimit-Remaining" not in poll.headers
        # Smuggling a second grant_type does not buy an exemption.
        both = await http.post(
            "/token-probe",
            content=f"grant_type={DEVICE_GRANT}&grant_type=client_credentials",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert both.headers["RateLimit-Remaining"] == "8"


def test_a_mistyped_trusted_proxy_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match="does not appear to be"):
        Settings(auth={"trusted_proxies": ["10.0.0.0/33"]})  # type: ignore[arg-type]
    assert Settings(auth={"trusted_proxies": ["10.0.0.0/8", "::1"]}).auth.trusted_proxies == [  # type: ignore[arg-type]
        "10.0.0.0/8",
        "::1",
    ]
