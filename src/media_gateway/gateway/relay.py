"""`relay_websocket`: the live-sync WebSocket through the gateway, frame for frame.

The upstream handshake happens first, with the client's subprotocols and credentials, so the client is
answered with the subprotocol sync chose and sees sync's own close codes (4401, 4403, 4429...)
unchanged. Authentication stays sync's: the gateway neither reads nor logs the token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from media_gateway.core.app import ServiceContext
from media_gateway.core.request_id import REQUEST_ID_HEADER, current_request_id, new_request_id
from media_gateway.gateway.limits import forwarded_client_ip

logger = logging.getLogger(__name__)

# Close codes a peer may not put on the wire (RFC 6455 §7.4.1): "no status" and "abnormal closure".
_RESERVED_CLOSE: Final = frozenset({1005, 1006, 1015})
CLOSE_UPSTREAM_UNAVAILABLE: Final = 1013  # "try again later"
_HANDSHAKE_HEADERS: Final = frozenset(
    {
        "host",
        "connection",
        "upgrade",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "content-length",
        "forwarded",
        REQUEST_ID_HEADER.lower(),
    }
)


def _upstream_url(ctx: ServiceContext, websocket: WebSocket) -> str:
    base = ctx.settings.service_url("sync")
    scheme, _, rest = base.partition("://")
    url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}{websocket.url.path}"
    return f"{url}?{websocket.url.query}" if websocket.url.query else url


async def relay_websocket(websocket: WebSocket, ctx: ServiceContext) -> None:
    headers = [
        (k, v)
        for k, v in websocket.headers.items()
        if k.lower() not in _HANDSHAKE_HEADERS and not k.lower().startswith("x-forwarded-")
    ]
    headers.append(("x-forwarded-for", forwarded_client_ip(websocket, ctx)))
    headers.append((REQUEST_ID_HEADER, current_request_id() or new_request_id()))
    offered: list[str] = websocket.scope.get("subprotocols", [])
    try:
        upstream = await connect(
            _upstream_url(ctx, websocket),
            subprotocols=offered or None,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=ctx.settings.gateway.websocket_connect_timeout_sec,
        )
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        logger.warning("live sync upstream unavailable", extra={"error": type(exc).__name__})
        await websocket.accept()
        await websocket.close(code=CLOSE_UPSTREAM_UNAVAILABLE, reason="live sync unavailable; reconnect")
        return
    await websocket.accept(subprotocol=upstream.subprotocol)
    to_upstream = asyncio.create_task(_client_to_upstream(websocket, upstream))
    to_client = asyncio.create_task(_upstream_to_client(upstream, websocket))
    try:
        await asyncio.wait({to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_upstream, to_client):
            task.cancel()
        await asyncio.gather(to_upstream, to_client, return_exceptions=True)
        await upstream.close()


async def _client_to_upstream(websocket: WebSocket, upstream: ClientConnection) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            code = int(message.get("code") or 1000)
            await upstream.close(code=1000 if code in _RESERVED_CLOSE else code)
            return
        if message.get("text") is not None:
            await upstream.send(message["text"])
        elif message.get("bytes") is not None:
            await upstream.send(message["bytes"])


async def _upstream_to_client(upstream: ClientConnection, websocket: WebSocket) -> None:
    try:
        async for frame in upstream:
            if isinstance(frame, str):
                await websocket.send_text(frame)
            else:
                await websocket.send_bytes(frame)
    except ConnectionClosed:
        pass
    code = upstream.close_code or 1000
    if code in _RESERVED_CLOSE:
        code = CLOSE_UPSTREAM_UNAVAILABLE
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code=code, reason=upstream.close_reason or "")
