"""Per-tier rate limits at the gateway: anonymous callers by address, users by user, OAuth clients by
client id. Upstreams keep their own narrower limits (auth's login and token endpoints)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final, Literal

from starlette.requests import HTTPConnection

from media_gateway.core.app import ServiceContext
from media_gateway.core.errors import problem_response
from media_gateway.core.ratelimit import (
    RateLimitDecision,
    RateLimiter,
    RateLimiterUnavailable,
    RateLimitMetrics,
    RateLimitRejected,
    client_ip,
    ip_bucket,
    parse_networks,
)
from media_gateway.core.redis import redis_key
from media_gateway.core.security.tokens import Principal

logger = logging.getLogger(__name__)

Tier = Literal["anonymous", "user", "client"]
WINDOW_SEC: Final = 60.0


@dataclass(frozen=True)
class Caller:
    tier: Tier
    # The address bucket, user id or client id the tier counts by.
    subject: str


def caller_of(request: HTTPConnection, ctx: ServiceContext, principal: Principal | None) -> Caller:
    if principal is not None and principal.user_id is not None:
        return Caller("user", str(principal.user_id))
    if principal is not None:
        return Caller("client", principal.client_id or principal.subject)
    return Caller("anonymous", ip_bucket(forwarded_client_ip(request, ctx)))


def forwarded_client_ip(request: HTTPConnection, ctx: ServiceContext) -> str:
    gateway = ctx.settings.gateway
    return client_ip(request, parse_networks(gateway.trusted_proxies), header=gateway.forwarded_header)


class TierLimiter:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._limiter = RateLimiter(ctx.redis)
        self._metrics = RateLimitMetrics.of(ctx.registry)

    def limit_of(self, tier: Tier) -> int:
        gateway = self._ctx.settings.gateway
        limits: dict[Tier, int] = {
            "anonymous": gateway.rate_limit_anonymous_per_min,
            "user": gateway.rate_limit_user_per_min,
            "client": gateway.rate_limit_client_per_min,
        }
        return limits[tier]

    async def admit(self, caller: Caller) -> RateLimitDecision | None:
        """Count one request; raise `RateLimitRejected` (429) when over the tier's budget.

        None when Redis cannot be reached: the gateway then lets requests through (counted as
        `unavailable`), since refusing all traffic would turn a cache outage into a full outage; the
        endpoints where guessing matters (sign-in, tokens) are limited again by auth, which refuses."""
        settings = self._ctx.settings
        key = redis_key(settings, "gateway", "rl", caller.tier, caller.subject)
        window = WINDOW_SEC * settings.gateway.rate_limit_window_scale
        try:
            decision = await self._limiter.hit(key, self.limit_of(caller.tier), window)
        except RateLimiterUnavailable as exc:
            self._metrics.record("gateway", caller.tier, "unavailable")
            logger.warning("rate limiter unavailable; request let through", extra={"error": str(exc)})
            return None
        if not decision.allowed:
            self._metrics.record("gateway", caller.tier, "limited")
            headers = decision.headers()
            raise RateLimitRejected(
                problem_response(
                    429,
                    f"Rate limit of {decision.limit} requests per minute for {caller.tier} callers "
                    f"exceeded; retry in {headers['Retry-After']} s.",
                    type_="https://media-gateway.dev/problems/rate-limited",
                    headers=headers,
                )
            )
        self._metrics.record("gateway", caller.tier, "allowed")
        return decision
