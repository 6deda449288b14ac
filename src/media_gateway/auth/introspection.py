"""RFC 7662 introspection and RFC 7009 revocation of our access and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from media_gateway.auth import repository
from media_gateway.auth.issuance import token_hash
from media_gateway.auth.repository import ClientRow
from media_gateway.auth.state import auth_state
from media_gateway.core.app import ServiceContext
from media_gateway.core.security.tokens import InvalidTokenError, Principal

INACTIVE: dict[str, Any] = {"active": False}


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


async def _verified_access_token(ctx: ServiceContext, token: str) -> Principal | None:
    try:
        return await auth_state(ctx).verifier.verify(token)
    except InvalidTokenError:
        return None


def _family_id(principal: Principal) -> uuid.UUID | None:
    sid = principal.claims.get("sid")
    try:
        return uuid.UUID(sid) if isinstance(sid, str) else None
    except ValueError:
        return None


async def access_token_active(ctx: ServiceContext, principal: Principal) -> bool:
    async with ctx.engine.connect() as conn:
        if principal.token_id and await repository.access_token_revoked(conn, principal.token_id):
            return False
        family_id = _family_id(principal)
        return not (family_id is not None and await repository.family_revoked(conn, family_id))


async def introspect(ctx: ServiceContext, token: str) -> dict[str, Any]:
    if _looks_like_jwt(token):
        principal = await _verified_access_token(ctx, token)
        if principal is None or not await access_token_active(ctx, principal):
            return INACTIVE
        claims = principal.claims
        return {
            "active": True,
            "token_type": "access_token",
            "scope": claims.get("scope", ""),
            "client_id": claims.get("client_id"),
            "sub": claims["sub"],
            "exp": claims["exp"],
            "iat": claims["iat"],
            "iss": claims["iss"],
            "aud": claims["aud"],
            "jti": claims.get("jti"),
            "token_use": claims.get("token_use"),
        }
    async with ctx.engine.connect() as conn:
        state = await repository.refresh_token_state(conn, token_hash(token))
    if state is None or state.rotated or state.expired or state.revoked:
        return INACTIVE
    body: dict[str, Any] = {
        "active": True,
        "token_type": "refresh_token",
        "scope": state.scope,
        "client_id": state.client_id,
        "exp": int(state.expires_at.timestamp()),
        "iat": int(state.created_at.timestamp()),
        "iss": ctx.settings.token_issuer,
    }
    if state.user_id is not None:
        body["sub"] = str(state.user_id)
    return body


async def revoke(ctx: ServiceContext, client: ClientRow, token: str) -> None:
    """Revokes a token the client holds; anything else (unknown, another client's) is ignored, as
    RFC 7009 §2.2 wants the same answer either way."""
    if _looks_like_jwt(token):
        principal = await _verified_access_token(ctx, token)
        if principal is None or principal.client_id != client.client_id or not principal.token_id:
            return
        async with ctx.engine.begin() as conn:
            expires = datetime.fromtimestamp(principal.expires_at, UTC)
            await repository.revoke_access_token(conn, principal.token_id, expires)
        return
    async with ctx.engine.begin() as conn:
        state = await repository.refresh_token_state(conn, token_hash(token))
        if state is not None and state.client_id == client.client_id:
            # Revoking a refresh token ends its grant: the whole family (RFC 7009 §2.1).
            await repository.revoke_family(conn, state.family_id, "revoked by the client")
