"""All SQL of the auth service (parameterized only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class UserRow:
    id: uuid.UUID
    email: str
    email_verified: bool
    password_hash: str | None
    display_name: str | None
    region: str | None
    platforms: list[str]
    favourite_genres: list[str]
    max_certification: str | None


@dataclass(frozen=True)
class ClientRow:
    client_id: str
    secret_hash: str | None
    name: str
    redirect_uris: list[str]
    grant_types: list[str]
    scopes: list[str]

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None


@dataclass(frozen=True)
class KeyRow:
    kid: str
    alg: str
    private_jwk: str
    retired_at: datetime | None
    publish_until: datetime | None


_USER_COLUMNS = (
    "id, email, email_verified, password_hash, display_name, region, platforms, favourite_genres,"
    " max_certification"
)
_SELECT_USER = (
    "SELECT id, email, email_verified, password_hash, display_name, region, platforms, favourite_genres,"
    " max_certification FROM auth.users "
)
_SELECT_CLIENT = "SELECT client_id, secret_hash, name, redirect_uris, grant_types, scopes FROM auth.clients "


def _user(row: Any) -> UserRow:
    return UserRow(
        id=row.id,
        email=row.email,
        email_verified=row.email_verified,
        password_hash=row.password_hash,
        display_name=row.display_name,
        region=row.region,
        platforms=list(row.platforms or []),
        favourite_genres=list(row.favourite_genres or []),
        max_certification=row.max_certification,
    )


def _client(row: Any) -> ClientRow:
    return ClientRow(
        client_id=row.client_id,
        secret_hash=row.secret_hash,
        name=row.name,
        redirect_uris=list(row.redirect_uris or []),
        grant_types=list(row.grant_types or []),
        scopes=list(row.scopes or []),
    )


# Users ----------------------------------------------------------------------------------------


async def insert_user(
    conn: AsyncConnection, *, email: str, password_hash: str | None, display_name: str | None
) -> UserRow | None:
    """The new user, or None when the email is taken."""
    result = await conn.execute(
        text(
            "INSERT INTO auth.users (id, email, password_hash, display_name) "
            "VALUES (:id, :email, :password_hash, :display_name) "
            "ON CONFLICT (email) DO NOTHING RETURNING id, email, email_verified, password_hash, "
            "display_name, region, platforms, favourite_genres, max_certification"
        ),
        {"id": uuid.uuid4(), "email": email, "password_hash": password_hash, "display_name": display_name},
    )
    row = result.first()
    return _user(row) if row else None


async def user_by_email(conn: AsyncConnection, email: str) -> UserRow | None:
    result = await conn.execute(
        text(_SELECT_USER + "WHERE email = :email"),
        {"email": email},
    )
    row = result.first()
    return _user(row) if row else None


async def user_by_id(conn: AsyncConnection, user_id: uuid.UUID) -> UserRow | None:
    result = await conn.execute(
        text(_SELECT_USER + "WHERE id = :id"),
        {"id": user_id},
    )
    row = result.first()
    return _user(row) if row else None


_PROFILE_FIELDS = frozenset({"display_name", "region", "platforms", "favourite_genres", "max_certification"})


async def update_user_profile(
    conn: AsyncConnection, user_id: uuid.UUID, changes: dict[str, Any]
) -> UserRow | None:
    fields = [name for name in changes if name in _PROFILE_FIELDS]
    assignments = ", ".join(f"{name} = :{name}" for name in fields)
    sets = f"{assignments}, updated_at = now()" if assignments else "updated_at = now()"
    result = await conn.execute(
        # Column names come from the _PROFILE_FIELDS whitelist, values are bound.
        text(f"UPDATE auth.users SET {sets} WHERE id = :id RETURNING {_USER_COLUMNS}"),  # noqa: S608
        {"id": user_id, **{name: changes[name] for name in fields}},
    )
    row = result.first()
    return _user(row) if row else None


async def update_password_hash(conn: AsyncConnection, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute(
        text("UPDATE auth.users SET password_hash = :h WHERE id = :id"), {"h": password_hash, "id": user_id}
    )


# Signing keys ---------------------------------------------------------------------------------


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


# Clients --------------------------------------------------------------------------------------


async def client_by_id(conn: AsyncConnection, client_id: str) -> ClientRow | None:
    result = await conn.execute(
        text(_SELECT_CLIENT + "WHERE client_id = :id"),
        {"id": client_id},
    )
    row = result.first()
    return _client(row) if row else None


async def list_clients(conn: AsyncConnection) -> list[ClientRow]:
    query = _SELECT_CLIENT + "ORDER BY created_at"
    result = await conn.execute(text(query))
    return [_client(r) for r in result]


async def insert_client(conn: AsyncConnection, client: ClientRow) -> bool:
    result = await conn.execute(
        text(
            "INSERT INTO auth.clients (client_id, secret_hash, name, redirect_uris, grant_types, scopes) "
            "VALUES (:client_id, :secret_hash, :name, :redirect_uris, :grant_types, :scopes) "
            "ON CONFLICT (client_id) DO NOTHING RETURNING client_id"
        ),
        {
            "client_id": client.client_id,
            "secret_hash": client.secret_hash,
            "name": client.name,
            "redirect_uris": client.redirect_uris,
            "grant_types": client.grant_types,
            "scopes": client.scopes,
        },
    )
    return result.first() is not None


async def upsert_client(conn: AsyncConnection, client: ClientRow) -> None:
    await conn.execute(
        text(
            "INSERT INTO auth.clients (client_id, secret_hash, name, redirect_uris, grant_types, scopes) "
            "VALUES (:client_id, :secret_hash, :name, :redirect_uris, :grant_types, :scopes) "
            "ON CONFLICT (client_id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, name = EXCLUDED.name, "
            "redirect_uris = EXCLUDED.redirect_uris, grant_types = EXCLUDED.grant_types, "
            "scopes = EXCLUDED.scopes"
        ),
        {
            "client_id": client.client_id,
            "secret_hash": client.secret_hash,
            "name": client.name,
            "redirect_uris": client.redirect_uris,
            "grant_types": client.grant_types,
            "scopes": client.scopes,
        },
    )


# Token families and refresh tokens -------------------------------------------------------------


async def insert_family(
    conn: AsyncConnection, *, family_id: uuid.UUID, client_id: str, user_id: uuid.UUID | None, scope: str
) -> None:
    await conn.execute(
        text(
            "INSERT INTO auth.token_families (id, client_id, user_id, scope) "
            "VALUES (:id, :client_id, :user_id, :scope)"
        ),
        {"id": family_id, "client_id": client_id, "user_id": user_id, "scope": scope},
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
            "RETURNING f.id, f.client_id, f.user_id, f.scope"
        ),
        {"h": token_hash, "client_id": client_id},
    )
    row = result.first()
    return RotatedRefresh(row.id, row.client_id, row.user_id, row.scope) if row else None


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


# Authorization codes --------------------------------------------------------------------------


async def insert_code(
    conn: AsyncConnection,
    *,
    code_hash: str,
    client_id: str,
    user_id: uuid.UUID,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    ttl_sec: int,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO auth.authorization_codes "
            "(code_hash, client_id, user_id, redirect_uri, scope, code_challenge, expires_at) "
            "VALUES (:h, :client_id, :user_id, :redirect_uri, :scope, :challenge, "
            "now() + make_interval(secs => :ttl))"
        ),
        {
            "h": code_hash,
            "client_id": client_id,
            "user_id": user_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "challenge": code_challenge,
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


async def consume_code(conn: AsyncConnection, code_hash: str) -> CodeRow | None:
    """Marks the code used; None when it is unknown or was used before (a replay)."""
    result = await conn.execute(
        text(
            "UPDATE auth.authorization_codes SET used_at = now() WHERE code_hash = :h AND used_at IS NULL "
            "RETURNING client_id, user_id, redirect_uri, scope, code_challenge, "
            "expires_at <= now() AS expired, family_id"
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
