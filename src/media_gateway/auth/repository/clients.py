"""Registered OAuth clients (parameterized SQL only)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.auth.repository.rows import (
    SELECT_CLIENT,
    ClientRow,
    client_from_row,
)


async def client_by_id(conn: AsyncConnection, client_id: str) -> ClientRow | None:
    result = await conn.execute(
        text(SELECT_CLIENT + "WHERE client_id = :id"),
        {"id": client_id},
    )
    row = result.first()
    return client_from_row(row) if row else None


async def list_clients(conn: AsyncConnection) -> list[ClientRow]:
    query = SELECT_CLIENT + "ORDER BY created_at"
    result = await conn.execute(text(query))
    return [client_from_row(r) for r in result]


async def insert_client(conn: AsyncConnection, client: ClientRow) -> bool:
    result = await conn.execute(
        text(
            "INSERT INTO auth.clients "
            "(client_id, secret_hash, name, redirect_uris, grant_types, scopes, self_registered) "
            "VALUES (:client_id, :secret_hash, :name, :redirect_uris, :grant_types, :scopes, "
            ":self_registered) "
            "ON CONFLICT (client_id) DO NOTHING RETURNING client_id"
        ),
        {
            "client_id": client.client_id,
            "secret_hash": client.secret_hash,
            "name": client.name,
            "redirect_uris": client.redirect_uris,
            "grant_types": client.grant_types,
            "scopes": client.scopes,
            "self_registered": client.self_registered,
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
