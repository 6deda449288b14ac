"""Issuing our tokens: JWT access tokens and opaque, hashed, family-bound refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.auth import repository
from media_gateway.auth.resources import audience
from media_gateway.auth.state import auth_state
from media_gateway.core.app import ServiceContext


def token_hash(token: str) -> str:
    """What the database keeps of a refresh token, code or device code: a leak of the table grants nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None
    family_id: uuid.UUID | None

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


async def mint_access_token(
    ctx: ServiceContext,
    *,
    subject: str,
    client_id: str,
    scope: str,
    token_use: str,
    family_id: uuid.UUID | None,
    resource: str | None = None,
) -> tuple[str, int]:
    keyset = await auth_state(ctx).keys.get()
    settings = ctx.settings
    now = int(time.time())
    ttl = settings.auth.access_token_ttl_sec
    claims: dict[str, Any] = {
        "iss": settings.token_issuer,
        "aud": audience(settings, resource),
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "scope": scope,
        "client_id": client_id,
        "token_use": token_use,
    }
    if family_id is not None:
        # The token family ("session"): logout and code replay revoke it, introspection checks it.
        claims["sid"] = str(family_id)
    return keyset.current.sign(claims), ttl


async def issue_user_tokens(
    ctx: ServiceContext,
    conn: AsyncConnection,
    *,
    client_id: str,
    user_id: uuid.UUID,
    scope: str,
    family_id: uuid.UUID | None = None,
    resource: str | None = None,
) -> IssuedTokens:
    """An access token and a refresh token for a user; a new family unless `family_id` continues one
    (whose `resource` the caller passes again). Runs in the caller's transaction, so a failed grant
    leaves nothing behind."""
    if family_id is None:
        family_id = uuid.uuid4()
        await repository.insert_family(
            conn, family_id=family_id, client_id=client_id, user_id=user_id, scope=scope, resource=resource
        )
    refresh = new_opaque_token()
    await repository.insert_refresh_token(
        conn,
        token_hash=token_hash(refresh),
        family_id=family_id,
        ttl_sec=ctx.settings.auth.refresh_token_ttl_sec,
    )
    access, ttl = await mint_access_token(
        ctx,
        subject=str(user_id),
        client_id=client_id,
        scope=scope,
        token_use="user",  # noqa: S106 - not a secret
        family_id=family_id,
        resource=resource,
    )
    return IssuedTokens(
        access_token=access, expires_in=ttl, scope=scope, refresh_token=refresh, family_id=family_id
    )


async def issue_tokens(
    ctx: ServiceContext, *, client_id: str, user_id: uuid.UUID, scope: str
) -> IssuedTokens:
    """Access + refresh tokens for a user authenticated elsewhere (e.g. an identity provider)."""
    async with ctx.engine.begin() as conn:
        return await issue_user_tokens(ctx, conn, client_id=client_id, user_id=user_id, scope=scope)


async def issue_client_token(
    ctx: ServiceContext, *, client_id: str, scope: str, resource: str | None = None
) -> IssuedTokens:
    access, ttl = await mint_access_token(
        ctx,
        subject=client_id,
        client_id=client_id,
        scope=scope,
        token_use="client",  # noqa: S106 - not a secret
        family_id=None,
        resource=resource,
    )
    return IssuedTokens(access_token=access, expires_in=ttl, scope=scope, refresh_token=None, family_id=None)
