"""The auth service's rate limits, as FastAPI dependencies attached to its routes.

Each request is counted against the caller: the client that authenticated with HTTP Basic, else the
user (or client) of a valid bearer token, else the client address (`client_ip`, forwarded headers
believed only from `auth.trusted_proxies`). A public client's `client_id` is not used: it proves
nothing, and every device of one app sends the same one, so it would merge their budgets.

Device-code polling of /auth/token is paced by `slow_down` and is not counted here. Without Redis
the endpoints answer 503: an outage of the limiter must never mean unlimited password guesses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException
from starlette.responses import Response

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
    remember_decision,
)
from media_gateway.core.redis import redis_key
from media_gateway.core.security.dependencies import token_verifier
from media_gateway.core.security.tokens import InvalidTokenError
from media_gateway.core.settings import AuthSettings

if TYPE_CHECKING:
    from media_gateway.core.app import ServiceContext

logger = logging.getLogger(__name__)

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# How long a client should wait when the limiter's store is down before trying again.
UNAVAILABLE_RETRY_AFTER_SEC = 5
_LIMITER = "auth_rate_limiter"
_MAX_SUBJECT_CHARS = 128

ErrorStyle = Literal["oauth", "problem"]


@dataclass(frozen=True)
class Policy:
    name: str
    limit: Callable[[AuthSettings], int]
    window_sec: float
    # OAuth endpoints answer RFC 6749 JSON errors, the account API problem+json.
    style: ErrorStyle


TOKEN = Policy("token", lambda s: s.rate_limit_token_per_min, 60, "oauth")
DEVICE = Policy("device", lambda s: s.rate_limit_device_per_min, 60, "oauth")
AUTHORIZE = Policy("authorize", lambda s: s.rate_limit_authorize_per_min, 60, "oauth")
LOGIN = Policy("login", lambda s: s.rate_limit_login_per_min, 60, "problem")
REGISTER = Policy("register", lambda s: s.rate_limit_register_per_hour, 3600, "problem")
CLIENT_REGISTRATION = Policy(
    "client_registration", lambda s: s.rate_limit_client_registration_per_hour, 3600, "oauth"
)


def rate_limiter(ctx: ServiceContext) -> RateLimiter:
    limiter = ctx.extras.get(_LIMITER)
    if not isinstance(limiter, RateLimiter):
        limiter = RateLimiter(ctx.redis)
        ctx.extras[_LIMITER] = limiter
    return limiter


def _basic_client_id(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not credentials.strip():
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, _ = decoded.partition(":")
    # RFC 6749 §2.3.1: the id is form-urlencoded before it is put in the header.
    return unquote(client_id.replace("+", " ")) if sep and client_id else None


async def _token_subject(request: Request, ctx: ServiceContext) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        principal = await token_verifier(ctx).verify(token.strip())
    except InvalidTokenError:
        # Not ours to reject here (the route answers 401); an unverified token names nobody.
        return None
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    return f"client:{principal.client_id or principal.subject}"


def _bounded(subject: str) -> str:
    if len(subject) <= _MAX_SUBJECT_CHARS:
        return subject
    kind, _, rest = subject.partition(":")
    return f"{kind}:sha256:{hashlib.sha256(rest.encode('utf-8')).hexdigest()}"


def client_address_subject(request: Request) -> str:
    ctx: ServiceContext = request.app.state.ctx
    trusted = parse_networks(ctx.settings.auth.trusted_proxies)
    ip = client_ip(request, trusted, header=ctx.settings.auth.forwarded_header)
    return _bounded(f"ip:{ip_bucket(ip)}")


async def rate_limit_subject(request: Request) -> str:
    """Who a request is counted against (see the module docstring)."""
    ctx: ServiceContext = request.app.state.ctx
    client_id = _basic_client_id(request)
    if client_id:
        return _bounded(f"client:{client_id}")
    subject = await _token_subject(request, ctx)
    if subject:
        return _bounded(subject)
    return client_address_subject(request)


def _rejection(policy: Policy, decision: RateLimitDecision) -> Response:
    headers = decision.headers()
    wait = headers["Retry-After"]
    if policy.style == "oauth":
        body = {
            "error": "too_many_requests",
            "error_description": f"rate limit of {decision.limit} requests exceeded; retry in {wait} s",
        }
        return JSONResponse(body, status_code=429, headers={**headers, "Cache-Control": "no-store"})
    return problem_response(
        429,
        f"Too many attempts; retry in {wait} s.",
        type_="https://media-gateway.dev/problems/rate-limited",
        headers=headers,
    )


def _unavailable(policy: Policy) -> Response:
    headers = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SEC)}
    if policy.style == "oauth":
        body = {
            "error": "temporarily_unavailable",
            "error_description": "the rate limiter is unavailable; retry shortly",
        }
        return JSONResponse(body, status_code=503, headers={**headers, "Cache-Control": "no-store"})
    return problem_response(
        503,
        "The service cannot check its rate limits right now; retry shortly.",
        headers=headers,
    )


async def enforce(request: Request, policy: Policy, subject: str | None = None) -> RateLimitDecision:
    """Count this request under `policy` (against `subject`, by default the caller as the module
    docstring says); raise `RateLimitRejected` when over it or unable to tell."""
    ctx: ServiceContext = request.app.state.ctx
    auth = ctx.settings.auth
    subject = subject or await rate_limit_subject(request)
    key = redis_key(ctx.settings, "auth", "rl", policy.name, subject)
    metrics = RateLimitMetrics.of(ctx.registry)
    try:
        decision = await rate_limiter(ctx).hit(
            key, policy.limit(auth), policy.window_sec * auth.rate_limit_window_scale
        )
    except RateLimiterUnavailable as exc:
        metrics.record("auth", policy.name, "unavailable")
        logger.error("rate limiter unavailable", extra={"policy": policy.name, "error": str(exc)})
        raise RateLimitRejected(_unavailable(policy)) from exc
    if not decision.allowed:
        metrics.record("auth", policy.name, "limited")
        logger.info("rate limited", extra={"policy": policy.name, "subject_kind": subject.split(":", 1)[0]})
        raise RateLimitRejected(_rejection(policy, decision))
    metrics.record("auth", policy.name, "allowed")
    remember_decision(request, decision)
    return decision


async def _form(request: Request) -> FormData | None:
    # Starlette caches both on the request: the route can still read the form, or the raw body
    # (which `form()` alone would consume).
    try:
        await request.body()
        return await request.form()
    except (MultiPartException, ValueError):
        return None


async def limit_token_endpoint(request: Request) -> None:
    """POST /auth/token: 10/min; device-code polls are exempt (paced by `slow_down`)."""
    form = await _form(request)
    if form is not None and form.getlist("grant_type") == [DEVICE_CODE_GRANT]:
        return
    await enforce(request, TOKEN)


async def limit_device_authorization(request: Request) -> None:
    """POST /auth/device (a TV asking for a device code): 5/min. Attach it to that route only."""
    await enforce(request, DEVICE)


async def limit_authorize(request: Request) -> None:
    """/auth/authorize: 20/min."""
    await enforce(request, AUTHORIZE)


async def limit_login(request: Request) -> None:
    """Password login: 10/min."""
    await enforce(request, LOGIN)


async def limit_register(request: Request) -> None:
    """Account registration: 5/hour."""
    await enforce(request, REGISTER)


async def limit_client_registration(request: Request) -> None:
    """POST /auth/register (RFC 7591): 20/hour per client address. Never per presented credentials:
    anyone can make up Basic credentials, and each made-up id would get a budget of its own."""
    await enforce(request, CLIENT_REGISTRATION, client_address_subject(request))
