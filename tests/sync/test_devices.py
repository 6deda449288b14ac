"""Devices, handoff and remote commands of the sync service, over HTTP (and the WebSocket where a
command's delivery is the point) against a real uvicorn."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from media_gateway.core.settings import Settings
from media_gateway.sync.app import create_app
from tests.conftest import make_settings
from tests.fakes.token_issuer import TestTokenIssuer
from tests.support import serving

PROBLEM = "application/problem+json"


def _settings(base: Settings, issuer: TestTokenIssuer, **sync: Any) -> Settings:
    return make_settings(database_url=base.database_url, auth=issuer.auth_settings(), sync=sync)


@pytest.fixture(scope="module")
async def base_url(migrated_settings: Settings, token_issuer: TestTokenIssuer) -> AsyncIterator[str]:
    async with serving(create_app(_settings(migrated_settings, token_issuer))) as url:
        yield url


class User:
    def __init__(self, base_url: str, issuer: TestTokenIssuer) -> None:
        self.id = uuid.uuid4()
        self.token = issuer.mint(self.id)
        self.http = httpx.AsyncClient(
            base_url=f"{base_url}/api/v1", headers={"Authorization": f"Bearer {self.token}"}
        )

    async def register(self, device_id: str | None, name: str = "Living room", type_: str = "tv") -> Any:
        body: dict[str, Any] = {"name": name, "type": type_, "platform": "tizen"}
        if device_id is not None:
            body["device_id"] = device_id
        response = await self.http.post("/devices", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()


@pytest.fixture
async def users(base_url: str, token_issuer: TestTokenIssuer) -> AsyncIterator[tuple[User, User]]:
    alice, bob = User(base_url, token_issuer), User(base_url, token_issuer)
    yield alice, bob
    await alice.http.aclose()
    await bob.http.aclose()


async def test_register_list_heartbeat_delete(users: tuple[User, User]) -> None:
    alice, _ = users
    first = await alice.http.post(
        "/devices",
        json={
            "device_id": "tv-1",
            "name": "Living room",
            "type": "tv",
            "platform": "tizen",
            "capabilities": {"max_resolution": "UHD", "hdr": True},
        },
    )
    assert first.status_code == 201
    device = first.json()
    assert device["device_id"] == "tv-1"
    assert device["type"] == "tv"
    assert device["online"] is True
    assert device["capabilities"]["max_resolution"] == "UHD"

    again = await alice.http.post("/devices", json={"device_id": "tv-1", "name": "Bedroom", "type": "tv"})
    assert again.status_code == 200
    assert again.json()["name"] == "Bedroom"

    minted = await alice.register(None, name="Pixel", type_="phone")
    uuid.UUID(minted["device_id"])

    listed = (await alice.http.get("/devices")).json()["devices"]
    assert {d["device_id"]: d["name"] for d in listed} == {"tv-1": "Bedroom", minted["device_id"]: "Pixel"}
    assert all(d["online"] for d in listed)

    beat = await alice.http.post("/devices/tv-1/heartbeat")
    assert beat.status_code == 200
    assert beat.json()["last_seen_at"] >= device["last_seen_at"]
    missing = await alice.http.post("/devices/nope/heartbeat")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM

    assert (await alice.http.delete("/devices/tv-1")).status_code == 204
    assert (await alice.http.delete("/devices/tv-1")).status_code == 404
    listed = (await alice.http.get("/devices")).json()["devices"]
    assert [d["device_id"] for d in listed] == [minted["device_id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "type": "fridge"},
        {"name": "", "type": "tv"},
        {"name": "x", "type": "tv", "device_id": "has space"},
        {"name": "x", "type": "tv", "capabilities": {"max_resolution": "8K"}},
        {"type": "tv"},
    ],
)
async def test_registration_is_validated(users: tuple[User, User], body: dict[str, Any]) -> None:
    alice, _ = users
    response = await alice.http.post("/devices", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert (await alice.http.get("/devices")).json()["devices"] == []


async def test_devices_need_a_user_token(base_url: str, token_issuer: TestTokenIssuer) -> None:
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as anonymous:
        assert (await anonymous.get("/devices")).status_code == 401
        client = token_issuer.mint_client("svc", scopes="sync")
        response = await anonymous.get("/devices", headers={"Authorization": f"Bearer {client}"})
        assert response.status_code == 403


async def test_handoff_and_command_errors(users: tuple[User, User]) -> None:
    alice, _ = users
    await alice.register("tv-1")
    unknown = await alice.http.post("/devices/handoff", json={"target_device_id": "nope", "content_id": "m1"})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM
    bad = await alice.http.post("/devices/handoff", json={"target_device_id": "tv-1"})
    assert bad.status_code == 422
    seek = await alice.http.post("/devices/tv-1/commands", json={"command": "seek"})
    assert seek.status_code == 422
    rewind = await alice.http.post("/devices/tv-1/commands", json={"command": "rewind"})
    assert rewind.status_code == 422
    assert (await alice.http.post("/devices/nope/commands", json={"command": "pause"})).status_code == 404

    locked = await alice.http.post(
        "/devices",
        json={
            "device_id": "kiosk",
            "name": "Kiosk",
            "type": "web",
            "capabilities": {"remote_controllable": False},
        },
    )
    assert locked.status_code == 201
    refused = await alice.http.post("/devices/kiosk/commands", json={"command": "pause"})
    assert refused.status_code == 409


async def test_command_acknowledgement(users: tuple[User, User]) -> None:
    alice, _ = users
    await alice.register("tv-1")
    await alice.register("phone-1", name="Phone", type_="phone")
    issued = await alice.http.post(
        "/devices/tv-1/commands",
        json={"command": "seek", "position_seconds": 42.5, "content_id": "m1"},
        headers={"X-Device-ID": "phone-1"},
    )
    assert issued.status_code == 202
    command = issued.json()
    assert command["status"] == "pending"
    assert command["source_device_id"] == "phone-1"
    assert command["position_seconds"] == 42.5
    ack_url = f"/devices/tv-1/commands/{command['command_id']}/ack"

    pending = (await alice.http.get("/devices/tv-1/commands")).json()["commands"]
    assert [c["command_id"] for c in pending] == [command["command_id"]]

    # Only the target acknowledges.
    assert (await alice.http.post(ack_url)).status_code == 403
    assert (await alice.http.post(ack_url, headers={"X-Device-ID": "phone-1"})).status_code == 403
    acked = await alice.http.post(ack_url, headers={"X-Device-ID": "tv-1"})
    assert acked.status_code == 200
    assert acked.json()["status"] == "acknowledged"
    again = await alice.http.post(ack_url, headers={"X-Device-ID": "tv-1"})
    assert again.status_code == 200
    assert again.json()["acknowledged_at"] == acked.json()["acknowledged_at"]

    status = await alice.http.get(f"/devices/tv-1/commands/{command['command_id']}")
    assert status.json()["status"] == "acknowledged"
    assert (await alice.http.get("/devices/tv-1/commands")).json()["commands"] == []
    stray = await alice.http.post(
        f"/devices/tv-1/commands/{uuid.uuid4()}/ack", headers={"X-Device-ID": "tv-1"}
    )
    assert stray.status_code == 404


async def test_handoff_position_explicit_or_default(users: tuple[User, User]) -> None:
    alice, _ = users
    await alice.register("tv-1")
    explicit = await alice.http.post(
        "/devices/handoff", json={"target_device_id": "tv-1", "content_id": "m1", "position_seconds": 600}
    )
    assert explicit.status_code == 202
    assert explicit.json()["command"] == "play"
    assert explicit.json()["position_seconds"] == 600
    fresh = await alice.http.post("/devices/handoff", json={"target_device_id": "tv-1", "content_id": "m2"})
    assert fresh.status_code == 202
    assert fresh.json()["position_seconds"] == 0


async def test_users_are_isolated(users: tuple[User, User]) -> None:
    alice, bob = users
    await alice.register("tv-1")
    assert (await bob.http.get("/devices")).json()["devices"] == []
    assert (await bob.http.post("/devices/tv-1/heartbeat")).status_code == 404
    assert (await bob.http.post("/devices/tv-1/commands", json={"command": "stop"})).status_code == 404
    handoff = await bob.http.post("/devices/handoff", json={"target_device_id": "tv-1", "content_id": "m1"})
    assert handoff.status_code == 404
    command = (await alice.http.post("/devices/tv-1/commands", json={"command": "stop"})).json()
    assert (await bob.http.get(f"/devices/tv-1/commands/{command['command_id']}")).status_code == 404
    ack = await bob.http.post(
        f"/devices/tv-1/commands/{command['command_id']}/ack", headers={"X-Device-ID": "tv-1"}
    )
    assert ack.status_code == 404
    assert (await bob.http.delete("/devices/tv-1")).status_code == 404
    # Bob may use the same device id for a device of his own; Alice's is untouched.
    await bob.register("tv-1", name="Bob's TV")
    alices = (await alice.http.get("/devices")).json()["devices"]
    assert [d["name"] for d in alices] == ["Living room"]


async def _replay(base_url: str, token: str, cursor: str) -> list[dict[str, Any]]:
    """The ops a socket (of a device that is not registered) replays after `cursor`."""
    url = f"{base_url.replace('http', 'ws', 1)}/api/v1/sync/ws?device_id=watcher&cursor={cursor}"
    ops = []
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, proxy=None) as ws:
        while (message := orjson.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] == "op":
            ops.append(message["op"])
        assert message["type"] == "synced"
    return ops


async def test_offline_device_and_expired_command(
    migrated_settings: Settings, token_issuer: TestTokenIssuer, base_url: str
) -> None:
    settings = _settings(migrated_settings, token_issuer, device_online_sec=1, command_ttl_sec=0.3)
    async with serving(create_app(settings)) as url:
        alice = User(url, token_issuer)
        try:
            await alice.register("tv-1")
            start = (await alice.http.get("/sync/changes", params={"since": "0"})).json()["cursor"]
            command = (await alice.http.post("/devices/tv-1/commands", json={"command": "pause"})).json()
            await asyncio.sleep(1.1)  # past both the 0.3 s command TTL and the 1 s online window

            # An expired command is not delivered: a socket resuming from before it skips it.
            await alice.http.put("/sync/watchlist/m-after")
            assert [op["kind"] for op in await _replay(url, alice.token, start)] == ["watchlist.add"]

            gone = await alice.http.post(
                f"/devices/tv-1/commands/{command['command_id']}/ack", headers={"X-Device-ID": "tv-1"}
            )
            assert gone.status_code == 410
            assert gone.headers["content-type"] == PROBLEM
            status = await alice.http.get(f"/devices/tv-1/commands/{command['command_id']}")
            assert status.json()["status"] == "expired"
            assert (await alice.http.get("/devices/tv-1/commands")).json()["commands"] == []

            listed = (await alice.http.get("/devices")).json()["devices"]
            assert listed[0]["online"] is False
            offline = await alice.http.post(
                "/devices/handoff", json={"target_device_id": "tv-1", "content_id": "m1"}
            )
            assert offline.status_code == 409
            assert offline.headers["content-type"] == PROBLEM
            assert (
                await alice.http.post("/devices/tv-1/commands", json={"command": "play"})
            ).status_code == 409

            beat = await alice.http.post("/devices/tv-1/heartbeat")
            assert beat.json()["online"] is True
            back = await alice.http.post(
                "/devices/handoff", json={"target_device_id": "tv-1", "content_id": "m1"}
            )
            assert back.status_code == 202
        finally:
            await alice.http.aclose()
    # That app is gone; another instance on the same database still knows the device.
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", headers=alice.http.headers) as again:
        devices = (await again.get("/devices")).json()["devices"]
    assert [(d["device_id"], d["type"], d["platform"]) for d in devices] == [("tv-1", "tv", "tizen")]
