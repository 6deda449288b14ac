"""The gateway in front of the real services (auth, ingestion, discovery, SONA, sync), each on its own
port as in production: every public route reaches its service, tokens are checked before any upstream
work, tiers are rate limited, and a dead upstream is a clean 502/503, never a hang or a 500."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import websockets
from sqlalchemy import text
from websockets.asyncio.client import connect

from media_gateway.auth.app import create_app as create_auth
from media_gateway.core.db import make_engine
from media_gateway.core.settings import SERVICE_NAMES, Settings
from media_gateway.discovery.app import create_app as create_discovery
from media_gateway.gateway.app import create_app as create_gateway
from media_gateway.gateway.routing import ROUTES
from media_gateway.ingestion.app import create_app as create_ingestion
from media_gateway.ingestion.datasets import load_tmdb5000
from media_gateway.ingestion.demo import generate_demo_feeds, write_feed_files
from media_gateway.playback.app import create_app as create_playback
from media_gateway.sona.app import create_app as create_sona
from media_gateway.sync.app import create_app as create_sync
from tests.conftest import scratch_database
from tests.discovery.test_search_index_live import ADMIN, start_ingest, wait_for_job
from tests.ingestion.tmdb_data import cache_dir
from tests.support import free_port, serving, world_traversable_dir

PROBLEM = "application/problem+json"
ADMIN_TOKEN = ADMIN["Authorization"].removeprefix("Bearer ")
TITLES = 12
PASSWORD = "correct horse battery staple"


@dataclass
class World:
    settings: Settings
    direct: dict[str, httpx.AsyncClient]
    gateway: httpx.AsyncClient
    gateway_url: str
    token: str
    content_ids: list[str]


def _without(body: Any, keys: set[str]) -> Any:
    return {k: v for k, v in body.items() if k not in keys} if isinstance(body, dict) else body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_up(client: httpx.AsyncClient) -> str:
    email = f"viewer-{uuid.uuid4().hex[:10]}@example.test"
    registered = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token


def world_settings(base: Settings, data_dir: Any, **gateway: Any) -> Settings:
    ports = {name: free_port() for name in SERVICE_NAMES}
    return base.model_copy(
        update={
            "data_dir": data_dir,
            "admin_token": ADMIN_TOKEN,
            "ports": base.ports.model_copy(update=ports),
            "service_urls": base.service_urls.model_copy(
                update={name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            ),
            "auth": base.auth.model_copy(
                update={
                    "issuer": "",
                    "jwks_url": "",
                    "password_hash_time_cost": 1,
                    "password_hash_memory_kib": 64,
                    "password_hash_parallelism": 1,
                    "rate_limit_register_per_hour": 1000,
                    "rate_limit_login_per_min": 1000,
                    # Behind the gateway, auth counts the address the gateway forwards.
                    "trusted_proxies": ["127.0.0.1"],
                }
            ),
            "ingestion": base.ingestion.model_copy(update={"enrichment_interval_sec": 0}),
            "sona": base.sona.model_copy(update={"train_on_start": False}),
            "gateway": base.gateway.model_copy(update=gateway),
        }
    )


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    data_dir = world_traversable_dir("mg-gateway-")
    movies = list(await load_tmdb5000(cache_dir()))[:TITLES]
    write_feed_files(data_dir / "feeds" / "first", generate_demo_feeds(movies, datetime.now(UTC).date()))
    try:
        async with scratch_database() as base, contextlib.AsyncExitStack() as stack:
            settings = world_settings(base, data_dir)
            direct: dict[str, httpx.AsyncClient] = {}
            for name, factory in (
                ("auth", create_auth),
                ("ingestion", create_ingestion),
                ("sync", create_sync),
                ("sona", create_sona),
                ("playback", create_playback),
            ):
                await stack.enter_async_context(serving(factory(settings), port=settings.ports.of(name)))
                direct[name] = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=settings.service_url(name), timeout=30)
                )
            await wait_for_job(direct["ingestion"], await start_ingest(direct["ingestion"], "first"))
            port = settings.ports.of("discovery")
            await stack.enter_async_context(serving(create_discovery(settings), port=port))
            direct["discovery"] = await stack.enter_async_context(
                httpx.AsyncClient(base_url=settings.service_url("discovery"), timeout=30)
            )
            gateway_url = await stack.enter_async_context(
                serving(create_gateway(settings), port=settings.ports.of("gateway"))
            )
            gateway = await stack.enter_async_context(httpx.AsyncClient(base_url=gateway_url, timeout=30))
            engine = make_engine(settings)
            try:
                async with engine.connect() as conn:
                    rows = await conn.execute(text("SELECT id FROM catalog.content ORDER BY title, id"))
                    content_ids = [str(row.id) for row in rows]
            finally:
                await engine.dispose()
            assert len(content_ids) == TITLES
            yield World(settings, direct, gateway, gateway_url, await sign_up(gateway), content_ids)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_catalog_and_search_answer_the_same_through_the_gateway(world: World) -> None:
    content_id = world.content_ids[0]
    for path, params in (
        ("/api/v1/search", {"q": "adventure", "page_size": 5}),
        ("/api/v1/search/autocomplete", {"q": "the"}),
        (f"/api/v1/content/{content_id}", {}),
        (f"/api/v1/content/{content_id}/availability", {"region": "US"}),
        ("/api/v1/genres", {}),
        ("/api/v1/platforms", {}),
        ("/api/v1/changes", {"type": "new"}),
        ("/.well-known/jwks.json", {}),
        ("/.well-known/oauth-authorization-server", {}),
    ):
        upstream = "auth" if path.startswith("/.well-known") else "discovery"
        direct = await world.direct[upstream].get(path, params=params)
        proxied = await world.gateway.get(path, params=params)
        assert direct.status_code == 200, (path, direct.text)
        assert proxied.status_code == 200, (path, proxied.text)
        # A search says how it was answered (from the cache or not, and how fast): not routing.
        volatile = {"cached", "took_ms"}
        assert _without(proxied.json(), volatile) == _without(direct.json(), volatile), path
        assert proxied.headers["content-type"] == direct.headers["content-type"]
    missing = await world.gateway.get(f"/api/v1/content/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)


async def test_a_user_signs_up_and_uses_every_service_through_the_gateway(world: World) -> None:
    gateway, token = world.gateway, await sign_up(world.gateway)
    me = await gateway.get("/api/v1/users/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    updated = await gateway.patch("/api/v1/users/me", json={"platforms": ["netflix"]}, headers=bearer(token))
    assert updated.status_code == 200, updated.text
    assert updated.json()["platforms"] == ["netflix"]

    content_id = world.content_ids[1]
    added = await gateway.post(
        "/api/v1/sync/watchlist", json={"operation": "add", "content_id": content_id}, headers=bearer(token)
    )
    assert added.status_code == 200, added.text
    listed = await gateway.get("/api/v1/sync/watchlist", headers=bearer(token))
    direct = await world.direct["sync"].get("/api/v1/sync/watchlist", headers=bearer(token))
    assert listed.status_code == direct.status_code == 200
    assert listed.json() == direct.json()
    assert content_id in orjson.dumps(listed.json()).decode()
    devices = await gateway.get("/api/v1/devices", headers=bearer(token))
    assert devices.status_code == 200, devices.text

    recs = await gateway.post("/api/v1/recommendations", json={"limit": 5}, headers=bearer(token))
    assert recs.status_code == 200, recs.text
    assert isinstance(recs.json()["recommendations"], list)
    score = await gateway.post(
        "/api/v1/personalization/score", json={"content_ids": world.content_ids[:3]}, headers=bearer(token)
    )
    assert score.status_code == 200, score.text
    similar = await gateway.get(f"/api/v1/content/{content_id}/similar", headers=bearer(token))
    assert similar.status_code == 200, similar.text
    event = {"event_id": str(uuid.uuid4()), "type": "started", "content_id": content_id}
    events = await gateway.post("/api/v1/events", json={"events": [event]}, headers=bearer(token))
    assert events.status_code == 200, events.text
    assert events.json()["accepted"] == 1
    profile = await gateway.get("/api/v1/profile", headers=bearer(token))
    assert profile.status_code == 200, profile.text


async def test_playback_sessions_through_the_gateway(world: World) -> None:
    gateway, token = world.gateway, await sign_up(world.gateway)
    content_id = world.content_ids[3]
    started = await gateway.post(
        "/api/v1/sessions",
        json={"content_id": content_id, "device_id": "tv-1", "duration_seconds": 6000},
        headers=bearer(token),
    )
    assert started.status_code == 201, started.text
    session = started.json()
    assert session["position_seconds"] == 0
    moved = await gateway.patch(
        f"/api/v1/sessions/{session['id']}/position", json={"position_seconds": 1500}, headers=bearer(token)
    )
    assert moved.status_code == 200, moved.text
    fetched = await gateway.get(f"/api/v1/sessions/{session['id']}", headers=bearer(token))
    direct = await world.direct["playback"].get(f"/api/v1/sessions/{session['id']}", headers=bearer(token))
    assert fetched.status_code == direct.status_code == 200
    assert fetched.json() == direct.json()
    assert fetched.json()["position_seconds"] == 1500
    resume = await gateway.get(f"/api/v1/playback/resume/{content_id}", headers=bearer(token))
    assert resume.status_code == 200, resume.text
    assert resume.json()["position_seconds"] == 1500
    watching = await gateway.get("/api/v1/playback/continue-watching", headers=bearer(token))
    assert [i["content_id"] for i in watching.json()["items"]] == [content_id], watching.text
    ended = await gateway.post(f"/api/v1/sessions/{session['id']}/end", json={}, headers=bearer(token))
    assert ended.status_code == 200, ended.text
    late = await gateway.patch(
        f"/api/v1/sessions/{session['id']}/position", json={"position_seconds": 1600}, headers=bearer(token)
    )
    assert late.status_code == 409
    assert late.headers["content-type"].startswith(PROBLEM)
    # Another user does not see it, through the gateway either.
    other = await gateway.get(f"/api/v1/sessions/{session['id']}", headers=bearer(world.token))
    assert other.status_code == 404


async def test_operator_endpoints_pass_the_admin_token_to_their_service(world: World) -> None:
    gateway = world.gateway
    created = await gateway.post(
        "/api/v1/experiments",
        json={
            "key": f"gw_{uuid.uuid4().hex[:8]}",
            "name": "gateway test",
            "variants": [{"name": "control"}, {"name": "treatment"}],
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    metrics = await gateway.get(f"/api/v1/experiments/{experiment_id}/metrics", headers=ADMIN)
    assert metrics.status_code == 200, metrics.text
    assert (await gateway.get(f"/api/v1/experiments/{experiment_id}/metrics")).status_code == 401

    jobs = await gateway.get("/api/v1/admin/jobs", headers=ADMIN)
    assert jobs.status_code == 200, jobs.text
    assert jobs.json() == (await world.direct["ingestion"].get("/api/v1/admin/jobs", headers=ADMIN)).json()
    stats = await gateway.get("/api/v1/admin/catalog/stats", headers=ADMIN)
    assert stats.status_code == 200, stats.text
    assert (await gateway.get("/api/v1/admin/jobs")).status_code == 401
    clients = await gateway.get("/api/v1/admin/clients", headers=ADMIN)
    assert clients.status_code == 200, clients.text

    # A confidential client authenticates at the token endpoint with HTTP Basic, which the gateway
    # forwards untouched; its token is a client (not user) token.
    client = await gateway.post(
        "/api/v1/admin/clients",
        json={"name": "partner", "grant_types": ["client_credentials"], "scopes": ["catalog:read"]},
        headers=ADMIN,
    )
    assert client.status_code == 201, client.text
    creds = client.json()
    issued = await gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["client_id"], creds["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    client_token = issued.json()["access_token"]
    refused = await gateway.get("/api/v1/sync/watchlist", headers=bearer(client_token))
    assert refused.status_code == 403, refused.text
    wrong = await gateway.post("/auth/token", data={"grant_type": "client_credentials"}, auth=("x", "y"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


async def test_user_routes_need_a_valid_token_before_any_upstream_work(world: World) -> None:
    before = {s: await _upstream_requests(world, s) for s in ("sync", "playback")}
    for headers in ({}, bearer("not.a.jwt"), {"Authorization": "Basic Zm9vOmJhcg=="}):
        for method, path in (
            ("GET", "/api/v1/sync/watchlist"),
            ("POST", "/api/v1/sync/watchlist"),
            ("GET", "/api/v1/devices"),
            ("POST", "/api/v1/sessions"),
            ("GET", "/api/v1/playback/continue-watching"),
        ):
            response = await world.gateway.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert {s: await _upstream_requests(world, s) for s in ("sync", "playback")} == before


async def _upstream_requests(world: World, service: str) -> float:
    """How many /api requests the service has answered, from its own Prometheus counters."""
    text = (await world.direct[service].get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("mg_http_requests_total{") and 'route="/api' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_unknown_paths_bad_bodies_and_oversized_bodies_are_4xx(world: World) -> None:
    unknown = await world.gateway.get("/api/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith(PROBLEM)
    bad = await world.gateway.post(
        "/api/v1/search", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422, bad.text
    huge = b"x" * (world.settings.gateway.max_body_bytes + 1)
    oversized = await world.gateway.post("/api/v1/search", content=huge)
    assert oversized.status_code == 413
    assert oversized.headers["content-type"].startswith(PROBLEM)


async def test_request_id_reaches_the_upstream(world: World) -> None:
    response = await world.gateway.get(
        f"/api/v1/content/{uuid.uuid4()}", headers={"X-Request-ID": "trace-42"}
    )
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-42"
    # The problem body is written by discovery, which names the id it was given.
    assert response.json()["request_id"] == "trace-42"


async def test_live_sync_websocket_is_relayed(world: World) -> None:
    token = world.token
    ws_url = world.gateway_url.replace("http://", "ws://") + "/api/v1/sync/ws?device_id=tv-1"
    async with connect(ws_url, subprotocols=["mg.sync.v1", f"bearer.{token}"]) as socket:  # type: ignore[list-item]
        assert socket.subprotocol == "mg.sync.v1"
        # Both directions: the pong answers the ping, and proves the feed is live before the write.
        await socket.send(orjson.dumps({"type": "ping"}).decode())
        async with asyncio.timeout(10):
            while orjson.loads(await socket.recv())["type"] != "pong":
                pass
        content_id = world.content_ids[2]
        added = await world.gateway.post(
            "/api/v1/sync/watchlist",
            json={"operation": "add", "content_id": content_id},
            headers={**bearer(token), "X-Device-ID": "phone-1"},
        )
        assert added.status_code == 200, added.text
        seen = ""
        async with asyncio.timeout(10):
            while content_id not in seen:
                seen = str(await socket.recv())
    async with connect(ws_url, subprotocols=["mg.sync.v1", "bearer.not-a-token"]) as socket:  # type: ignore[list-item]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_aggregate_health_names_every_upstream(world: World) -> None:
    response = await world.gateway.get("/health/aggregate")
    body = response.json()
    assert set(body["services"]) == set(SERVICE_NAMES) - {"gateway"}
    for name in ("auth", "sync", "sona", "discovery", "ingestion", "playback"):
        assert body["services"][name]["status"] == "ready", (name, body)
    # MCP does not run in this world: the gateway says so instead of failing.
    assert body["services"]["mcp"]["status"] == "unreachable"
    assert body["status"] == "degraded"
    assert response.status_code == 503


async def test_every_route_names_a_service_the_gateway_can_call() -> None:
    assert {r.upstream for r in ROUTES} == set(SERVICE_NAMES) - {"gateway", "mcp"}


async def test_tiers_are_rate_limited_separately(world: World) -> None:
    data_dir = world_traversable_dir("mg-gateway-limits-")
    settings = world.settings.model_copy(
        update={
            "data_dir": data_dir,
            "gateway": world.settings.gateway.model_copy(
                update={"rate_limit_anonymous_per_min": 3, "rate_limit_user_per_min": 5}
            ),
            "redis": world.settings.redis.model_copy(update={"prefix": f"{world.settings.redis.prefix}-rl"}),
        }
    )
    try:
        async with serving(create_gateway(settings)) as url, httpx.AsyncClient(base_url=url) as gateway:
            statuses = []
            for _ in range(4):
                # A client cannot buy a fresh budget by claiming another address.
                r = await gateway.get(
                    "/api/v1/genres", headers={"X-Forwarded-For": str(uuid.uuid4().int % 250)}
                )
                statuses.append(r.status_code)
            assert statuses == [200, 200, 200, 429], statuses
            assert r.headers["content-type"].startswith(PROBLEM)
            assert int(r.headers["retry-after"]) >= 1
            assert r.headers["ratelimit-limit"] == "3"
            # A signed-in user has a budget of their own.
            user = [(await gateway.get("/api/v1/genres", headers=bearer(world.token))) for _ in range(6)]
            assert [u.status_code for u in user] == [200] * 5 + [429]
            assert user[0].headers["ratelimit-limit"] == "5"
        fresh = settings.model_copy(
            update={"redis": settings.redis.model_copy(update={"prefix": f"{settings.redis.prefix}-forged"})}
        )
        async with serving(create_gateway(fresh)) as url, httpx.AsyncClient(base_url=url) as gateway:
            # Refused tokens spend the address's budget too, so a flood of them is throttled.
            forged = [
                (await gateway.get("/api/v1/sync/watchlist", headers=bearer("forged"))).status_code
                for _ in range(4)
            ]
            assert forged == [401, 401, 401, 429], forged
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_a_dead_upstream_is_502_then_503_with_the_breaker_open(world: World) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = world.settings.model_copy(
        update={
            "service_urls": world.settings.service_urls.model_copy(update={"playback": dead}),
            "http": world.settings.http.model_copy(
                update={"retries": 0, "breaker_failure_threshold": 2, "breaker_cooldown_sec": 30}
            ),
        }
    )
    async with serving(create_gateway(settings)) as url, httpx.AsyncClient(base_url=url) as gateway:
        statuses = []
        for _ in range(3):
            r = await gateway.get("/api/v1/sessions?state=active", headers=bearer(world.token))
            assert r.headers["content-type"].startswith(PROBLEM)
            statuses.append(r.status_code)
        assert statuses == [502, 502, 503]
        assert int(r.headers["retry-after"]) >= 1
        # The other services are unaffected.
        assert (await gateway.get("/api/v1/genres")).status_code == 200
        metrics = (await gateway.get("/metrics")).text
        assert 'mg_gateway_upstream_responses_total{status="5xx",upstream="playback"} 3.0' in metrics


async def test_browser_apps_on_listed_origins_get_cors_headers(world: World) -> None:
    app_origin = "https://app.example"
    settings = world.settings.model_copy(
        update={"gateway": world.settings.gateway.model_copy(update={"cors_origins": [app_origin]})}
    )
    async with serving(create_gateway(settings)) as url, httpx.AsyncClient(base_url=url) as gateway:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }
        allowed = await gateway.options("/api/v1/search", headers={"Origin": app_origin, **preflight})
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == app_origin
        assert "POST" in allowed.headers["access-control-allow-methods"]
        foreign = await gateway.options(
            "/api/v1/search", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in foreign.headers
        # A refusal reaches the app too, so it can ask the user to sign in.
        refused = await gateway.get("/api/v1/sync/watchlist", headers={"Origin": app_origin})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == app_origin
        assert "x-request-id" in refused.headers["access-control-expose-headers"].lower()
    # Without listed origins the gateway sends no CORS headers at all.
    plain = await world.gateway.get("/api/v1/genres", headers={"Origin": app_origin})
    assert "access-control-allow-origin" not in plain.headers


async def test_live_sync_with_its_service_down_is_closed_with_try_again_later(world: World) -> None:
    settings = world.settings.model_copy(
        update={
            "service_urls": world.settings.service_urls.model_copy(
                update={"sync": f"http://127.0.0.1:{free_port()}"}
            )
        }
    )
    async with serving(create_gateway(settings)) as url:
        ws_url = url.replace("http://", "ws://") + "/api/v1/sync/ws"
        async with connect(ws_url, subprotocols=["mg.sync.v1", f"bearer.{world.token}"]) as socket:  # type: ignore[list-item]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
