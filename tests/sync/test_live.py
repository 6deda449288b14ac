"""The sync WebSocket (`/api/v1/sync/ws`) against real uvicorn servers, PostgreSQL and Redis pub/sub:
pushes between devices, commands, resume from a cursor, isolation, auth, and two replicas."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from media_gateway.core.db import make_engine
from media_gateway.core.redis import make_redis
from media_gateway.core.settings import Settings
from media_gateway.sync.app import create_app
from media_gateway.sync.crdt import Timestamp
from media_gateway.sync.oplog import (
    WATCHLIST_ADD,
    NewOperation,
    append_operations,
    live_channel,
    publish_committed,
)
from tests.conftest import make_settings
from tests.fakes.token_issuer import TestTokenIssuer
from tests.support import serving

# Generous: only a broken push waits this long.
RECEIVE_TIMEOUT = 5.0


def _settings(base: Settings, issuer: TestTokenIssuer, **sync: Any) -> Settings:
    return make_settings(database_url=base.database_url, auth=issuer.auth_settings(), sync=sync)


@pytest.fixture(scope="module")
async def replicas(
    migrated_settings: Settings, token_issuer: TestTokenIssuer
) -> AsyncIterator[tuple[str, str]]:
    """Two apps on the same database and Redis: two replicas of the sync service."""
    settings = _settings(migrated_settings, token_issuer)
    async with serving(create_app(settings)) as one, serving(create_app(settings)) as two:
        yield one, two


@pytest.fixture
def base_url(replicas: tuple[str, str]) -> str:
    return replicas[0]


class Socket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.cursor: str | None = None
        # The ops replayed after the connect cursor, before `synced`.
        self.replayed: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        message: dict[str, Any] = orjson.loads(await asyncio.wait_for(self.ws.recv(), RECEIVE_TIMEOUT))
        if "cursor" in message:
            self.cursor = message["cursor"]
        return message

    async def synced(self) -> str:
        while (message := await self.next())["type"] == "op":
            self.replayed.append(message["op"])
        assert message["type"] == "synced", message
        return str(message["cursor"])

    async def op(self) -> dict[str, Any]:
        while True:
            message = await self.next()
            if message["type"] == "op":
                op: dict[str, Any] = message["op"]
                return op

    async def ops_until(self, kind: str, content_id: str) -> list[dict[str, Any]]:
        """Every op up to and including the marker (kind, content_id)."""
        seen = []
        while True:
            op = await self.op()
            seen.append(op)
            if op["kind"] == kind and op["content_id"] == content_id:
                return seen


class Device:
    def __init__(self, base_url: str, token: str, device_id: str) -> None:
        self.base_url = base_url
        self.token = token
        self.device_id = device_id
        self.http = httpx.AsyncClient(
            base_url=f"{base_url}/api/v1",
            headers={"Authorization": f"Bearer {token}", "X-Device-ID": device_id},
        )

    async def register(self, type_: str = "phone") -> None:
        body = {"device_id": self.device_id, "name": self.device_id, "type": type_}
        response = await self.http.post("/devices", json=body)
        assert response.status_code in (200, 201), response.text

    async def add(self, content_id: str) -> dict[str, Any]:
        response = await self.http.put(f"/sync/watchlist/{content_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    @contextlib.asynccontextmanager
    async def socket(self, cursor: str | None = None, base_url: str | None = None) -> AsyncIterator[Socket]:
        query = f"device_id={self.device_id}" + (f"&cursor={cursor}" if cursor is not None else "")
        url = f"{(base_url or self.base_url).replace('http', 'ws', 1)}/api/v1/sync/ws?{query}"
        async with connect(
            url, additional_headers={"Authorization": f"Bearer {self.token}"}, proxy=None
        ) as ws:
            sock = Socket(ws)
            await sock.synced()
            yield sock


@pytest.fixture
async def alice(base_url: str, token_issuer: TestTokenIssuer) -> AsyncIterator[tuple[Device, Device]]:
    token = token_issuer.mint(uuid.uuid4())
    phone, tv = Device(base_url, token, "phone"), Device(base_url, token, "tv")
    await phone.register("phone")
    await tv.register("tv")
    yield phone, tv
    await phone.http.aclose()
    await tv.http.aclose()


async def test_second_device_receives_the_push_and_the_writer_no_echo(alice: tuple[Device, Device]) -> None:
    phone, tv = alice
    async with phone.socket() as phone_ws, tv.socket() as tv_ws:
        written = await phone.add("m-arrival")
        op = await tv_ws.op()
        assert op["kind"] == "watchlist.add"
        assert op["content_id"] == "m-arrival"
        assert op["device_id"] == "phone"
        assert op["seq"] == written["operation"]["seq"]
        assert tv_ws.cursor == written["cursor"]

        report = {
            "content_id": "m-arrival",
            "position_seconds": 60.0,
            "duration_seconds": 6000.0,
            "state": "playing",
        }
        assert (await phone.http.post("/sync/progress", json=report)).status_code == 200
        progress = await tv_ws.op()
        assert (progress["kind"], progress["payload"]["position_seconds"]) == ("progress.set", 60.0)

        # The phone's socket skips its own writes: the next thing it sees is the TV's.
        await tv.add("m-dune")
        op = await phone_ws.op()
        assert (op["kind"], op["content_id"], op["device_id"]) == ("watchlist.add", "m-dune", "tv")


async def test_reconnect_with_cursor_catches_up_without_gaps_or_duplicates(
    alice: tuple[Device, Device],
) -> None:
    phone, tv = alice
    async with tv.socket() as tv_ws:
        await phone.add("m-1")
        assert (await tv_ws.op())["content_id"] == "m-1"
        cursor = tv_ws.cursor
    assert cursor is not None
    missed = [f"m-{n}" for n in range(2, 7)]
    for content_id in missed:
        await phone.add(content_id)
    async with tv.socket(cursor=None) as fresh:
        # Without a cursor the stream starts at the head: none of the missed ops come again.
        await phone.add("m-marker-1")
        assert (await fresh.op())["content_id"] == "m-marker-1"

    async with tv.socket(cursor=cursor) as sock:
        assert [op["content_id"] for op in sock.replayed] == [*missed, "m-marker-1"]
        # And live from there on, once each.
        await phone.add("m-7")
        assert (await sock.op())["content_id"] == "m-7"
        await sock.ws.send(orjson.dumps({"type": "ping"}).decode())
        pong = await sock.next()
        assert pong["type"] == "pong"
        assert pong["cursor"] == sock.cursor
        await sock.ws.send(b"\x00not json")
        assert (await sock.next())["type"] == "error"
        await phone.add("m-8")
        assert (await sock.op())["content_id"] == "m-8"


async def test_an_op_whose_publish_is_overtaken_or_lost_still_arrives_in_order(
    alice: tuple[Device, Device], migrated_settings: Settings
) -> None:
    """Replica 1 commits op A, but its publish is slow (or lost); replica 2 then commits B and
    publishes it first. The socket must not jump its cursor past A."""
    phone, tv = alice
    user_id = uuid.UUID(jwt.decode(phone.token, options={"verify_signature": False})["sub"])
    async with tv.socket() as tv_ws:
        engine = make_engine(migrated_settings)
        try:
            async with engine.begin() as conn:
                raw = await conn.get_raw_connection()
                [unpublished] = await append_operations(
                    raw.driver_connection,
                    [
                        NewOperation(
                            user_id=user_id,
                            op_id=uuid.uuid4(),
                            kind=WATCHLIST_ADD,
                            device_id="laptop",
                            content_id="published-late",
                            payload={"tag": str(uuid.uuid4())},
                            hlc=Timestamp(int(time.time() * 1000), 0, "replica-1").encode(),
                        )
                    ],
                )
        finally:
            await engine.dispose()
        await phone.add("published-first")
        first, second = await tv_ws.op(), await tv_ws.op()
        assert [first["content_id"], second["content_id"]] == ["published-late", "published-first"]
        assert first["seq"] == unpublished.seq < second["seq"]
        assert "prev_seq" not in first
        assert "prev_seq" not in second
        # The late publish finally arrives: already delivered, so it is not sent again.
        async with make_redis(migrated_settings) as redis:
            await publish_committed(redis, migrated_settings, [unpublished])
        await phone.add("after")
        assert (await tv_ws.op())["content_id"] == "after"


async def test_another_user_sees_nothing(
    alice: tuple[Device, Device], base_url: str, token_issuer: TestTokenIssuer
) -> None:
    phone, _ = alice
    bob = Device(base_url, token_issuer.mint(uuid.uuid4()), "phone")
    try:
        await bob.register()
        async with bob.socket(cursor="0") as bob_ws:
            await phone.add("m-private")
            await phone.http.post("/devices/tv/commands", json={"command": "pause"})
            # Bob's own write comes after Alice's: had hers leaked, it would arrive first.
            bob_tablet = Device(base_url, bob.token, "tablet")
            await bob_tablet.add("m-bob")
            await bob_tablet.http.aclose()
            seen = await bob_ws.ops_until("watchlist.add", "m-bob")
            # (Bob's own device.registered is not echoed to the device that made it.)
            assert [(op["kind"], op["content_id"]) for op in seen] == [("watchlist.add", "m-bob")]
        changes = (await bob.http.get("/sync/changes", params={"since": "0"})).json()["operations"]
        assert "m-private" not in {op["content_id"] for op in changes}
    finally:
        await bob.http.aclose()


async def test_handoff_reaches_the_target_which_acknowledges(alice: tuple[Device, Device]) -> None:
    phone, tv = alice
    progress = await phone.http.post(
        "/sync/progress",
        json={
            "content_id": "m-film",
            "position_seconds": 1234.0,
            "duration_seconds": 6000.0,
            "state": "paused",
        },
    )
    assert progress.status_code == 200, progress.text
    async with phone.socket() as phone_ws, tv.socket() as tv_ws:
        handoff = await phone.http.post(
            "/devices/handoff", json={"target_device_id": "tv", "content_id": "m-film"}
        )
        assert handoff.status_code == 202
        command = handoff.json()
        op = await tv_ws.op()
        assert op["kind"] == "command.issued"
        issued = op["payload"]
        assert issued["command_id"] == command["command_id"]
        assert issued["target_device_id"] == "tv"
        assert (issued["command"], issued["content_id"], issued["position_seconds"]) == (
            "play",
            "m-film",
            1234.0,
        )

        ack = await tv.http.post(f"/devices/tv/commands/{issued['command_id']}/ack")
        assert ack.status_code == 200
        assert ack.json()["status"] == "acknowledged"
        acked = await phone_ws.op()
        assert acked["kind"] == "command.acknowledged"
        assert acked["payload"]["command_id"] == command["command_id"]


async def test_a_write_on_one_replica_reaches_a_socket_on_the_other(
    replicas: tuple[str, str], alice: tuple[Device, Device]
) -> None:
    phone, tv = alice
    async with tv.socket(base_url=replicas[1]) as tv_ws:
        await phone.add("m-cross")
        op = await tv_ws.op()
        assert op["content_id"] == "m-cross"
        await phone.http.post("/devices/tv/commands", json={"command": "stop"})
        assert (await tv_ws.op())["payload"]["command"] == "stop"


async def test_device_events_are_pushed(alice: tuple[Device, Device]) -> None:
    phone, tv = alice
    async with phone.socket() as phone_ws:
        await tv.http.post("/devices", json={"device_id": "tv", "name": "Den TV", "type": "tv"})
        updated = await phone_ws.op()
        assert updated["kind"] == "device.updated"
        assert updated["payload"]["name"] == "Den TV"
        # A heartbeat of an online device is no news; the removal is.
        await tv.http.post("/devices/tv/heartbeat")
        assert (await tv.http.delete("/devices/tv")).status_code == 204
        removed = await phone_ws.op()
        assert removed["kind"] == "device.removed"
        assert removed["payload"]["device_id"] == "tv"


async def _close_code(url: str, **kwargs: Any) -> int:
    async with connect(url, proxy=None, **kwargs) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_bad_tokens_and_parameters_are_refused(base_url: str, token_issuer: TestTokenIssuer) -> None:
    url = f"{base_url.replace('http', 'ws', 1)}/api/v1/sync/ws"
    assert await _close_code(url) == 4401
    assert await _close_code(url, additional_headers={"Authorization": "Bearer not-a-jwt"}) == 4401
    expired = token_issuer.mint(uuid.uuid4(), ttl_sec=-3600)
    assert await _close_code(url, additional_headers={"Authorization": f"Bearer {expired}"}) == 4401
    client = token_issuer.mint_client("svc", scopes="sync")
    assert await _close_code(url, additional_headers={"Authorization": f"Bearer {client}"}) == 4403
    user = token_issuer.mint(uuid.uuid4())
    headers = {"Authorization": f"Bearer {user}"}
    assert await _close_code(f"{url}?cursor=abc", additional_headers=headers) == 4400
    assert await _close_code(f"{url}?device_id=a%20b", additional_headers=headers) == 4400
    with pytest.raises(InvalidStatus):
        async with connect(f"{base_url.replace('http', 'ws', 1)}/api/v1/sync/nope", proxy=None):
            pass


async def test_browser_subprotocol_authentication(alice: tuple[Device, Device], base_url: str) -> None:
    phone, _ = alice
    url = f"{base_url.replace('http', 'ws', 1)}/api/v1/sync/ws?device_id=web-1"
    protocols: Any = ["mg.sync.v1", f"bearer.{phone.token}"]
    async with connect(url, subprotocols=protocols, proxy=None) as ws:
        assert ws.subprotocol == "mg.sync.v1"
        sock = Socket(ws)
        await sock.synced()
        await phone.add("m-web")
        assert (await sock.op())["content_id"] == "m-web"


async def _drain(ws: ClientConnection) -> None:
    while True:
        await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)


def _small_buffer_socket(base_url: str) -> socket.socket:
    """A client socket whose kernel receive buffer stays small, as a phone on a bad network's would."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32_768)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


