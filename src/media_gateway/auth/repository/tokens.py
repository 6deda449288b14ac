"""Token families, refresh tokens and revoked access tokens (parameterized SQL only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_family(
    conn: AsyncConnection,
    *,
    family_id: uuid.UUID,
    client_id: str,
    user_id: uuid.UUID | None,
    scope: str,
    resource: str | None = None,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO auth.token_families (id, client_id, user_id, scope, resource) "
            "VALUES (:id, :client_id, :user_id, :scope, :resource)"
        ),
        {"id": family_id, "client_id": client_id, "user_id": user_id, "scope": scope, "resource": resource},
    )


async def insert_refresh_token(
    conn: AsyncConnection, *, token_hash: str, family_id: uuid.UUID, ttl_sec: int
) -> None:
    await conn.execute(
        text(
            "INSERT INTO auth.refresh_tokens (token_hash, family_id, expires_at) "
            "VALUES (:h, :family, now() + make_interval(secs => :ttl))"
        ),
        {"h": token_hash, "family": family_id, "ttl": ttl_sec},
    )


@dataclass(frozen=True)
class RotatedRefresh:
    family_id: uuid.UUID
    client_id: str
    user_id: uuid.UUID | None
    scope: str
    resource: str | None


async def rotate_refresh_token(
    conn: AsyncConnection, token_hash: str, client_id: str
) -> RotatedRefresh | None:
    """Marks the token used in one conditional UPDATE: of any number of concurrent callers exactly
    one gets the row back. None for an unknown, used, expired, revoked or other client's token."""
    result = await conn.execute(
        text(
            "UPDATE auth.refresh_tokens AS t SET rotated_at = now() "
            "FROM auth.token_families AS f "
            "WHERE t.token_hash = :h AND t.family_id = f.id AND t.rotated_at IS NULL "
            "AND t.expires_at > now() AND f.revoked_at IS NULL AND f.client_id = :client_id "
            "RETURNING f.id, f.client_id, f.user_id, f.scope, f.resource"
        ),
        {"h": token_hash, "client_id": client_id},
    )
    row = result.first()
    return RotatedRefresh(row.id, row.client_id, row.user_id, row.scope, row.resource) if row else None


@dataclass(frozen=True)
class RefreshTokenState:
    family_id: uuid.UUID
    client_id: str
    user_id: uuid.UUID | None
    scope: str
    rotated: bool
    expired: bool
    revoked: bool
    expires_at: datetime
    created_at: datetime


async def refresh_token_state(conn: AsyncConnection, token_hash: str) -> RefreshTokenState | None:
    result = await conn.execute(
        text(
            "SELECT f.id, f.client_id, f.user_id, f.scope, t.rotated_at IS NOT NULL AS rotated, "
            "t.expires_at <= now() AS expired, f.revoked_at IS NOT NULL AS revoked, t.expires_at, "
            "t.created_at FROM auth.refresh_tokens t JOIN auth.token_families f ON f.id = t.family_id "
            "WHERE t.token_hash = :h"
        ),
        {"h": token_hash},
    )
    row = result.first()
    if row is None:
        return None
    return RefreshTokenState(
        row.id, row.client_id, row.user_id, row.scope, row.rotated, row.expired, row.revoked,
        row.expires_at, row.created_at,
    )  # fmt: skip


async def revoke_family(conn: AsyncConnection, family_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        text(
            "UPDATE auth.token_families SET revoked_at = now(), revoked_reason = :reason "
            "WHERE id = :id AND revoked_at IS NULL"
        ),
        {"id": family_id, "reason": reason},
    )


async def family_revoked(conn: AsyncConnection, family_id: uuid.UUID) -> bool:
    result = await conn.execute(
        text("SELECT revoked_at IS NOT NULL FROM auth.token_families WHERE id = :id"), {"id": family_id}
    )
    value = result.scalar()
    return bool(value) if value is not None else True


async def revoke_access_token(conn: AsyncConnection, jti: str, expires_at: datetime) -> None:
    await conn.execute(
        text(
            "INSERT INTO auth.revoked_access_tokens (jti, expires_at) VALUES (:jti, :exp) "
            "ON CONFLICT (jti) DO NOTHING"
        ),
        {"jti": jti, "exp": expires_at},
    )


async def access_token_revoked(conn: AsyncConnection, jti: str) -> bool:
    result = await conn.execute(
        text("SELECT 1 FROM auth.revoked_access_tokens WHERE jti = :jti"), {"jti": jti}
    )
    return result.first() is not None
