"""The generic Redis limiter (real Redis), its response headers, and the client address rules."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.requests import Request as StarletteRequest

from media_gateway.core.ratelimit import (
    RateLimitDecision,
    RateLimiter,
    RateLimiterUnavailable,
    RateLimitRejected,
    client_ip,
    install_rate_limiting,
    ip_bucket,
    parse_networks,
    remember_decision,
)
from tests.conftest import REDIS_URL, RUN_ID
from tests.support import free_port


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def _key() -> str:
    return f"mgtest-{RUN_ID}:core:rl:{uuid.uuid4().hex}"


async def test_allows_the_limit_then_rejects_with_retry_after(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    key = _key()
    decisions = [await limiter.hit(key, 10, 60) for _ in range(11)]

    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert [d.remaining for d in decisions] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    rejected = decisions[-1]
    # One more request is allowed every window/limit = 6 s.
    assert 5 < rejected.retry_after_sec <= 6
    assert 59 < rejected.reset_after_sec <= 60
    assert decisions[0].retry_after_sec == 0
    # Redis expires the bucket once it has fully refilled.
    ttl_ms = await redis.pttl(key)
    assert 59_000 < ttl_ms <= 61_000


async def test_keys_have_separate_budgets(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    first, second = _key(), _key()
    for _ in range(3):
        assert (await limiter.hit(first, 3, 60)).allowed
    assert not (await limiter.hit(first, 3, 60)).allowed
    assert (await limiter.hit(second, 3, 60)).allowed


async def test_budget_recovers_after_retry_after(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    key = _key()
    for _ in range(2):
        assert (await limiter.hit(key, 2, 0.4)).allowed
    rejected = await limiter.hit(key, 2, 0.4)
    assert not rejected.allowed
    await asyncio.sleep(rejected.retry_after_sec + 0.02)
    recovered = await limiter.hit(key, 2, 0.4)
    assert recovered.allowed
    assert recovered.remaining == 0


async def test_rejected_hits_do_not_consume_budget(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    key = _key()
    await limiter.hit(key, 1, 0.3)
    for _ in range(5):
        assert not (await limiter.hit(key, 1, 0.3)).allowed
    await asyncio.sleep(0.32)
    assert (await limiter.hit(key, 1, 0.3)).allowed


async def test_concurrent_hits_never_exceed_the_limit(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    key = _key()
    decisions = await asyncio.gather(*(limiter.hit(key, 10, 60) for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))


async def test_cost_and_bad_arguments(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    key = _key()
    assert (await limiter.hit(key, 5, 60, cost=3)).remaining == 2
    assert not (await limiter.hit(key, 5, 60, cost=3)).allowed
    with pytest.raises(ValueError, match="cost"):
        await limiter.hit(key, 5, 60, cost=6)
    with pytest.raises(ValueError, match="limit"):
        await limiter.hit(key, 0, 60)


async def test_unreachable_redis_raises_instead_of_allowing() -> None:
    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        with pytest.raises(RateLimiterUnavailable):
            await RateLimiter(dead).hit(_key(), 10, 60)
    finally:
        await dead.aclose()


def test_decision_headers() -> None:
    allowed = RateLimitDecision(True, 10, 7, reset_after_sec=18.2, retry_after_sec=0)
    headers = allowed.headers(now=1_000_000.0)
    assert headers == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "7",
        "RateLimit-Reset": "19",
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "7",
        "X-RateLimit-Reset": "1000019",
    }
    rejected = RateLimitDecision(False, 10, 0, reset_after_sec=60, retry_after_sec=0.2)
    assert rejected.headers()["Retry-After"] == "1"
    assert rejected.headers()["RateLimit-Remaining"] == "0"


def _request(peer: str, headers: dict[str, str] | list[tuple[str, str]]) -> StarletteRequest:
    items = headers.items() if isinstance(headers, dict) else headers
    return StarletteRequest(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(k.lower().encode(), v.encode()) for k, v in items],
            "client": (peer, 50000),
        }
    )


TRUSTED = parse_networks(["10.0.0.0/8", "fd00::/8"])


def test_client_ip_ignores_forwarded_headers_from_untrusted_peers() -> None:
    spoofed = _request("203.0.113.9", {"X-Forwarded-For": "198.51.100.1"})
    assert client_ip(spoofed, TRUSTED) == "203.0.113.9"
    assert client_ip(spoofed, ()) == "203.0.113.9"


def test_client_ip_walks_the_chain_from_the_right() -> None:
    # The client prepended a fake entry; the trusted proxies appended what they saw.
    request = _request("10.0.0.2", {"X-Forwarded-For": "1.2.3.4, 198.51.100.7, 10.0.0.1"})
    assert client_ip(request, TRUSTED) == "198.51.100.7"
    # Several header lines are one list.
    split = _request("10.0.0.2", [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "198.51.100.7")])
    assert client_ip(split, TRUSTED) == "198.51.100.7"
    # Only trusted hops: the leftmost is as far as we can see.
    internal = _request("10.0.0.2", {"X-Forwarded-For": "10.1.1.1, 10.0.0.1"})
    assert client_ip(internal, TRUSTED) == "10.1.1.1"
    # A trusted proxy without the header is itself the client.
    assert client_ip(_request("10.0.0.2", {}), TRUSTED) == "10.0.0.2"


def test_client_ip_reads_rfc7239_forwarded_only_when_configured() -> None:
    request = _request(
        "10.0.0.2",
        {
            "Forwarded": 'for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711"',
            "X-Forwarded-For": "198.51.100.7",
        },
    )
    assert client_ip(request, TRUSTED, header="forwarded") == "2001:db8:cafe::17"
    assert client_ip(request, TRUSTED) == "198.51.100.7"
    obfuscated = _request("10.0.0.2", {"Forwarded": "for=192.0.2.60, for=_hidden"})
    assert client_ip(obfuscated, TRUSTED, header="forwarded") == "10.0.0.2"
    with_port = _request("10.0.0.2", {"Forwarded": 'for="192.0.2.61:8080"'})
    assert client_ip(with_port, TRUSTED, header="forwarded") == "192.0.2.61"


def test_client_ip_normalizes_mapped_addresses_and_buckets_ipv6() -> None:
    assert client_ip(_request("::ffff:198.51.100.3", {}), TRUSTED) == "198.51.100.3"
    assert ip_bucket("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert ip_bucket("198.51.100.3") == "198.51.100.3"
    with pytest.raises(ValueError, match="does not appear to be"):
        parse_networks(["10.0.0.0/33"])


def _limited_app(redis: aioredis.Redis, limit: int) -> FastAPI:
    limiter = RateLimiter(redis)
    key = _key()

    async def limited(request: Request) -> None:
        decision = await limiter.hit(key, limit, 60)
        if not decision.allowed:
            raise RateLimitRejected(HTMLResponse("slow down", 429, headers=decision.headers()))
        remember_decision(request, decision)

    app = FastAPI(dependencies=[Depends(limited)])
    install_rate_limiting(app)

    @app.get("/json")
    async def as_json() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/redirect")
    async def as_redirect() -> RedirectResponse:
        return RedirectResponse("https://example.test/next", status_code=302)

    @app.get("/html")
    async def as_html() -> HTMLResponse:
        return HTMLResponse("<p>hi</p>")

    return app


async def test_headers_reach_every_kind_of_response(redis: aioredis.Redis) -> None:
    app = _limited_app(redis, 4)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        remaining = []
        for path in ("/json", "/redirect", "/html"):
            response = await http.get(path)
            assert response.status_code in (200, 302)
            assert response.headers["RateLimit-Limit"] == "4"
            assert response.headers["X-RateLimit-Limit"] == "4"
            assert "Retry-After" not in response.headers
            remaining.append(int(response.headers["RateLimit-Remaining"]))
        assert remaining == [3, 2, 1]
        assert (await http.get("/json")).headers["RateLimit-Remaining"] == "0"
        rejected = await http.get("/json")
        assert rejected.status_code == 429
        assert rejected.text == "slow down"
        assert int(rejected.headers["Retry-After"]) >= 1
        assert rejected.headers["RateLimit-Remaining"] == "0"