@pytest.fixture(scope="module")
async def edge_app(
    migrated_settings: Settings, token_issuer: TestTokenIssuer
) -> AsyncIterator[tuple[str, Settings]]:
    """A replica with a tiny per-socket queue and a Redis prefix (so a hub connection) of its own."""
    settings = make_settings(
        database_url=migrated_settings.database_url,
        auth=token_issuer.auth_settings(),
        redis={"prefix": f"{migrated_settings.redis.prefix}-edge"},
        sync={"ws_queue_size": 8, "ws_send_timeout_sec": 30},
    )
    async with serving(create_app(settings)) as url:
        yield url, settings


async def test_a_slow_socket_is_dropped_without_holding_up_the_others(
    edge_app: tuple[str, Settings], token_issuer: TestTokenIssuer
) -> None:
    url, settings = edge_app
    user_id = uuid.uuid4()
    token = token_issuer.mint(user_id)
    redis = make_redis(settings)
    padding = "x" * 65_536
    ws_url = f"{url.replace('http', 'ws', 1)}/api/v1/sync/ws?cursor=0"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            # Uncompressed, so that the padding really fills the buffers.
            connect(
                ws_url,
                additional_headers=headers,
                max_queue=1,
                compression=None,
                sock=_small_buffer_socket(url),
            ) as slow,
            connect(ws_url, additional_headers=headers, proxy=None, compression=None) as fast,
        ):
            sock = Socket(fast)
            await sock.synced()
            await Socket(slow).synced()
            # Ops as the write path publishes them, large enough to fill the slow reader's TCP
            # buffers; each is read by the fast socket before the next goes out.
            for seq in range(1, 120):
                op = {
                    "seq": 10**12 + seq,
                    "prev_seq": 10**12 + seq - 1 if seq > 1 else 0,
                    "kind": "test.padding",
                    "device_id": None,
                    "payload": {"p": padding},
                }
                await redis.publish(live_channel(settings, user_id), orjson.dumps(op))
                assert (await sock.op())["seq"] == op["seq"]
            # It still gets what was in flight, then the close telling it to resume.
            with pytest.raises(ConnectionClosed) as closed:
                await _drain(slow)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4429
    finally:
        await redis.aclose()


