"""Playback sessions, resume points and continue-watching over HTTP, against a real uvicorn,
PostgreSQL and Redis. The catalog is written with the catalog's own write functions (what ingestion
calls), on a database of this module's own."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from media_gateway.catalog import repository as catalog
from media_gateway.catalog.schemas import DeepLinks, Monetization, NormalizedContent, OfferIn
from media_gateway.core.db import make_engine
from media_gateway.core.events import Event, RedisStreamsEventBus
from media_gateway.core.redis import make_redis
from media_gateway.core.settings import Settings
from media_gateway.playback.app import create_app
from media_gateway.sona.signals import bus_interaction
from tests.conftest import scratch_database
from tests.fakes.token_issuer import TestTokenIssuer
from tests.support import serving

PROBLEM = "application/problem+json"
Json = dict[str, Any]

DUNE = uuid.UUID("00000000-0000-4000-8000-000000000001")
ARRIVAL = uuid.UUID("00000000-0000-4000-8000-000000000002")
ALIEN = uuid.UUID("00000000-0000-4000-8000-000000000003")
HEAT = uuid.UUID("00000000-0000-4000-8000-000000000004")
CLUE = uuid.UUID("00000000-0000-4000-8000-000000000005")
NO_OFFERS = uuid.UUID("00000000-0000-4000-8000-000000000006")


def _links(platform: str, item: str, *, web_only: bool = False) -> DeepLinks:
    web = f"https://{platform}.example/watch/{item}"
    if web_only:
        return DeepLinks(web=web)
    return DeepLinks(app=f"{platform}://title/{item}", web=web, tv=f"{platform}-tv://title/{item}")


def _offer(platform: str, region: str, monetization: Monetization, item: str, **extra: Any) -> OfferIn:
    return OfferIn(
        platform=platform,
        region=region,
        monetization=monetization,
        platform_content_id=item,
        deep_links=_links(platform, item, web_only=extra.pop("web_only", False)),
        **extra,
    )


# id -> (title, year, runtime minutes, {platform: offers})
CATALOG: dict[uuid.UUID, tuple[str, int, int | None, dict[str, list[OfferIn]]]] = {
    DUNE: (
        "Dune",
        2021,
        155,
        {
            "netflix": [
                _offer("netflix", "US", Monetization.SUBSCRIPTION, "dune"),
                _offer("netflix", "GB", Monetization.SUBSCRIPTION, "dune-gb"),
            ],
            "hulu": [_offer("hulu", "US", Monetization.RENT, "dune-h")],
        },
    ),
    ARRIVAL: ("Arrival", 2016, 116, {"prime_video": [_offer("prime_video", "US", Monetization.BUY, "arr")]}),
    ALIEN: (
        "Alien",
        1979,
        117,
        {
            "netflix": [_offer("netflix", "US", Monetization.SUBSCRIPTION, "alien")],
            "youtube": [_offer("youtube", "US", Monetization.FREE, "alien-yt", web_only=True)],
        },
    ),
    HEAT: ("Heat", 1995, 170, {"hulu": [_offer("hulu", "US", Monetization.SUBSCRIPTION, "heat")]}),
    CLUE: ("Clue", 1985, 94, {"peacock": [_offer("peacock", "US", Monetization.ADS, "clue")]}),
    NO_OFFERS: ("Nowhere", 2001, None, {}),
}


async def _seed(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        async with engine.begin() as conn:
            for content_id, (title, year, runtime, by_platform) in CATALOG.items():
                record = NormalizedContent(
                    title=title,
                    year=year,
                    runtime_minutes=runtime,
                    images={"poster": f"https://img.example/{title.lower()}.jpg"},
                    source_platform="test",
                    source_id=str(content_id),
                )
                await catalog.write_content(conn, content_id, record, is_new=True)
                for platform, offers in by_platform.items():
                    await catalog.replace_platform_offers(
                        conn, content_id, platform, offers, entity_is_new=True
                    )
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def app_settings(token_issuer: TestTokenIssuer) -> AsyncIterator[Settings]:
    async with scratch_database(
        auth=token_issuer.auth_settings(), playback={"outbox_relay_interval_sec": 0.2}
    ) as settings:
        await _seed(settings)
        yield settings


@pytest.fixture(scope="module")
async def base_url(app_settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(app_settings)) as url:
        yield url


@dataclass
class Viewer:
    id: uuid.UUID
    http: httpx.AsyncClient

    async def ok(self, method: str, url: str, status: int = 200, **kwargs: Any) -> Json:
        response = await self.http.request(method, url, **kwargs)
        assert response.status_code == status, response.text
        body: Json = response.json()
        return body

    async def start(self, content_id: uuid.UUID, **fields: Any) -> Json:
        return await self.ok("POST", "/api/v1/sessions", 201, json={"content_id": str(content_id), **fields})

    async def position(self, session_id: str, position: float, **fields: Any) -> Json:
        return await self.ok(
            "PATCH", f"/api/v1/sessions/{session_id}/position", json={"position_seconds": position, **fields}
        )

    async def end(self, session_id: str, **fields: Any) -> Json:
        return await self.ok("POST", f"/api/v1/sessions/{session_id}/end", json=fields)


@pytest.fixture
async def viewers(base_url: str, token_issuer: TestTokenIssuer) -> AsyncIterator[list[Viewer]]:
    made: list[Viewer] = []

    def make() -> Viewer:
        user_id = uuid.uuid4()
        headers = {"Authorization": f"Bearer {token_issuer.mint(user_id)}"}
        viewer = Viewer(user_id, httpx.AsyncClient(base_url=base_url, headers=headers))
        made.append(viewer)
        return viewer

    yield [make(), make()]
    for viewer in made:
        await viewer.http.aclose()


def assert_problem(response: httpx.Response, status: int) -> Json:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: Json = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    return body


async def test_session_lifecycle_and_durability(
    viewers: list[Viewer], app_settings: Settings, base_url: str
) -> None:
    me = viewers[0]
    started = await me.start(DUNE, platform="netflix", device_id="tv-livingroom")
    assert started["content_id"] == str(DUNE)
    assert started["state"] == "playing"
    assert started["region"] == "US"
    assert started["device_id"] == "tv-livingroom"
    # No duration from the player: the catalog runtime stands in, so completion is known.
    assert started["duration_seconds"] == 155 * 60
    assert started["position_seconds"] == 0
    assert started["completion"] == 0
    assert started["ended_at"] is None
    assert started["deep_link"] == {
        "platform": "netflix",
        "region": "US",
        "monetization": "subscription",
        "app": "netflix://title/dune",
        "web": "https://netflix.example/watch/dune",
        "tv": "netflix-tv://title/dune",
        "position_seconds": 0.0,
    }
    sid = started["id"]
    assert await me.ok("GET", f"/api/v1/sessions/{sid}") == started

    moved = await me.position(sid, 600, duration_seconds=9000, state="paused")
    assert (moved["position_seconds"], moved["duration_seconds"], moved["state"]) == (600, 9000, "paused")
    assert moved["completion"] == pytest.approx(600 / 9000)
    assert moved["deep_link"]["position_seconds"] == 600
    assert moved["updated_at"] > started["updated_at"]
    assert moved["started_at"] == started["started_at"]
    resume = await me.ok("GET", f"/api/v1/playback/resume/{DUNE}")
    assert resume["position_seconds"] == 600
    assert resume["duration_seconds"] == 9000
    assert resume["completion"] == pytest.approx(600 / 9000)
    assert resume["deep_link"]["platform"] == "netflix"
    assert resume["deep_link"]["position_seconds"] == 600

    # No platform named: the best offer in the region, here the only one.
    other = await me.start(ARRIVAL, region="US")
    assert other["deep_link"]["platform"] == "prime_video"
    assert other["deep_link"]["monetization"] == "buy"
    active = await me.ok("GET", "/api/v1/sessions", params={"state": "active"})
    assert [s["id"] for s in active["items"]] == [other["id"], sid]

    ended = await me.end(sid, position_seconds=700)
    assert ended["state"] == "ended"
    assert ended["position_seconds"] == 700
    assert ended["ended_at"]
    again = await me.end(sid, position_seconds=10)  # idempotent: changes nothing
    assert again == ended
    assert (await me.ok("GET", f"/api/v1/playback/resume/{DUNE}"))["position_seconds"] == 700
    late = await me.http.patch(f"/api/v1/sessions/{sid}/position", json={"position_seconds": 800})
    assert_problem(late, 409)
    active = await me.ok("GET", "/api/v1/sessions", params={"state": "active"})
    assert [s["id"] for s in active["items"]] == [other["id"]]
    everything = await me.ok("GET", "/api/v1/sessions", params={"limit": 1})
    assert [s["id"] for s in everything["items"]] == [other["id"]]
    rest = await me.ok("GET", "/api/v1/sessions", params={"limit": 1, "cursor": everything["next_cursor"]})
    assert [s["id"] for s in rest["items"]] == [sid]
    assert rest["next_cursor"] is None

    metrics = (await me.http.get("/metrics")).text
    assert "mg_playback_sessions_started_total" in metrics
    assert "mg_playback_position_updates_total" in metrics

    # What was acknowledged is in PostgreSQL: a fresh app (another replica, or after a restart) reads it.
    async with serving(create_app(app_settings)) as fresh_url:
        fresh = Viewer(me.id, httpx.AsyncClient(base_url=fresh_url, headers=me.http.headers))
        try:
            assert await fresh.ok("GET", f"/api/v1/sessions/{sid}") == ended
            assert (await fresh.ok("GET", f"/api/v1/playback/resume/{DUNE}"))["position_seconds"] == 700
            assert (await fresh.ok("GET", f"/api/v1/sessions/{other['id']}"))["state"] == "playing"
        finally:
            await fresh.http.aclose()


async def test_start_resumes_unless_finished(viewers: list[Viewer]) -> None:
    me = viewers[0]
    first = await me.start(ALIEN)
    # No platform: the free offer wins over the subscription, even with a web link only.
    assert first["deep_link"]["platform"] == "youtube"
    assert first["deep_link"]["app"] is None
    await me.position(first["id"], 1000, duration_seconds=7000)
    await me.end(first["id"])

    resumed = await me.start(ALIEN, platform="netflix", device_id="phone")
    assert resumed["position_seconds"] == 1000
    assert resumed["duration_seconds"] == 7000
    assert resumed["deep_link"]["platform"] == "netflix"
    assert resumed["deep_link"]["position_seconds"] == 1000
    explicit = await me.start(ALIEN, position_seconds=50)
    assert explicit["position_seconds"] == 50

    await me.position(resumed["id"], 6700)  # 95.7 %: finished
    await me.end(resumed["id"])
    restarted = await me.start(ALIEN)
    assert restarted["position_seconds"] == 0
    assert (await me.ok("GET", f"/api/v1/playback/resume/{ALIEN}"))["position_seconds"] == 0

    # A platform the title is not on, a region without offers, a title without offers: no link.
    assert (await me.start(DUNE, platform="peacock"))["deep_link"] is None
    assert (await me.start(DUNE, region="GB"))["deep_link"]["web"] == "https://netflix.example/watch/dune-gb"
    assert (await me.start(DUNE, region="FR"))["deep_link"] is None
    nowhere = await me.start(NO_OFFERS, position_seconds=30)
    assert nowhere["deep_link"] is None
    assert nowhere["duration_seconds"] is None
    assert nowhere["completion"] is None
    assert (await me.position(nowhere["id"], 99999))["position_seconds"] == 99999  # no duration to exceed


async def test_continue_watching_order_pages_and_excludes_finished(viewers: list[Viewer]) -> None:
    me = viewers[0]
    plan = [(DUNE, 3000), (ARRIVAL, 6650), (ALIEN, 2000), (HEAT, 100), (CLUE, 0)]
    for content_id, position in plan:
        session = await me.start(content_id)
        await me.position(session["id"], position)
    again = await me.start(DUNE)  # watched again last: first in the row
    await me.position(again["id"], 3100)

    pages: list[Json] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await me.ok("GET", "/api/v1/playback/continue-watching", params=params)
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    items = [item for page in pages for item in page["items"]]
    # Arrival is at 95 % (finished) and Clue at 0 (not started): neither is continued.
    assert [i["content_id"] for i in items] == [str(DUNE), str(HEAT), str(ALIEN)]
    assert [len(p["items"]) for p in pages] == [2, 1]
    dune = items[0]
    assert (dune["title"], dune["year"], dune["kind"]) == ("Dune", 2021, "movie")
    assert dune["poster"] == "https://img.example/dune.jpg"
    assert dune["position_seconds"] == 3100
    assert dune["completion"] == pytest.approx(3100 / 9300)
    assert dune["deep_link"]["platform"] == "netflix"
    assert dune["deep_link"]["position_seconds"] == 3100
    assert all(0 < i["completion"] < 0.95 for i in items)

    # Another viewer's row is their own.
    assert (await viewers[1].ok("GET", "/api/v1/playback/continue-watching"))["items"] == []
    bad = await me.http.get("/api/v1/playback/continue-watching", params={"cursor": "not-a-cursor"})
    assert_problem(bad, 422)
    sessions_cursor = (await me.ok("GET", "/api/v1/sessions", params={"limit": 1}))["next_cursor"]
    mixed = await me.http.get("/api/v1/playback/continue-watching", params={"cursor": sessions_cursor})
    assert_problem(mixed, 422)
    naive = {"v": 1, "f": "continue-watching", "t": "2026-01-01T00:00:00", "k": str(DUNE)}
    forged = base64.urlsafe_b64encode(orjson.dumps(naive)).decode()
    assert_problem(await me.http.get("/api/v1/playback/continue-watching", params={"cursor": forged}), 422)
    assert_problem(await me.http.get("/api/v1/playback/continue-watching", params={"limit": 0}), 422)


async def test_other_users_sessions_are_not_found_and_tokens_are_required(
    viewers: list[Viewer], base_url: str
) -> None:
    me, stranger = viewers
    mine = await me.start(HEAT)
    sid = mine["id"]
    assert_problem(await stranger.http.get(f"/api/v1/sessions/{sid}"), 404)
    patched = await stranger.http.patch(f"/api/v1/sessions/{sid}/position", json={"position_seconds": 5})
    assert_problem(patched, 404)
    assert_problem(await stranger.http.post(f"/api/v1/sessions/{sid}/end"), 404)
    assert_problem(await stranger.http.get(f"/api/v1/playback/resume/{HEAT}"), 404)
    assert (await stranger.ok("GET", "/api/v1/sessions"))["items"] == []
    # The stranger's attempts changed nothing.
    assert (await me.ok("GET", f"/api/v1/sessions/{sid}")) == mine

    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        for method, url in [
            ("POST", "/api/v1/sessions"),
            ("GET", f"/api/v1/sessions/{sid}"),
            ("GET", "/api/v1/sessions?state=active"),
            ("PATCH", f"/api/v1/sessions/{sid}/position"),
            ("POST", f"/api/v1/sessions/{sid}/end"),
            ("GET", f"/api/v1/playback/resume/{HEAT}"),
            ("GET", "/api/v1/playback/continue-watching"),
        ]:
            response = await anonymous.request(method, url, json={"content_id": str(HEAT)})
            assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")
        forged = await anonymous.get(f"/api/v1/sessions/{sid}", headers={"Authorization": "Bearer x.y.z"})
        assert_problem(forged, 401)


async def test_bad_requests_are_4xx_with_reasons(viewers: list[Viewer]) -> None:
    me = viewers[0]
    session = await me.start(CLUE)
    sid = session["id"]
    starts: list[Any] = [
        {"content_id": str(uuid.uuid4())},  # not in the catalog
        {"content_id": "dune"},
        {},
        {"content_id": str(CLUE), "position_seconds": -1},
        {"content_id": str(CLUE), "position_seconds": 20, "duration_seconds": 10},
        {"content_id": str(CLUE), "position_seconds": 94 * 60 + 1},  # past the catalog runtime
        {"content_id": str(CLUE), "duration_seconds": 0},
        {"content_id": str(CLUE), "region": "usa"},
        {"content_id": str(CLUE), "platform": "Net Flix"},
        {"content_id": str(CLUE), "device_id": "x" * 200},
        {"content_id": str(CLUE), "position_second": 10},  # misspelt
        {"content_id": str(CLUE), "position_seconds": "ten"},
        [str(CLUE)],
    ]
    for body in starts:
        body_problem = assert_problem(await me.http.post("/api/v1/sessions", json=body), 422)
        assert body_problem["errors"][0]["msg"], body
    not_json = await me.http.post(
        "/api/v1/sessions", content=b"{content_id:", headers={"content-type": "application/json"}
    )
    assert_problem(not_json, 422)

    updates: list[Any] = [
        {},
        {"position_seconds": -5},
        {"position_seconds": 94 * 60 + 1},  # past the session's duration
        {"position_seconds": 50, "duration_seconds": 40},
        {"position_seconds": 5, "state": "ended"},
        {"position_seconds": 5, "state": "rewinding"},
        {"position_seconds": 1e300},
    ]
    for body in updates:
        assert_problem(await me.http.patch(f"/api/v1/sessions/{sid}/position", json=body), 422)
    assert_problem(await me.http.post(f"/api/v1/sessions/{sid}/end", json={"position_seconds": -1}), 422)
    assert_problem(await me.http.get("/api/v1/sessions/not-a-uuid"), 422)
    assert_problem(await me.http.get(f"/api/v1/sessions/{uuid.uuid4()}"), 404)
    assert_problem(await me.http.get(f"/api/v1/playback/resume/{NO_OFFERS}"), 404)
    assert_problem(await me.http.get("/api/v1/sessions", params={"state": "stopped"}), 422)
    # None of it moved the session.
    assert await me.ok("GET", f"/api/v1/sessions/{sid}") == session


async def test_events_reach_the_bus_as_sona_reads_them(viewers: list[Viewer], app_settings: Settings) -> None:
    me = viewers[1]
    session = await me.start(HEAT, platform="hulu", duration_seconds=10000)
    await me.position(session["id"], 4000)
    await me.end(session["id"], position_seconds=9600)

    redis = make_redis(app_settings)
    bus = RedisStreamsEventBus(redis, app_settings)
    group = f"playback-test-{uuid.uuid4().hex[:8]}"
    mine: dict[str, Event] = {}
    try:
        topics = ("playback.session_started", "playback.position_updated", "playback.session_ended")
        for topic in topics:
            await bus.ensure_group(topic, group, start_id="0")
        for _ in range(100):
            for topic in topics:
                for delivery in await bus.consume(topic, group, "reader", count=100, block_ms=None):
                    if delivery.event.key == str(me.id):
                        mine[delivery.event.type] = delivery.event
                    await bus.ack(delivery)
            if len(mine) == len(topics):
                break
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
    assert set(mine) == set(topics)

    started, moved, ended = (mine[t] for t in topics)
    assert moved.payload["user_id"] == str(me.id)
    assert moved.payload["content_id"] == str(HEAT)
    assert moved.payload["session_id"] == session["id"]
    assert (moved.payload["position_seconds"], moved.payload["duration_seconds"]) == (4000, 10000)
    assert ended.payload["completion"] == pytest.approx(0.96)
    assert len({started.id, moved.id, ended.id}) == 3
    # SONA's own reading of each event: a start, progress at 40 %, and a completed title.
    interactions = [bus_interaction(e.id, e.type, e.payload, e.occurred_at) for e in (started, moved, ended)]
    assert [(i.kind, i.user_id, i.content_id) for i in interactions if i] == [
        ("started", me.id, HEAT),
        ("progress", me.id, HEAT),
        ("completed", me.id, HEAT),
    ]
    assert interactions[1] is not None
    assert interactions[1].value == pytest.approx(0.4)
