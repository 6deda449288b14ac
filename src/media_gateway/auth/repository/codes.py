"""Authorization codes and device codes (parameterized SQL only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_code(
    conn: AsyncConnection,
    *,
    code_hash: str,
    client_id: str,
    user_id: uuid.UUID,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    resource: str | None,
    ttl_sec: int,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO auth.authorization_codes "
            "(code_hash, client_id, user_id, redirect_uri, scope, code_challenge, resource, expires_at) "
            "VALUES (:h, :client_id, :user_id, :redirect_uri, :scope, :challenge, :resource, "
            "now() + make_interval(secs => :ttl))"
        ),
        {
            "h": code_hash,
            "client_id": client_id,
            "user_id": user_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "challenge": code_challenge,
            "resource": resource,
            "ttl": ttl_sec,
        },
    )


@dataclass(frozen=True)
class CodeRow:
    client_id: str
    user_id: uuid.UUID
    redirect_uri: str
    scope: str
    code_challenge: str
    expired: bool
    family_id: uuid.UUID | None
    resource: str | None


async def consume_code(conn: AsyncConnection, code_hash: str) -> CodeRow | None:
    """Marks the code used; None when it is unknown or was used before (a replay)."""
    result = await conn.execute(
        text(
            "UPDATE auth.authorization_codes SET used_at = now() WHERE code_hash = :h AND used_at IS NULL "
            "RETURNING client_id, user_id, redirect_uri, scope, code_challenge, "
            "expires_at <= now() AS expired, family_id, resource"
        ),
        {"h": code_hash},
    )
    row = result.first()
    if row is None:
        return None
    return CodeRow(
        row.client_id,
        row.user_id,
        row.redirect_uri,
        row.scope,
        row.code_challenge,
        row.expired,
        row.family_id,
        row.resource,
    )


async def used_code_family(conn: AsyncConnection, code_hash: str) -> tuple[bool, uuid.UUID | None]:
    """(the code exists, the family issued from it)."""
    result = await conn.execute(
        text("SELECT family_id FROM auth.authorization_codes WHERE code_hash = :h"), {"h": code_hash}
    )
    row = result.first()
    return (row is not None, row.family_id if row else None)


async def set_code_family(conn: AsyncConnection, code_hash: str, family_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE auth.authorization_codes SET family_id = :f WHERE code_hash = :h"),
        {"f": family_id, "h": code_hash},
    )


# Device codes ---------------------------------------------------------------------------------


async def insert_device_code(
    conn: AsyncConnection,
    *,
    device_code_hash: str,
    user_code: str,
    client_id: str,
    scope: str,
    interval_sec: int,
    ttl_sec: int,
) -> bool:
    """False when the user code collides with a live one (the caller draws another)."""
    result = await conn.execute(
        text(
            "INSERT INTO auth.device_codes "
            "(device_code_hash, user_code, client_id, scope, interval_sec, expires_at) "
            "VALUES (:h, :user_code, :client_id, :scope, :interval, now() + make_interval(secs => :ttl)) "
            "ON CONFLICT (user_code) DO NOTHING RETURNING user_code"
        ),
        {
            "h": device_code_hash,
            "user_code": user_code,
            "client_id": client_id,
            "scope": scope,
            "interval": interval_sec,
            "ttl": ttl_sec,
        },
    )
    return result.first() is not None


async def purge_expired_device_code(conn: AsyncConnection, user_code: str) -> None:
    await conn.execute(
        text("DELETE FROM auth.device_codes WHERE user_code = :c AND expires_at <= now()"), {"c": user_code}
    )


@dataclass(frozen=True)
class DevicePoll:
    client_id: str
    scope: str
    status: str
    user_id: uuid.UUID | None
    interval_sec: int
    expired: bool
    # Seconds since the previous poll, None on the first.
    since_last_poll: float | None


async def lock_device_code(conn: AsyncConnection, device_code_hash: str) -> DevicePoll | None:
    """The device code, locked for the rest of the transaction, so concurrent polls serialize."""
    result = await conn.execute(
        text(
            "SELECT client_id, scope, status, user_id, interval_sec, expires_at <= now() AS expired, "
            "EXTRACT(EPOCH FROM (clock_timestamp() - last_polled_at)) AS since "
            "FROM auth.device_codes WHERE device_code_hash = :h FOR UPDATE"
        ),
        {"h": device_code_hash},
    )
    row = result.first()
    if row is None:
        return None
    since = float(row.since) if row.since is not None else None
    return DevicePoll(row.client_id, row.scope, row.status, row.user_id, row.interval_sec, row.expired, since)


async def record_device_poll(
    conn: AsyncConnection, device_code_hash: str, *, interval_sec: int, status: str | None = None
) -> None:
    await conn.execute(
        text(
            "UPDATE auth.device_codes SET last_polled_at = clock_timestamp(), interval_sec = :interval, "
            "status = COALESCE(:status, status) WHERE device_code_hash = :h"
        ),
        {"h": device_code_hash, "interval": interval_sec, "status": status},
    )


@dataclass(frozen=True)
class DeviceRequest:
    client_id: str
    scope: str
    status: str
    expired: bool


async def device_code_by_user_code(conn: AsyncConnection, user_code: str) -> DeviceRequest | None:
    result = await conn.execute(
        text(
            "SELECT client_id, scope, status, expires_at <= now() AS expired "
            "FROM auth.device_codes WHERE user_code = :c"
        ),
        {"c": user_code},
    )
    row = result.first()
    return DeviceRequest(row.client_id, row.scope, row.status, row.expired) if row else None


async def decide_device_code(
    conn: AsyncConnection, user_code: str, *, user_id: uuid.UUID, approve: bool
) -> bool:
    """Approves or denies a pending, unexpired code; False if there is none."""
    result = await conn.execute(
        text(
            "UPDATE auth.device_codes SET status = :status, user_id = :user_id "
            "WHERE user_code = :c AND status = 'pending' AND expires_at > now() RETURNING user_code"
        ),
        {"c": user_code, "status": "approved" if approve else "denied", "user_id": user_id},
    )
    return result.first() is not None


async def revoke_family_of_user(
    conn: AsyncConnection, family_id: uuid.UUID, user_id: uuid.UUID, reason: str
) -> None:
    await conn.execute(
        text(
            "UPDATE auth.token_families SET revoked_at = now(), revoked_reason = :reason "
            "WHERE id = :id AND user_id = :user_id AND revoked_at IS NULL"
        ),
        {"id": family_id, "user_id": user_id, "reason": reason},
    )


async def purge_expired(conn: AsyncConnection) -> int:
    """Deletes what can never be valid again; used codes linger a day so a late replay is still seen."""
    statements = (
        "DELETE FROM auth.authorization_codes WHERE expires_at < now() - interval '1 day'",
        "DELETE FROM auth.device_codes WHERE expires_at < now() - interval '1 day'",
        "DELETE FROM auth.revoked_access_tokens WHERE expires_at < now()",
        "DELETE FROM auth.refresh_tokens WHERE expires_at < now()",
        "DELETE FROM auth.token_families f WHERE NOT EXISTS "
        "(SELECT 1 FROM auth.refresh_tokens t WHERE t.family_id = f.id) "
        "AND f.created_at < now() - interval '1 day'",
        "DELETE FROM auth.signing_keys WHERE publish_until < now() - interval '1 day'",
    )
    deleted = 0
    for statement in statements:
        result = await conn.execute(text(statement))
        deleted += max(result.rowcount or 0, 0)
    return deleted