async def test_sockets_resume_after_the_hub_loses_redis(
    edge_app: tuple[str, Settings], token_issuer: TestTokenIssuer
) -> None:
    url, settings = edge_app
    admin = make_redis(settings)
    token = token_issuer.mint(uuid.uuid4())
    phone, tv = Device(url, token, "phone"), Device(url, token, "tv")
    try:
        async with tv.socket() as tv_ws:
            await phone.add("m-before")
            assert (await tv_ws.op())["content_id"] == "m-before"
            hub_prefix = f"{settings.redis.prefix}:sync:live-hub:"
            hubs = [c for c in await admin.client_list() if c.get("name", "").startswith(hub_prefix)]
            assert len(hubs) == 1
            await admin.client_kill_filter(_id=hubs[0]["id"])
            # The push of anything written now may be lost: the socket is told to resume.
            await phone.add("m-during")
            with pytest.raises(ConnectionClosed) as closed:
                await _drain(tv_ws.ws)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4429
            cursor = tv_ws.cursor
        async with tv.socket(cursor=cursor) as resumed:
            assert [op["content_id"] for op in resumed.replayed] == ["m-during"]
        async with tv.socket(cursor=resumed.cursor) as live:
            await phone.add("m-after")
            assert (await live.op())["content_id"] == "m-after"
    finally:
        await phone.http.aclose()
        await tv.http.aclose()
        await admin.aclose()
