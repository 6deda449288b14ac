"""Watchlist, progress, history and delta sync over HTTP, against a real uvicorn, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from media_gateway.core.db import make_engine
from media_gateway.core.events import stream_key
from media_gateway.core.settings import Settings
from media_gateway.sync.app import create_app
from media_gateway.sync.crdt import Timestamp
from media_gateway.sync.repository import PostgresSyncRepository
from tests.conftest import make_settings
from tests.fakes.token_issuer import TestTokenIssuer
from tests.support import serving

PROBLEM = "application/problem+json"


def _settings(base: Settings, issuer: TestTokenIssuer) -> Settings:
    return make_settings(
        database_url=base.database_url,
        redis=base.redis.model_dump(),
        auth=issuer.auth_settings(),
        sync={"outbox_relay_interval_sec": 0.2},
    )


@pytest.fixture(scope="module")
async def app_settings(migrated_settings: Settings, token_issuer: TestTokenIssuer) -> Settings:
    return _settings(migrated_settings, token_issuer)


@pytest.fixture(scope="module")
async def base_url(app_settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(app_settings)) as url:
        yield url


class Device:
    """One of a user's devices: its own HTTP client and X-Device-ID."""

    def __init__(self, base_url: str, token: str, device_id: str) -> None:
        self.device_id = device_id
        self.http = httpx.AsyncClient(
            base_url=f"{base_url}/api/v1/sync",
            headers={"Authorization": f"Bearer {token}", "X-Device-ID": device_id},
        )

    async def ok(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, url, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    async def watchlist(self) -> dict[str, list[str]]:
        body = await self.ok("GET", "/watchlist")
        assert body["count"] == len(body["items"])
        return {item["content_id"]: item["tags"] for item in body["items"]}


class User:
    def __init__(self, base_url: str, issuer: TestTokenIssuer) -> None:
        self.id = uuid.uuid4()
        token = issuer.mint(self.id)
        self.phone = Device(base_url, token, "phone-1")
        self.tv = Device(base_url, token, "tv-1")

    async def aclose(self) -> None:
        await self.phone.http.aclose()
        await self.tv.http.aclose()


@pytest.fixture
async def user(base_url: str, token_issuer: TestTokenIssuer) -> AsyncIterator[User]:
    u = User(base_url, token_issuer)
    yield u
    await u.aclose()


def _hlc(millis: int, node: str = "client") -> str:
    return Timestamp(millis, 0, node).encode()


async def test_watchlist_add_remove_and_errors(user: User) -> None:
    phone = user.phone
    added = await phone.ok("POST", "/watchlist", json={"operation": "add", "content_id": "dune"})
    assert added["in_watchlist"] is True
    assert added["operation"]["kind"] == "watchlist.add"
    assert added["operation"]["device_id"] == "phone-1"
    listed = await phone.ok("GET", "/watchlist")
    assert listed["items"][0]["content_id"] == "dune"
    assert datetime.fromisoformat(listed["items"][0]["added_at"]).utcoffset() == timedelta(0)
    assert listed["items"][0]["tags"] == [added["operation"]["op_id"]]
    assert listed["cursor"] == added["cursor"]
    put = await phone.ok("PUT", "/watchlist/arrival")
    assert put["in_watchlist"] is True
    assert set(await user.tv.watchlist()) == {"dune", "arrival"}

    removed = await phone.ok("DELETE", "/watchlist/arrival")
    assert removed["in_watchlist"] is False
    assert removed["operation"]["kind"] == "watchlist.remove"
    assert set(await phone.watchlist()) == {"dune"}

    absent = await phone.http.delete("/watchlist/arrival")
    assert absent.status_code == 404
    assert absent.headers["content-type"].startswith(PROBLEM)
    absent = await phone.http.post("/watchlist", json={"operation": "remove", "content_id": "nope"})
    assert absent.status_code == 404
    unknown = await phone.http.post("/watchlist", json={"operation": "toggle", "content_id": "dune"})
    assert unknown.status_code == 400
    assert "unknown operation" in unknown.json()["detail"]
    empty = await phone.http.post("/watchlist", json={"operation": "add", "content_id": "  "})
    assert empty.status_code == 422
    control = await phone.http.post("/watchlist", json={"operation": "add", "content_id": "a\u0000b"})
    assert control.status_code == 422
    assert set(await phone.watchlist()) == {"dune"}


async def test_requests_need_a_user_token(base_url: str, token_issuer: TestTokenIssuer) -> None:
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1/sync") as http:
        assert (await http.get("/watchlist")).status_code == 401
        client = token_issuer.mint_client("svc", scopes="read")
        response = await http.get("/watchlist", headers={"Authorization": f"Bearer {client}"})
        assert response.status_code == 403


async def test_concurrent_add_and_remove_on_two_devices_converge_to_add_wins(user: User) -> None:
    await user.phone.ok("PUT", "/watchlist/dune")
    seen_by_tv = (await user.tv.watchlist())["dune"]
    # Concurrently: the phone adds again while the TV removes the tags it observed.
    readd, remove = await asyncio.gather(
        user.phone.ok("PUT", "/watchlist/dune"),
        user.tv.ok(
            "POST", "/watchlist", json={"operation": "remove", "content_id": "dune", "tags": seen_by_tv}
        ),
    )
    assert readd["in_watchlist"] is True
    assert remove["operation"]["payload"]["tags"] == seen_by_tv
    assert set(await user.phone.watchlist()) == set(await user.tv.watchlist()) == {"dune"}

    # The same race from two offline queues, replayed in either order: add wins as well.
    await user.phone.ok("PUT", "/watchlist/tenet")
    observed = (await user.tv.watchlist())["tenet"]
    tv_queue = {
        "operations": [
            {
                "op_id": str(uuid.uuid4()),
                "kind": "watchlist.remove",
                "content_id": "tenet",
                "hlc": _hlc(2_000_000_000_000, "tv"),
                "payload": {"tags": observed},
            }
        ]
    }
    phone_queue = {
        "operations": [
            {
                "op_id": str(uuid.uuid4()),
                "kind": "watchlist.add",
                "content_id": "tenet",
                "hlc": _hlc(1_000_000_000_000, "phone"),
            }
        ]
    }
    await user.phone.ok("POST", "/batch", json=phone_queue)
    await user.tv.ok("POST", "/batch", json=tv_queue)
    assert "tenet" in await user.phone.watchlist()


async def test_out_of_order_progress_keeps_the_newest_clock(user: User) -> None:
    def report(op: str, millis: int, position: float, node: str) -> dict[str, Any]:
        return {
            "op_id": op,
            "kind": "progress.set",
            "content_id": "heat",
            "hlc": _hlc(millis, node),
            "payload": {"position_seconds": position, "duration_seconds": 6000, "state": "paused"},
        }

    newest = report(str(uuid.uuid4()), 1_700_000_000_300, 3000, "tv")
    older = report(str(uuid.uuid4()), 1_700_000_000_100, 1000, "phone")
    middle = report(str(uuid.uuid4()), 1_700_000_000_200, 2000, "phone")
    await user.tv.ok("POST", "/batch", json={"operations": [newest]})
    body = await user.phone.ok("POST", "/batch", json={"operations": [older, middle]})
    assert [r["status"] for r in body["results"]] == ["applied", "applied"]
    progress = await user.phone.ok("GET", "/progress", params={"content_id": "heat"})
    assert progress["position_seconds"] == 3000
    assert progress["device_id"] == "tv-1"

    # A live report gets a server timestamp after everything stored, so it wins.
    live = await user.phone.ok(
        "POST",
        "/progress",
        json={"content_id": "heat", "position_seconds": 3100, "duration_seconds": 6000, "state": "playing"},
    )
    assert live["recorded"] is True
    assert live["applied"] is True
    listed = await user.tv.ok("GET", "/progress")
    assert [(p["content_id"], p["position_seconds"]) for p in listed["items"]] == [("heat", 3100)]


async def test_progress_thresholds_and_history(user: User, app_settings: Settings) -> None:
    phone = user.phone

    async def report(content: str, position: float, duration: float = 1000) -> Any:
        body = {"content_id": content, "position_seconds": position, "duration_seconds": duration}
        return await phone.ok("POST", "/progress", json=body | {"state": "playing"})

    early = await report("alien", 9)  # 0.9 %: not recorded
    assert early["recorded"] is False
    missing = await phone.http.get("/progress", params={"content_id": "alien"})
    assert missing.status_code == 404

    assert (await report("alien", 500))["completed"] is False
    done = await report("alien", 950)  # 95 %: watched
    assert done["completed"] is True
    assert done["progress"]["watched"] is True
    assert [op["kind"] for op in done["operations"]] == ["progress.set", "history.completed"]
    assert (await phone.ok("GET", "/progress"))["items"] == []  # moved to history
    history = await phone.ok("GET", "/history")
    assert [h["content_id"] for h in history["items"]] == ["alien"]

    bad = await phone.http.post(
        "/progress",
        json={"content_id": "x", "position_seconds": 10, "duration_seconds": 5, "state": "playing"},
    )
    assert bad.status_code == 422
    bad = await phone.http.post(
        "/progress",
        json={"content_id": "x", "position_seconds": 1, "duration_seconds": 5, "state": "rewinding"},
    )
    assert bad.status_code == 422

    # Events for SONA reach the bus through the outbox.
    await phone.ok("PUT", "/watchlist/alien-2")
    redis = aioredis.from_url(app_settings.effective_redis_url)
    try:
        wanted = {"progress.updated", "content.completed", "watchlist.added"}
        for _ in range(100):
            entries: Any = await redis.xrange(stream_key(app_settings, "user.activity"))
            events = [_event(fields) for _, fields in entries]
            mine = {e["type"] for e in events if e["key"] == str(user.id)}
            if wanted <= mine:
                break
            await asyncio.sleep(0.05)
        assert wanted <= mine
        completed = next(e for e in events if e["key"] == str(user.id) and e["type"] == "content.completed")
        assert completed["payload"]["user_id"] == str(user.id)
        assert completed["payload"]["content_id"] == "alien"
        assert completed["payload"]["completion"] == pytest.approx(0.95)
    finally:
        await redis.aclose()


def _event(fields: Any) -> dict[str, Any]:
    for value in fields.values():
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(decoded, dict) and "type" in decoded:
            return decoded
    raise AssertionError(f"no event in {fields!r}")


async def test_changes_and_idempotent_batch_replay(user: User) -> None:
    start = (await user.phone.ok("GET", "/watchlist"))["cursor"]
    queue = {
        "operations": [
            {"op_id": str(uuid.uuid4()), "kind": "watchlist.add", "content_id": f"m{i}", "hlc": _hlc(10 + i)}
            for i in range(5)
        ]
    }
    first = await user.phone.ok("POST", "/batch", json=queue)
    assert [r["status"] for r in first["results"]] == ["applied"] * 5
    again = await user.phone.ok("POST", "/batch", json=queue)
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 5
    assert len(await user.tv.watchlist()) == 5

    page = await user.tv.ok("GET", "/changes", params={"since": start, "limit": 3})
    assert [op["content_id"] for op in page["operations"]] == ["m0", "m1", "m2"]
    assert page["has_more"]
    rest = await user.tv.ok("GET", "/changes", params={"since": page["cursor"]})
    assert [op["content_id"] for op in rest["operations"]] == ["m3", "m4"]
    assert not rest["has_more"]
    assert all(op["device_id"] == "phone-1" for op in rest["operations"])
    tail = await user.tv.ok("GET", "/changes", params={"since": rest["cursor"]})
    assert tail["operations"] == []
    assert tail["cursor"] == rest["cursor"]

    assert (await user.tv.http.get("/changes", params={"since": "abc"})).status_code == 400
    bad_kind = {"operations": [{"op_id": str(uuid.uuid4()), "kind": "x", "content_id": "a", "hlc": _hlc(1)}]}
    response = await user.tv.http.post("/batch", json=bad_kind)
    assert response.status_code == 400
    assert "operations[0]" in response.json()["detail"]
    mixed = {
        "operations": [
            {"op_id": str(uuid.uuid4()), "kind": "watchlist.add", "content_id": "ok", "hlc": _hlc(1)},
            {"op_id": str(uuid.uuid4()), "kind": "watchlist.add", "content_id": "bad", "hlc": "yesterday"},
        ]
    }
    assert (await user.tv.http.post("/batch", json=mixed)).status_code == 400
    assert "ok" not in await user.tv.watchlist()  # all or nothing


async def test_another_user_sees_nothing(base_url: str, token_issuer: TestTokenIssuer, user: User) -> None:
    await user.phone.ok("PUT", "/watchlist/private")
    await user.phone.ok(
        "POST",
        "/progress",
        json={"content_id": "private", "position_seconds": 100, "duration_seconds": 1000, "state": "paused"},
    )
    other = User(base_url, token_issuer)
    try:
        assert await other.phone.watchlist() == {}
        assert (await other.phone.ok("GET", "/progress"))["items"] == []
        assert (await other.phone.http.get("/progress", params={"content_id": "private"})).status_code == 404
        assert (await other.phone.ok("GET", "/history"))["items"] == []
        assert (await other.phone.ok("GET", "/changes"))["operations"] == []
        assert (await other.phone.http.delete("/watchlist/private")).status_code == 404
        # Knowing the owner's tags does not let another user remove the owner's item.
        tags = (await user.phone.watchlist())["private"]
        body = {"operation": "remove", "content_id": "private", "tags": tags}
        assert (await other.phone.http.post("/watchlist", json=body)).status_code == 404
    finally:
        await other.aclose()
    assert "private" in await user.phone.watchlist()


async def test_ten_thousand_item_watchlist(user: User) -> None:
    queue = {
        "operations": [
            {"op_id": str(uuid.uuid4()), "kind": "watchlist.add", "content_id": f"t{i}", "hlc": _hlc(5)}
            for i in range(10_000)
        ]
    }
    replayed = await user.phone.ok("POST", "/batch", json=queue, timeout=60)
    assert len(replayed["results"]) == 10_000
    items = await user.tv.watchlist()
    assert len(items) == 10_000
    assert "t9999" in items


async def test_writes_survive_an_app_restart(app_settings: Settings, token_issuer: TestTokenIssuer) -> None:
    user_id = uuid.uuid4()
    headers = {"Authorization": f"Bearer {token_issuer.mint(user_id)}"}
    body = {"content_id": "solaris", "position_seconds": 420, "duration_seconds": 1000, "state": "paused"}
    async with (
        serving(create_app(app_settings)) as url,
        httpx.AsyncClient(base_url=url, headers=headers) as http,
    ):
        assert (await http.put("/api/v1/sync/watchlist/solaris")).status_code == 200
        assert (await http.post("/api/v1/sync/progress", json=body)).status_code == 200
    async with (
        serving(create_app(app_settings)) as url,
        httpx.AsyncClient(base_url=url, headers=headers) as http,
    ):
        items = (await http.get("/api/v1/sync/watchlist")).json()["items"]
        assert [i["content_id"] for i in items] == ["solaris"]
        progress = (await http.get("/api/v1/sync/progress", params={"content_id": "solaris"})).json()
        assert progress["position_seconds"] == 420


async def test_client_clock_far_ahead_is_clamped(user: User) -> None:
    now_ms = int(time.time() * 1000)
    future = _hlc(now_ms + 3_600_000, "broken-clock")
    op = {
        "op_id": str(uuid.uuid4()),
        "kind": "progress.set",
        "content_id": "drift",
        "hlc": future,
        "payload": {"position_seconds": 500, "duration_seconds": 1000, "state": "paused"},
    }
    body = await user.tv.ok("POST", "/batch", json={"operations": [op]})
    stored = Timestamp.parse(body["results"][0]["operations"][0]["hlc"])
    assert stored.node == "broken-clock"
    assert stored.millis < now_ms + 60_000
    # The clamped write does not shadow the next live report for an hour.
    live = await user.phone.ok(
        "POST",
        "/progress",
        json={"content_id": "drift", "position_seconds": 600, "duration_seconds": 1000, "state": "playing"},
    )
    assert live["applied"] is True
    bad = await user.phone.http.put("/watchlist/x", headers={"X-Device-ID": "tv\x01"})
    assert bad.status_code == 400


async def test_tombstones_are_collected_after_the_horizon(user: User, app_settings: Settings) -> None:
    await user.phone.ok("PUT", "/watchlist/old")
    await user.phone.ok("DELETE", "/watchlist/old")
    await user.phone.ok("PUT", "/watchlist/recent")
    await user.phone.ok("DELETE", "/watchlist/recent")
    engine = make_engine(app_settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE sync.user_watchlists SET removed_at = now() - interval '31 days' "
                    "WHERE user_id = :u AND content_id = 'old'"
                ),
                {"u": user.id},
            )
        repository = PostgresSyncRepository(engine, 0.95)
        assert await repository.collect_tombstones(timedelta(days=30)) >= 1
        async with engine.connect() as conn:
            left = await conn.execute(
                text("SELECT content_id FROM sync.user_watchlists WHERE user_id = :u"), {"u": user.id}
            )
            assert [r.content_id for r in left] == ["recent"]
    finally:
        await engine.dispose()
    assert await user.phone.watchlist() == {}


