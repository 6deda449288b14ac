"""The SQL of Google sign-in: users found, linked or created by Google subject and verified email.

Race-safe through the unique constraints (`users.email`, `user_identities (provider, subject)`) and
ON CONFLICT: two callbacks for one new Google account end on one user."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

PROVIDER = "google"


async def user_for_subject(conn: AsyncConnection, subject: str) -> uuid.UUID | None:
    result = await conn.execute(
        text("SELECT user_id FROM auth.user_identities WHERE provider = :provider AND subject = :subject"),
        {"provider": PROVIDER, "subject": subject},
    )
    user_id: uuid.UUID | None = result.scalar_one_or_none()
    return user_id


async def insert_user(conn: AsyncConnection, *, email: str, display_name: str | None) -> uuid.UUID | None:
    """A new user without a password and with a verified email; None when the email is taken."""
    result = await conn.execute(
        text(
            "INSERT INTO auth.users (id, email, email_verified, display_name) "
            "VALUES (:id, :email, true, :display_name) "
            "ON CONFLICT (email) DO NOTHING RETURNING id"
        ),
        {"id": uuid.uuid4(), "email": email, "display_name": display_name},
    )
    user_id: uuid.UUID | None = result.scalar_one_or_none()
    return user_id


async def lock_user_by_email(conn: AsyncConnection, email: str) -> tuple[uuid.UUID, bool] | None:
    """(id, email_verified) of the account with this email, locked until the transaction ends."""
    result = await conn.execute(
        text("SELECT id, email_verified FROM auth.users WHERE email = :email FOR UPDATE"), {"email": email}
    )
    row = result.first()
    return (row.id, bool(row.email_verified)) if row else None


async def take_over_unverified_account(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    """Google proved who owns the address; whoever set this account's password never did. The
    password goes and every session of the account is revoked (account pre-hijacking defence)."""
    await conn.execute(
        text(
            "UPDATE auth.users SET email_verified = true, password_hash = NULL, updated_at = now() "
            "WHERE id = :id"
        ),
        {"id": user_id},
    )
    await conn.execute(
        text(
            "UPDATE auth.token_families SET revoked_at = now(), revoked_reason = 'google_account_takeover' "
            "WHERE user_id = :id AND revoked_at IS NULL"
        ),
        {"id": user_id},
    )


async def link_identity(
    conn: AsyncConnection, *, subject: str, user_id: uuid.UUID, email: str | None
) -> uuid.UUID:
    """Links the Google subject to the user; if a concurrent sign-in linked it first, its user."""
    result = await conn.execute(
        text(
            "INSERT INTO auth.user_identities (provider, subject, user_id, email) "
            "VALUES (:provider, :subject, :user_id, :email) "
            "ON CONFLICT (provider, subject) DO NOTHING RETURNING user_id"
        ),
        {"provider": PROVIDER, "subject": subject, "user_id": user_id, "email": email},
    )
    linked: uuid.UUID | None = result.scalar_one_or_none()
    if linked is not None:
        return linked
    existing = await user_for_subject(conn, subject)
    if existing is None:
        raise RuntimeError("identity vanished between insert and select")
    return existing
