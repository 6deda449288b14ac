"""Accounts: registration, password sign-in, sign-out, and the user's profile."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from media_gateway.auth import repository
from media_gateway.auth.issuance import IssuedTokens, issue_user_tokens, token_hash
from media_gateway.auth.oauth_clients import SERVICE_ONLY_SCOPES
from media_gateway.auth.passwords import hash_password, needs_rehash, verify_password
from media_gateway.auth.repository import UserRow
from media_gateway.auth.schemas import UserProfile
from media_gateway.core.app import ServiceContext


class InvalidCredentials(Exception):
    """Unknown account or wrong password: deliberately indistinguishable."""


def profile(user: UserRow) -> UserProfile:
    return UserProfile(
        id=user.id,
        email=user.email,
        email_verified=user.email_verified,
        display_name=user.display_name,
        region=user.region,
        platforms=user.platforms,
        favourite_genres=user.favourite_genres,
        max_certification=user.max_certification,
    )


async def register(ctx: ServiceContext, *, email: str, password: str, display_name: str | None) -> None:
    """Creates the account if the address is free. Either way the caller learns nothing: the hash is
    computed in both cases, so neither the answer nor its timing tells whether the address exists."""
    password_hash = await hash_password(ctx.settings.auth, password)
    async with ctx.engine.begin() as conn:
        await repository.insert_user(
            conn, email=email, password_hash=password_hash, display_name=display_name
        )


async def authenticate(ctx: ServiceContext, *, email: str, password: str) -> UserRow:
    async with ctx.engine.connect() as conn:
        user = await repository.user_by_email(conn, email)
    if not await verify_password(ctx.settings.auth, user.password_hash if user else None, password):
        raise InvalidCredentials
    assert user is not None
    assert user.password_hash is not None
    if needs_rehash(ctx.settings.auth, user.password_hash):
        new_hash = await hash_password(ctx.settings.auth, password)
        async with ctx.engine.begin() as conn:
            await repository.update_password_hash(conn, user.id, new_hash)
    return user


async def first_party_scope(ctx: ServiceContext) -> tuple[str, str]:
    client_id = ctx.settings.auth.first_party_client_id
    async with ctx.engine.connect() as conn:
        client = await repository.client_by_id(conn, client_id)
    if client is None:
        raise RuntimeError(f"the first-party client {client_id} is not registered")
    return client_id, " ".join(s for s in client.scopes if s not in SERVICE_ONLY_SCOPES)


async def login(ctx: ServiceContext, *, email: str, password: str) -> IssuedTokens:
    user = await authenticate(ctx, email=email, password=password)
    client_id, scope = await first_party_scope(ctx)
    async with ctx.engine.begin() as conn:
        return await issue_user_tokens(ctx, conn, client_id=client_id, user_id=user.id, scope=scope)


async def logout(
    ctx: ServiceContext, *, user_id: uuid.UUID, session_id: str | None, refresh_token: str | None
) -> None:
    """Revokes the caller's token family (the `sid` of its access token), and the family of a refresh
    token it hands in if that belongs to the same user."""
    families: set[uuid.UUID] = set()
    if session_id:
        with contextlib.suppress(ValueError):
            families.add(uuid.UUID(session_id))
    async with ctx.engine.begin() as conn:
        if refresh_token:
            state = await repository.refresh_token_state(conn, token_hash(refresh_token))
            if state is not None and state.user_id == user_id:
                families.add(state.family_id)
        for family_id in families:
            await repository.revoke_family_of_user(conn, family_id, user_id, "logout")


async def get_profile(ctx: ServiceContext, user_id: uuid.UUID) -> UserProfile | None:
    async with ctx.engine.connect() as conn:
        user = await repository.user_by_id(conn, user_id)
    return profile(user) if user else None


async def update_profile(
    ctx: ServiceContext, user_id: uuid.UUID, changes: dict[str, Any]
) -> UserProfile | None:
    async with ctx.engine.begin() as conn:
        user = await repository.update_user_profile(conn, user_id, changes)
    return profile(user) if user else None
