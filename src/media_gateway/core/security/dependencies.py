"""FastAPI dependencies that turn the Authorization header into a verified `Principal`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import httpx
from fastapi import Depends, Request

from media_gateway.core.errors import ProblemError
from media_gateway.core.security.tokens import InvalidTokenError, Principal, TokenVerifier

if TYPE_CHECKING:
    # core.app closes the verifier at shutdown, so this module must not import it at run time.
    from media_gateway.core.app import ServiceContext

_VERIFIER = "token_verifier"
_JWKS_HTTP = "jwks_http"


def token_verifier(ctx: ServiceContext) -> TokenVerifier:
    """The app's one verifier (and with it one JWKS cache), made on first use."""
    verifier = ctx.extras.get(_VERIFIER)
    if isinstance(verifier, TokenVerifier):
        return verifier
    timeout = httpx.Timeout(ctx.settings.http.read_timeout_sec, connect=ctx.settings.http.connect_timeout_sec)
    http = httpx.AsyncClient(timeout=timeout)
    ctx.extras[_JWKS_HTTP] = http
    verifier = TokenVerifier.from_settings(ctx.settings, http)
    ctx.extras[_VERIFIER] = verifier
    return verifier


async def close_token_verifier(ctx: ServiceContext) -> None:
    http = ctx.extras.pop(_JWKS_HTTP, None)
    ctx.extras.pop(_VERIFIER, None)
    if isinstance(http, httpx.AsyncClient):
        await http.aclose()


def _unauthorized(detail: str, error: str = "invalid_token") -> ProblemError:
    # RFC 6750 §3: the challenge tells a client to (re)authenticate.
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return ProblemError(401, detail, headers={"WWW-Authenticate": challenge})


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <token>'", "invalid_request")
    return token.strip()


async def optional_principal(request: Request) -> Principal | None:
    """The caller if a token was sent (an invalid token is still a 401), else None."""
    token = bearer_token(request)
    if token is None:
        return None
    ctx: ServiceContext = request.app.state.ctx
    try:
        principal = await token_verifier(ctx).verify(token)
    except InvalidTokenError as exc:
        raise _unauthorized(f"invalid access token: {exc}") from exc
    request.state.principal = principal
    return principal


# The guards below call each other directly rather than through `Depends` chains: every level of
# FastAPI dependency resolution costs per request, and these run on nearly every request.


async def require_principal(request: Request) -> Principal:
    principal = await optional_principal(request)
    if principal is None:
        raise _unauthorized("this endpoint needs a bearer access token", "")
    return principal


async def require_user(request: Request) -> Principal:
    """A signed-in user; a client-credentials token has no user and gets 403."""
    principal = await require_principal(request)
    if principal.user_id is None:
        raise ProblemError(403, "this endpoint acts for a user; a client token has none")
    return principal


def require_scopes(*scopes: str) -> Any:
    async def dependency(request: Request) -> Principal:
        principal = await require_principal(request)
        if not principal.has_scopes(*scopes):
            wanted = " ".join(scopes)
            raise ProblemError(
                403,
                f"this endpoint needs the scope(s): {wanted}",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{wanted}"'},
            )
        return principal

    return Depends(dependency)


CurrentUser = Annotated[Principal, Depends(require_user)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
