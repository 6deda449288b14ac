"""Tables of the `auth` schema (created by migrations/versions/auth/0002_auth_tables.py)."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData(schema="auth")

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    # Always stored lower-cased.
    Column("email", Text, nullable=False, unique=True),
    Column("email_verified", Boolean, nullable=False, server_default="false"),
    # NULL for accounts that only sign in through an identity provider.
    Column("password_hash", Text),
    Column("display_name", Text),
    Column("region", Text),
    Column("platforms", ARRAY(Text), nullable=False, server_default="{}"),
    Column("favourite_genres", ARRAY(Text), nullable=False, server_default="{}"),
    Column("max_certification", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("email = lower(email)", name="users_email_lowercase"),
)

user_identities = Table(
    "user_identities",
    metadata,
    Column("provider", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("user_id", UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False),
    Column("email", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("provider", "subject"),
    Index("user_identities_user", "user_id"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("alg", Text, nullable=False),
    Column("private_jwk", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Set when a newer key took over; the key is still published until `publish_until`.
    Column("retired_at", DateTime(timezone=True)),
    Column("publish_until", DateTime(timezone=True)),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", Text, primary_key=True),
    # SHA-256 of a 256-bit random secret; NULL for a public client (which must use PKCE).
    Column("secret_hash", Text),
    Column("name", Text, nullable=False),
    Column("redirect_uris", ARRAY(Text), nullable=False, server_default="{}"),
    Column("grant_types", ARRAY(Text), nullable=False, server_default="{}"),
    Column("scopes", ARRAY(Text), nullable=False, server_default="{}"),
    # Registered through RFC 7591 by anyone: the consent page says it is not ours.
    Column("self_registered", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

token_families = Table(
    "token_families",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("client_id", Text, ForeignKey("auth.clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("user_id", UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE")),
    Column("scope", Text, nullable=False, server_default=""),
    # The RFC 8707 resource the grant was for, in every access token's `aud`; a refresh cannot change it.
    Column("resource", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_reason", Text),
    Index("token_families_user", "user_id"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column(
        "family_id",
        UUID(as_uuid=True),
        ForeignKey("auth.token_families.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # Set once, atomically, when the token is exchanged; a second use is a reuse.
    Column("rotated_at", DateTime(timezone=True)),
    Index("ix_auth_refresh_tokens_family_id", "family_id"),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", Text, primary_key=True),
    Column("client_id", Text, ForeignKey("auth.clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("user_id", UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False, server_default=""),
    Column("code_challenge", Text, nullable=False),
    Column("resource", Text),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    # The family the code's tokens belong to: a replayed code revokes it.
    Column("family_id", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

device_codes = Table(
    "device_codes",
    metadata,
    Column("device_code_hash", Text, primary_key=True),
    Column("user_code", Text, nullable=False, unique=True),
    Column("client_id", Text, ForeignKey("auth.clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("scope", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("user_id", UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE")),
    Column("interval_sec", Integer, nullable=False),
    Column("last_polled_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('pending', 'approved', 'denied', 'issued')", name="device_status"),
)

revoked_access_tokens = Table(
    "revoked_access_tokens",
    metadata,
    Column("jti", Text, primary_key=True),
    # Past this the token is expired anyway and the row may be purged.
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
