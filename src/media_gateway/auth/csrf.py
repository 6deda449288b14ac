"""CSRF protection of the HTML forms: a one-time token in a hidden field that must equal a cookie
(double submit) and still be known to the server."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.responses import Response

from media_gateway.core.app import ServiceContext
from media_gateway.core.redis import redis_key

COOKIE = "mg_csrf"
TTL_SEC = 900


async def issue_csrf(ctx: ServiceContext) -> str:
    token = secrets.token_urlsafe(24)
    await ctx.redis.set(redis_key(ctx.settings, "auth", "csrf", token), "1", ex=TTL_SEC)
    return token


def set_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE, token, max_age=TTL_SEC, httponly=True, samesite="strict", secure=secure, path="/auth"
    )


async def check_csrf(ctx: ServiceContext, request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(COOKIE)
    if not submitted or not cookie or not hmac.compare_digest(submitted.encode(), cookie.encode()):
        return False
    return bool(await ctx.redis.getdel(redis_key(ctx.settings, "auth", "csrf", submitted)))