async def test_delta_sync_misses_nothing_across_two_replicas(
    base_url: str, app_settings: Settings, token_issuer: TestTokenIssuer
) -> None:
    """Writers on two replicas, a reader polling /changes meanwhile: the reader sees every operation
    exactly once, because a user's operations get their sequence numbers in commit order."""
    user_id = uuid.uuid4()
    headers = {"Authorization": f"Bearer {token_issuer.mint(user_id)}"}
    written: list[str] = []
    seen: list[str] = []
    done = asyncio.Event()
    async with serving(create_app(app_settings)) as second_url:

        async def writer(url: str, lane: int) -> None:
            async with httpx.AsyncClient(base_url=f"{url}/api/v1/sync", headers=headers) as http:
                for i in range(10):
                    response = await http.put(f"/watchlist/r{lane}-{i}")
                    assert response.status_code == 200
                    written.append(response.json()["operation"]["op_id"])

        async def reader() -> None:
            cursor = "0"
            async with httpx.AsyncClient(base_url=f"{base_url}/api/v1/sync", headers=headers) as http:
                while True:
                    finished = done.is_set()
                    page = (await http.get("/changes", params={"since": cursor})).json()
                    seen.extend(op["op_id"] for op in page["operations"])
                    cursor = page["cursor"]
                    if finished and not page["operations"]:
                        return

        poller = asyncio.create_task(reader())
        await asyncio.gather(*(writer(url, lane) for lane, url in enumerate([base_url, second_url] * 2)))
        done.set()
        await poller
    assert sorted(seen) == sorted(written)
    assert len(seen) == len(set(seen)) == 40
