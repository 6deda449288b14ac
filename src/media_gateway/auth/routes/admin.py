"""Operator endpoints: OAuth clients and signing-key rotation. Callers present the admin token or a
client-credentials token with the `admin` scope."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from media_gateway.auth import repository
from media_gateway.auth.oauth_clients import create_client
from media_gateway.auth.repository import ClientRow
from media_gateway.auth.schemas import ClientCreate, ClientOut, KeyRotation
from media_gateway.auth.state import auth_state
from media_gateway.core.admin import require_admin
from media_gateway.core.app import ServiceContext
from media_gateway.core.errors import ProblemError

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


def _out(client: ClientRow, secret: str | None = None) -> ClientOut:
    return ClientOut(
        client_id=client.client_id,
        name=client.name,
        confidential=not client.is_public,
        redirect_uris=client.redirect_uris,
        grant_types=client.grant_types,
        scopes=client.scopes,
        self_registered=client.self_registered,
        client_secret=secret,
    )


@router.post("/clients", status_code=201)
async def register_client(request: Request, body: ClientCreate) -> ClientOut:
    ctx: ServiceContext = request.app.state.ctx
    try:
        async with ctx.engine.begin() as conn:
            created = await create_client(
                conn,
                name=body.name,
                client_id=body.client_id,
                redirect_uris=body.redirect_uris,
                grant_types=body.grant_types,
                scopes=body.scopes,
                confidential=body.confidential,
            )
    except ValueError as exc:
        raise ProblemError(400, str(exc)) from exc
    return _out(created.client, created.secret)


@router.get("/clients")
async def list_clients(request: Request) -> list[ClientOut]:
    ctx: ServiceContext = request.app.state.ctx
    async with ctx.engine.connect() as conn:
        return [_out(c) for c in await repository.list_clients(conn)]


@router.post("/keys/rotate")
async def rotate_keys(request: Request) -> KeyRotation:
    keys = await auth_state(request.app.state.ctx).keys.rotate()
    return KeyRotation(current_kid=keys.current.kid, published_kids=[k.kid for k in keys.published])
