"""`/api/v1/devices`: a user's devices, handoff and remote commands. The user is the token's; the
calling device, where it matters, is the `X-Device-ID` header."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response, status

from media_gateway.core.app import ServiceContext
from media_gateway.core.security.dependencies import CurrentUser
from media_gateway.sync.devices import service
from media_gateway.sync.devices.schemas import (
    DEVICE_ID_PATTERN,
    CommandList,
    CommandRequest,
    CommandView,
    DeviceList,
    DeviceRegistration,
    DeviceView,
    HandoffRequest,
)

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

OriginDevice = Annotated[
    str | None,
    Header(alias="X-Device-ID", pattern=DEVICE_ID_PATTERN, description="the device making the request"),
]
DevicePath = Annotated[str, Path(pattern=DEVICE_ID_PATTERN)]


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _user(principal: CurrentUser) -> uuid.UUID:
    user_id = principal.user_id
    assert user_id is not None  # CurrentUser admits user tokens only
    return user_id


@router.post(
    "",
    response_model=DeviceView,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": DeviceView, "description": "already registered: updated"}},
)
async def register_device(
    body: DeviceRegistration,
    request: Request,
    response: Response,
    principal: CurrentUser,
    origin: OriginDevice = None,
) -> DeviceView:
    device, created = await service.register_device(_ctx(request), _user(principal), origin, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return device


@router.get("", response_model=DeviceList)
async def list_devices(request: Request, principal: CurrentUser) -> DeviceList:
    return DeviceList(devices=await service.list_devices(_ctx(request), _user(principal)))


@router.post("/handoff", response_model=CommandView, status_code=status.HTTP_202_ACCEPTED)
async def handoff(
    body: HandoffRequest, request: Request, principal: CurrentUser, origin: OriginDevice = None
) -> CommandView:
    return await service.handoff(
        _ctx(request), _user(principal), origin, body.target_device_id, body.content_id, body.position_seconds
    )


@router.post("/{device_id}/heartbeat", response_model=DeviceView)
async def heartbeat(device_id: DevicePath, request: Request, principal: CurrentUser) -> DeviceView:
    return await service.heartbeat(_ctx(request), _user(principal), device_id)


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_device(
    device_id: DevicePath, request: Request, principal: CurrentUser, origin: OriginDevice = None
) -> Response:
    await service.remove_device(_ctx(request), _user(principal), origin, device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{device_id}/commands", response_model=CommandView, status_code=status.HTTP_202_ACCEPTED)
async def issue_command(
    device_id: DevicePath,
    body: CommandRequest,
    request: Request,
    principal: CurrentUser,
    origin: OriginDevice = None,
) -> CommandView:
    return await service.issue_command(
        _ctx(request),
        _user(principal),
        origin,
        device_id,
        body.command,
        content_id=body.content_id,
        position_seconds=body.position_seconds,
    )


@router.get("/{device_id}/commands", response_model=CommandList)
async def pending_commands(device_id: DevicePath, request: Request, principal: CurrentUser) -> CommandList:
    """Commands for the device not yet acknowledged nor expired (for clients without a socket)."""
    return CommandList(commands=await service.pending_commands(_ctx(request), _user(principal), device_id))


@router.get("/{device_id}/commands/{command_id}", response_model=CommandView)
async def get_command(
    device_id: DevicePath, command_id: uuid.UUID, request: Request, principal: CurrentUser
) -> CommandView:
    return await service.get_command(_ctx(request), _user(principal), device_id, command_id)


@router.post("/{device_id}/commands/{command_id}/ack", response_model=CommandView)
async def acknowledge_command(
    device_id: DevicePath,
    command_id: uuid.UUID,
    request: Request,
    principal: CurrentUser,
    origin: OriginDevice = None,
) -> CommandView:
    return await service.acknowledge_command(_ctx(request), _user(principal), origin, device_id, command_id)
