"""Rate limiting shared by every service: a GCRA limiter in Redis (one Lua script, one round trip),
the `RateLimit-*` / `X-RateLimit-*` response headers, and the client address behind trusted proxies.

GCRA ("generic cell rate algorithm") keeps one timestamp per key, the theoretical arrival time of
the next request. `limit` requests per `window` may come in a burst; after that one more is allowed
every `window / limit`, so the budget refills smoothly instead of all at once at a window edge.
Redis's own clock is used, so every replica of a service agrees on time.

No business rules live here: callers pick the key, the limit and the window, and decide what a
rejection looks like (`RateLimitRejected` carries a ready response).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from media_gateway.core.metrics import metric_set

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# KEYS[1] the bucket; ARGV limit, window (µs), cost. Returns {allowed, remaining, reset_after µs,
# retry_after µs}. The timestamp is stored with 3 decimals so it reads back exactly.
_GCRA_SCRIPT = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local interval = window / limit
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + interval * cost
local allow_at = new_tat - window
if allow_at > now then
  return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
end
local reset_after = new_tat - now
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(reset_after / 1000) + 1)
local remaining = math.floor((now - allow_at) / interval + 0.000001)
return {1, remaining, math.ceil(reset_after), 0}
"""


class RateLimiterUnavailable(Exception):
    """The limiter's store cannot be reached; callers must refuse the request, not allow it."""


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    # Until the whole budget is back.
    reset_after_sec: float
    # Until the next request would be allowed; 0 when this one was.
    retry_after_sec: float

    def headers(self, *, now: float | None = None) -> dict[str, str]:
        """`RateLimit-*` (IETF draft: Reset in seconds from now), the older `X-RateLimit-*`
        (Reset as a Unix time, the GitHub convention), and `Retry-After` when rejected."""
        reset_in = math.ceil(self.reset_after_sec)
        wall = time.time() if now is None else now
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(reset_in),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(wall + self.reset_after_sec)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_sec)))
        return headers


class RateLimiter:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._script = redis.register_script(_GCRA_SCRIPT)

    async def hit(self, key: str, limit: int, window_sec: float, *, cost: int = 1) -> RateLimitDecision:
        """Count `cost` requests against `key` if the budget allows; atomic and one round trip."""
        if limit < 1 or window_sec <= 0:
            raise ValueError("limit must be >= 1 and window_sec > 0")
        if not 1 <= cost <= limit:
            raise ValueError("cost must be between 1 and the limit")
        window_us = max(1, round(window_sec * 1_000_000))
        try:
            allowed, remaining, reset_us, retry_us = await self._script(
                keys=[key], args=[limit, window_us, cost]
            )
        except (RedisError, OSError) as exc:
            raise RateLimiterUnavailable(str(exc) or type(exc).__name__) from exc
        return RateLimitDecision(
            allowed=bool(allowed),
            limit=limit,
            remaining=int(remaining),
            reset_after_sec=int(reset_us) / 1_000_000,
            retry_after_sec=int(retry_us) / 1_000_000,
        )


class RateLimitMetrics:
    """Decisions per policy: `allowed`, `limited`, or `unavailable` (the store was down)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "mg_rate_limit_decisions_total",
            "Rate-limit decisions",
            ["service", "policy", "outcome"],
            registry=registry,
        )

    @classmethod
    def of(cls, registry: CollectorRegistry) -> RateLimitMetrics:
        return metric_set(registry, cls, cls)

    def record(self, service: str, policy: str, outcome: str) -> None:
        self.decisions.labels(service, policy, outcome).inc()


class RateLimitRejected(Exception):
    """Raised by a limit check; the app answers with `response` (429, or 503 without a store)."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"rate limit: {response.status_code}")
        self.response = response


_STATE_KEY = "rate_limit_decision"


def remember_decision(request: HTTPConnection, decision: RateLimitDecision) -> None:
    """Make the response of this request carry the decision's headers (see the middleware)."""
    setattr(request.state, _STATE_KEY, decision)


class RateLimitHeadersMiddleware:
    """Adds the headers of the request's last allowed decision to whatever response is sent.

    A dependency cannot add headers to a `Response` an endpoint returns itself (a redirect, an
    HTML page, an OAuth JSON body), so they are added here on the way out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Request.state writes into this dict; making it first keeps the same object end to end.
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = state.get(_STATE_KEY)
                if isinstance(decision, RateLimitDecision):
                    headers = MutableHeaders(scope=message)
                    for name, value in decision.headers().items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_rate_limiting(app: FastAPI) -> None:
    """The response side of rate limiting: rejections rendered, allowed responses annotated."""

    async def on_rejected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RateLimitRejected)
        return exc.response

    app.add_exception_handler(RateLimitRejected, on_rejected)
    app.add_middleware(RateLimitHeadersMiddleware)


@functools.lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or bare addresses) to networks; a typo raises ValueError rather than trusting less."""
    return _networks(tuple(cidrs))


def _parse_ip(value: str) -> IPAddress | None:
    value = value.strip().strip('"')
    if value.startswith("["):
        # Forwarded: "[2001:db8::1]:4711"
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        # IPv4 with a port: "192.0.2.1:8080"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_for(values: Sequence[str]) -> list[str]:
    """The `for=` of each element of RFC 7239 `Forwarded` headers, in order."""
    hops: list[str] = []
    for value in values:
        for element in value.split(","):
            node = ""
            for pair in element.split(";"):
                name, _, raw = pair.partition("=")
                if name.strip().lower() == "for":
                    node = raw.strip()
            hops.append(node)
    return hops


def _x_forwarded_for(values: Sequence[str]) -> list[str]:
    return [hop.strip() for value in values for hop in value.split(",")]


def client_ip(
    request: HTTPConnection,
    trusted_proxies: Sequence[IPNetwork],
    *,
    header: str = "x-forwarded-for",
) -> str:
    """The address of the client: the direct peer, unless the peer is one of our trusted proxies,
    in which case the forwarded chain is walked from the right past every trusted hop.

    Entries left of the first untrusted hop were written by the client and are never believed."""
    peer = _parse_ip(request.client.host) if request.client else None
    if peer is None:
        return request.client.host if request.client else "unknown"

    def trusted(address: IPAddress) -> bool:
        return any(address in network for network in trusted_proxies)

    if not trusted_proxies or not trusted(peer):
        return str(peer)
    values = request.headers.getlist(header)
    hops = _forwarded_for(values) if header.lower() == "forwarded" else _x_forwarded_for(values)
    client = peer
    for hop in reversed(hops):
        if not trusted(client):
            break
        address = _parse_ip(hop)
        if address is None:
            # Something a trusted proxy could not name (`unknown`, an obfuscated id): stop there.
            break
        client = address
    return str(client)


def ip_bucket(ip: str) -> str:
    """The unit an address is limited by: one IPv4 address, or an IPv6 /64 (one subscriber's
    prefix, which a client could otherwise walk through to get fresh budgets)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
