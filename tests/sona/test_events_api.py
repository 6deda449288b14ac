"""Viewing events: from apps over HTTP and from the event bus, both idempotent on the event id."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from media_gateway.core.events import Event, make_event_bus
from media_gateway.core.settings import Settings
from media_gateway.sona.app import create_app as create_sona
from tests.sona.conftest import SonaWorld
from tests.support import serving


async def counts(w: SonaWorld, headers: dict[str, str]) -> dict[str, int]:
    response = await w.client.get("/api/v1/profile", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, int] = response.json()["interaction_counts"]
    return found


async def test_a_resent_event_is_recorded_once(sona_world: SonaWorld) -> None:
    w = sona_world
    _, headers = w.user()
    event = {"event_id": str(uuid.uuid4()), "type": "completed", "content_id": w.ids["A"]}
    rating = {"event_id": str(uuid.uuid4()), "type": "rated", "content_id": w.ids["A"], "rating": 4}
    first = await w.client.post("/api/v1/events", json={"events": [event, rating, event]}, headers=headers)
    assert first.json() == {"accepted": 2, "duplicates": 1}
    again = await w.client.post("/api/v1/events", json={"events": [event, rating]}, headers=headers)
    assert again.json() == {"accepted": 0, "duplicates": 2}
    assert await counts(w, headers) == {"completed": 1, "rated": 1}

    # Another user may reuse the same client event id: ids are per user.
    _, other = w.user()
    theirs = await w.client.post("/api/v1/events", json={"events": [event]}, headers=other)
    assert theirs.json() == {"accepted": 1, "duplicates": 0}
    metrics = (await w.client.get("/metrics")).text
    assert 'sona_events_total{outcome="duplicate",source="api"}' in metrics
    assert "sona_user_state_lookups_total" in metrics


async def test_latest_rating_and_watchlist_state_win_whatever_the_arrival_order(
    sona_world: SonaWorld,
) -> None:
    w = sona_world
    _, headers = w.user()
    now = datetime.now(UTC)
    later, earlier = now.isoformat(), (now - timedelta(hours=1)).isoformat()
    b = w.ids["B"]
    await w.send(headers, {"type": "rated", "content_id": b, "rating": 5, "occurred_at": later})
    await w.send(headers, {"type": "rated", "content_id": b, "rating": 1, "occurred_at": earlier})
    await w.send(headers, {"type": "watchlist_removed", "content_id": w.ids["S"], "occurred_at": later})
    await w.send(headers, {"type": "watchlist_added", "content_id": w.ids["S"], "occurred_at": earlier})
    await w.send(headers, w.watched("A"))
    profile = (await w.client.get("/api/v1/profile", headers=headers)).json()
    # B is still loved (5 stars, the later rating): Drama and Mystery lead.
    genres = {g["name"]: g["score"] for g in profile["genre_affinities"]}
    assert genres == {"Drama": 1.0, "Mystery": 0.5}
    # S was removed from the watchlist last, so it may be recommended again (not "seen").
    found = await w.recommend(headers, limit=100)
    assert "S" in w.keys(found)


async def test_bus_events_from_sync_and_playback_are_consumed_once(
    sona_world: SonaWorld, sona_settings: Settings
) -> None:
    w = sona_world
    user_id, headers = w.user()
    redis = aioredis.from_url(sona_settings.effective_redis_url)
    bus = make_event_bus(sona_settings, redis)
    try:
        added = Event(
            type="watchlist.added",
            key=str(user_id),
            payload={"user_id": str(user_id), "content_id": w.ids["C"]},
        )
        ended = Event(
            type="playback.session_ended",
            key=str(user_id),
            payload={
                "user_id": str(user_id),
                "content_id": w.ids["A"],
                "position_seconds": 5900,
                "duration_seconds": 6000,
                "completion": 0.98,
            },
        )
        await bus.publish("user.activity", added)
        await bus.publish("user.activity", added)  # at-least-once delivery: a duplicate
        await bus.publish("playback.session_ended", ended)
        expected = {"watchlist_added": 1, "completed": 1}
        deadline = time.monotonic() + 15
        while await counts(w, headers) != expected:
            assert time.monotonic() < deadline, await counts(w, headers)
            await asyncio.sleep(0.1)
        # Nothing more arrives later from the duplicate.
        await bus.publish("user.activity", added)
        await asyncio.sleep(0.5)
        assert await counts(w, headers) == expected
    finally:
        await bus.aclose()
        await redis.aclose()


@pytest.mark.parametrize(
    "events",
    [
        [{"type": "rated", "rating": None}],
        [{"type": "rated", "rating": 6}],
        [{"type": "completed", "rating": 3}],
        [{"type": "progress"}],
        [{"type": "progress", "completion": 1.5}],
        [{"type": "shared"}],
        [{"type": "completed", "occurred_at": "2031-01-01T00:00:00+00:00"}],
        [{"type": "completed", "occurred_at": "2024-01-01T00:00:00"}],
        [{"type": "completed", "content_id": "not-a-uuid"}],
        [{"type": "completed", "content_id": str(uuid.UUID(int=7))}],
        [],
    ],
)
async def test_bad_events_are_refused_whole(sona_world: SonaWorld, events: list[dict[str, Any]]) -> None:
    w = sona_world
    _, headers = w.user()
    good = {"event_id": str(uuid.uuid4()), "type": "completed", "content_id": w.ids["A"]}
    body = [good] + [{"event_id": str(uuid.uuid4()), "content_id": w.ids["B"], **e} for e in events]
    if not events:
        body = []
    response = await w.client.post("/api/v1/events", json={"events": body}, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await counts(w, headers) == {}  # not even the good event of the batch


async def test_user_endpoints_need_a_user_token(sona_world: SonaWorld) -> None:
    w = sona_world
    client_token = w.issuer.mint_client("some-service", scopes="admin")
    for method, path, body in [
        ("POST", "/api/v1/recommendations", {}),
        ("POST", "/api/v1/personalization/score", {"content_ids": [w.ids["A"]]}),
        ("POST", "/api/v1/events", {"events": []}),
        ("GET", "/api/v1/profile", None),
        ("GET", f"/api/v1/content/{w.ids['A']}/similar", None),
        ("POST", "/api/v1/embeddings", {"texts": ["x"]}),
    ]:
        anonymous = await w.client.request(method, path, json=body)
        assert anonymous.status_code == 401, (path, anonymous.text)
        garbage = await w.client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
        assert garbage.status_code == 401, path
        as_client = await w.client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {client_token}"}
        )
        assert as_client.status_code == 403, path


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/recommendations", {"limit": 101}),
        ("/api/v1/recommendations", {"limit": 0}),
        ("/api/v1/recommendations", {"region": "USA"}),
        ("/api/v1/recommendations", {"platforms": ["Not A Platform"]}),
        ("/api/v1/recommendations", {"platforms": []}),
        ("/api/v1/recommendations", {"context": {"time_of_day": "teatime"}}),
        ("/api/v1/recommendations", {"user_id": str(uuid.uuid4())}),
        ("/api/v1/personalization/score", {"content_ids": []}),
        ("/api/v1/personalization/score", {"content_ids": ["x"]}),
        ("/api/v1/personalization/score", {"content_ids": [str(uuid.uuid4()) for _ in range(501)]}),
        ("/api/v1/embeddings", {"texts": []}),
        ("/api/v1/embeddings", {"texts": [""]}),
        ("/api/v1/embeddings", {"texts": ["hello"], "adapter": "not-an-adapter"}),
    ],
)
async def test_bad_requests_are_4xx_problems(sona_world: SonaWorld, path: str, body: dict[str, Any]) -> None:
    w = sona_world
    _, headers = w.user()
    response = await w.client.post(path, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_similar_limit_is_bounded(sona_world: SonaWorld) -> None:
    w = sona_world
    _, headers = w.user()
    for params in ({"limit": 0}, {"limit": 101}, {"region": "x1"}):
        response = await w.client.get(f"/api/v1/content/{w.ids['A']}/similar", params=params, headers=headers)
        assert response.status_code == 422, params
    bad_id = await w.client.get("/api/v1/content/not-a-uuid/similar", headers=headers)
    assert bad_id.status_code == 422


def model_version(metrics: str) -> float:
    line = next(x for x in metrics.splitlines() if x.startswith("sona_model_version "))
    return float(line.split()[1])


async def test_enough_new_events_retrain_the_models_in_the_background(
    sona_world: SonaWorld, sona_settings: Settings
) -> None:
    w = sona_world
    settings = sona_settings.model_copy(
        update={
            "sona": sona_settings.sona.model_copy(update={"retrain_after_events": 3}),
            "service_urls": sona_settings.service_urls.model_copy(update={"auth": "http://127.0.0.1:9"}),
        }
    )
    async with serving(create_sona(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        before = model_version((await client.get("/metrics")).text)
        _, headers = w.user()
        events = [
            {"event_id": str(uuid.uuid4()), "type": "completed", "content_id": w.ids[key]}
            for key in ("A", "B")
        ]
        sent = await client.post("/api/v1/events", json={"events": events}, headers=headers)
        assert sent.json()["accepted"] == 2
        await asyncio.sleep(0.3)
        assert model_version((await client.get("/metrics")).text) == before  # 2 < 3: no run yet
        third = [{"event_id": str(uuid.uuid4()), "type": "completed", "content_id": w.ids["C"]}]
        await client.post("/api/v1/events", json={"events": third}, headers=headers)
        deadline = time.monotonic() + 60
        while model_version((await client.get("/metrics")).text) <= before:
            assert time.monotonic() < deadline, "no training run after 3 events"
            await asyncio.sleep(0.1)
