"""Signing keys: published, current and retired (parameterized SQL only)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.auth.repository.rows import (
    KeyRow,
)


async def lock_keys(conn: AsyncConnection) -> None:
    # Serializes key bootstrap/rotation across processes (several auth replicas may start at once).
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('media-gateway-auth-signing-keys'))"))


async def published_keys(conn: AsyncConnection) -> list[KeyRow]:
    """Keys still published (current first, newest first), i.e. not past their overlap window."""
    result = await conn.execute(
        text(
            "SELECT kid, alg, private_jwk, retired_at, publish_until FROM auth.signing_keys "
            "WHERE publish_until IS NULL OR publish_until > now() "
            "ORDER BY retired_at IS NOT NULL, created_at DESC"
        )
    )
    return [KeyRow(r.kid, r.alg, r.private_jwk, r.retired_at, r.publish_until) for r in result]


async def insert_key(conn: AsyncConnection, *, kid: str, alg: str, private_jwk: str) -> None:
    await conn.execute(
        text("INSERT INTO auth.signing_keys (kid, alg, private_jwk) VALUES (:kid, :alg, :jwk)"),
        {"kid": kid, "alg": alg, "jwk": private_jwk},
    )


async def retire_current_keys(conn: AsyncConnection, *, overlap_sec: int) -> list[str]:
    result = await conn.execute(
        text(
            "UPDATE auth.signing_keys SET retired_at = now(), "
            "publish_until = now() + make_interval(secs => :overlap) "
            "WHERE retired_at IS NULL RETURNING kid"
        ),
        {"overlap": overlap_sec},
    )
    return [r.kid for r in result]
