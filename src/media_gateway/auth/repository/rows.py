"""Row types of the auth schema and the column lists that build them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
    self_registered: bool = False

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


USER_COLUMNS = (
    "id, email, email_verified, password_hash, display_name, region, platforms, favourite_genres,"
    " max_certification"
)
SELECT_USER = (
    "SELECT id, email, email_verified, password_hash, display_name, region, platforms, favourite_genres,"
    " max_certification FROM auth.users "
)
SELECT_CLIENT = (
    "SELECT client_id, secret_hash, name, redirect_uris, grant_types, scopes, self_registered"
    " FROM auth.clients "
)


def user_from_row(row: Any) -> UserRow:
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


def client_from_row(row: Any) -> ClientRow:
    return ClientRow(
        client_id=row.client_id,
        secret_hash=row.secret_hash,
        name=row.name,
        redirect_uris=list(row.redirect_uris or []),
        grant_types=list(row.grant_types or []),
        scopes=list(row.scopes or []),
        self_registered=row.self_registered,
    )
