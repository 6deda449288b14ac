"""Request and response bodies of the auth service's JSON API."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from media_gateway.auth.certifications import CERTIFICATIONS
from media_gateway.auth.oauth_clients import GRANT_TYPES
from media_gateway.catalog.genres import canonical_genre
from media_gateway.catalog.schemas import PLATFORMS

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
Password = Annotated[str, Field(min_length=8, max_length=256)]


def _email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str
    password: Password
    display_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None
    ) = None

    _email_check = field_validator("email")(_email)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str
    # No length rules here: a login must fail the same way whatever was typed.
    password: Annotated[str, Field(max_length=1024)]

    @field_validator("email")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return value.strip().lower()


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = None


class UserProfile(BaseModel):
    id: uuid.UUID
    email: str
    email_verified: bool
    display_name: str | None
    region: str | None
    platforms: list[str]
    favourite_genres: list[str]
    max_certification: str | None


class ProfileUpdate(BaseModel):
    """Fields to change; an omitted field stays, an explicit null clears it."""

    model_config = ConfigDict(extra="forbid")

    display_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None
    ) = None
    # ISO 3166-1 alpha-2.
    region: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")] | None = None
    platforms: list[str] | None = Field(default=None, max_length=len(PLATFORMS))
    favourite_genres: list[str] | None = Field(default=None, max_length=40)
    max_certification: str | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [p for p in value if p not in PLATFORMS]
        if unknown:
            raise ValueError(f"unknown platform(s) {unknown}; known: {', '.join(PLATFORMS)}")
        return list(dict.fromkeys(value))

    @field_validator("favourite_genres")
    @classmethod
    def _genres(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out: list[str] = []
        for name in value:
            genre = canonical_genre(name)
            if genre is None:
                raise ValueError(f"unknown genre {name!r}")
            out.append(genre)
        return list(dict.fromkeys(out))

    @field_validator("max_certification")
    @classmethod
    def _certification(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in CERTIFICATIONS:
            raise ValueError(f"unknown certification; one of {', '.join(CERTIFICATIONS)}")
        return value.upper()


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    client_id: str | None = None
    redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    grant_types: list[str] = Field(default_factory=lambda: ["authorization_code", "refresh_token"])
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email", "offline_access"])
    confidential: bool = True

    @field_validator("grant_types")
    @classmethod
    def _grants(cls, value: list[str]) -> list[str]:
        unknown = [g for g in value if g not in GRANT_TYPES]
        if unknown:
            raise ValueError(f"unknown grant type(s) {unknown}")
        return value


class ClientOut(BaseModel):
    client_id: str
    name: str
    confidential: bool
    redirect_uris: list[str]
    grant_types: list[str]
    scopes: list[str]
    # Registered by anyone through POST /auth/register (RFC 7591), not by an operator.
    self_registered: bool = False
    # Only in the answer to a creation: it is never shown again.
    client_secret: str | None = None


class DeviceDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_code: Annotated[str, StringConstraints(min_length=8, max_length=16)]
    approve: bool = True


class KeyRotation(BaseModel):
    current_kid: str
    published_kids: list[str]


class ClientRegistrationRequest(BaseModel):
    """RFC 7591 §2 client metadata, as far as we act on it; other members are ignored (§2: the server
    "MUST ignore any client metadata sent by the client that it does not understand")."""

    model_config = ConfigDict(extra="ignore", strict=True)

    redirect_uris: list[Annotated[str, StringConstraints(max_length=2000)]] = Field(
        default_factory=list, max_length=20
    )
    # RFC 7591 §2: the default is client_secret_basic; a native app or assistant asks for "none".
    token_endpoint_auth_method: str = "client_secret_basic"  # noqa: S105 - a method name
    grant_types: list[str] = Field(default_factory=lambda: ["authorization_code"], max_length=10)
    response_types: list[str] = Field(default_factory=lambda: ["code"], max_length=10)
    client_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None
    ) = None
    scope: Annotated[str, StringConstraints(max_length=1000)] | None = None
