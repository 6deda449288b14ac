"""Users of the auth service: accounts and their profiles (parameterized SQL only)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.auth.repository.rows import (
    SELECT_USER,
    USER_COLUMNS,
    UserRow,
    user_from_row,
)


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
    return user_from_row(row) if row else None


async def user_by_email(conn: AsyncConnection, email: str) -> UserRow | None:
    result = await conn.execute(
        text(SELECT_USER + "WHERE email = :email"),
        {"email": email},
    )
    row = result.first()
    return user_from_row(row) if row else None


async def user_by_id(conn: AsyncConnection, user_id: uuid.UUID) -> UserRow | None:
    result = await conn.execute(
        text(SELECT_USER + "WHERE id = :id"),
        {"id": user_id},
    )
    row = result.first()
    return user_from_row(row) if row else None


_PROFILE_FIELDS = frozenset({"display_name", "region", "platforms", "favourite_genres", "max_certification"})


async def update_user_profile(
    conn: AsyncConnection, user_id: uuid.UUID, changes: dict[str, Any]
) -> UserRow | None:
    fields = [name for name in changes if name in _PROFILE_FIELDS]
    assignments = ", ".join(f"{name} = :{name}" for name in fields)
    sets = f"{assignments}, updated_at = now()" if assignments else "updated_at = now()"
    result = await conn.execute(
        # Column names come from the _PROFILE_FIELDS whitelist, values are bound.
        text(f"UPDATE auth.users SET {sets} WHERE id = :id RETURNING {USER_COLUMNS}"),  # noqa: S608
        {"id": user_id, **{name: changes[name] for name in fields}},
    )
    row = result.first()
    return user_from_row(row) if row else None


async def update_password_hash(conn: AsyncConnection, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute(
        text("UPDATE auth.users SET password_hash = :h WHERE id = :id"), {"h": password_hash, "id": user_id}
    )
