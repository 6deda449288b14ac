"""RFC 8628 device authorization: codes for input-constrained devices (TVs), approved elsewhere."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from media_gateway.auth import repository
from media_gateway.auth.issuance import new_opaque_token, token_hash
from media_gateway.auth.repository import ClientRow
from media_gateway.core.app import ServiceContext

# No vowels (no words), no look-alikes (0/O, 1/I/L, 5/S...): RFC 8628 §6.1.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
_USER_CODE = re.compile(rf"^[{USER_CODE_ALPHABET}]{{8}}$")


def new_user_code() -> str:
    raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_user_code(value: str) -> str | None:
    """`XXXX-XXXX` from what a user typed (any case, dashes or spaces), or None if it cannot be one."""
    compact = re.sub(r"[\s-]", "", value).upper()
    if not _USER_CODE.match(compact):
        return None
    return f"{compact[:4]}-{compact[4:]}"


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int

    def response(self) -> dict[str, Any]:
        complete = urlencode({"user_code": self.user_code})
        return {
            "device_code": self.device_code,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": f"{self.verification_uri}?{complete}",
            "expires_in": self.expires_in,
            "interval": self.interval,
        }


async def start_device_authorization(
    ctx: ServiceContext, client: ClientRow, scope: str
) -> DeviceAuthorization:
    settings = ctx.settings.auth
    device_code = new_opaque_token()
    async with ctx.engine.begin() as conn:
        for _ in range(10):
            user_code = new_user_code()
            await repository.purge_expired_device_code(conn, user_code)
            inserted = await repository.insert_device_code(
                conn,
                device_code_hash=token_hash(device_code),
                user_code=user_code,
                client_id=client.client_id,
                scope=scope,
                interval_sec=settings.device_poll_interval_sec,
                ttl_sec=settings.device_code_ttl_sec,
            )
            if inserted:
                break
        else:
            raise RuntimeError("could not draw a free user code")
    return DeviceAuthorization(
        device_code=device_code,
        user_code=user_code,
        verification_uri=f"{ctx.settings.token_issuer}/auth/device",
        expires_in=settings.device_code_ttl_sec,
        interval=settings.device_poll_interval_sec,
    )


@dataclass(frozen=True)
class DeviceRequestInfo:
    user_code: str
    client_name: str
    scope: str


async def describe_user_code(ctx: ServiceContext, user_code: str) -> DeviceRequestInfo | None:
    """The pending request a user code names (for the approval page), None if none is pending."""
    code = normalize_user_code(user_code)
    if code is None:
        return None
    async with ctx.engine.connect() as conn:
        request = await repository.device_code_by_user_code(conn, code)
        if request is None or request.expired or request.status != "pending":
            return None
        client = await repository.client_by_id(conn, request.client_id)
    return DeviceRequestInfo(code, client.name if client else request.client_id, request.scope)


async def decide_user_code(ctx: ServiceContext, user_code: str, user_id: uuid.UUID, *, approve: bool) -> bool:
    code = normalize_user_code(user_code)
    if code is None:
        return False
    async with ctx.engine.begin() as conn:
        return await repository.decide_device_code(conn, code, user_id=user_id, approve=approve)
